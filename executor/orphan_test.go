package executor

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"golang.org/x/sys/unix"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// The workload-lifetime and listener-ownership tests run a real
// redis-server: it rewrites its environment (its process title), so it
// cannot be found by the variables its executor gave it, which is how
// it outlived its executor before.

// startRedisHelper runs the test binary as a throwaway "executor" that
// starts redis-server on port through the process runtime and hangs. It
// returns the helper, the workload's process group and its watchdog.
func startRedisHelper(t *testing.T, port uint32) (helper *exec.Cmd, pgid, watchdog int) {
	t.Helper()
	helper = exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "STATEFUL_EXECUTOR_TEST_SANDBOX="+t.TempDir(),
		fmt.Sprintf("STATEFUL_EXECUTOR_TEST_HELPER=redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no", port))
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	if pgid, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("helper said %q", line)
	}
	killGroupOnCleanup(t, pgid)
	eventually(t, 10*time.Second, "redis-server answers", func() bool { return redisPing(port) == "PONG" })
	return helper, pgid, watchdogOf(t, pgid)
}

// watchdogOf returns the pid of the watchdog in process group pgid.
func watchdogOf(t *testing.T, pgid int) int {
	t.Helper()
	for _, pid := range groupMembers(pgid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), "read _; kill -KILL") {
			return pid
		}
	}
	t.Fatalf("no watchdog in process group %d (members %v)", pgid, groupMembers(pgid))
	return 0
}

func redisPID(t *testing.T, port uint32) int {
	t.Helper()
	out, err := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "INFO", "server").Output()
	if err != nil {
		t.Fatalf("redis-cli INFO: %v", err)
	}
	pid, err := strconv.Atoi(infoField(string(out), "process_id"))
	if err != nil {
		t.Fatalf("no process_id in INFO server: %s", out)
	}
	return pid
}

// As in the fault test of issue 10: kill -9 the watchdog, then the
// executor. The executor replaces its dead watchdog, and the workload dies
// with the executor.
func TestProcessWorkloadDiesWithItsExecutorAfterItsWatchdogWasKilled(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	helper, pgid, watchdog := startRedisHelper(t, port)
	redis := redisPID(t, port)

	if err := syscall.Kill(watchdog, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var replacement int
	eventually(t, 5*time.Second, "the executor starts another watchdog", func() bool {
		for _, pid := range groupMembers(pgid) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if pid != watchdog && strings.Contains(string(cmdline), "read _; kill -KILL") {
				replacement = pid
				return true
			}
		}
		return false
	})
	t.Logf("watchdog %d killed; replaced by %d", watchdog, replacement)

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	eventually(t, 5*time.Second, "no process of the task is left after its executor died", func() bool {
		return !alive(redis) && len(groupMembers(pgid)) == 0
	})
}

// With its watchdog unable to act (stopped: as if killed in the same
// instant as the executor), the workload still dies with its executor:
// the kernel kills it (PR_SET_PDEATHSIG).
func TestProcessWorkloadDiesWithItsExecutorWithoutTheWatchdog(t *testing.T) {
	needRedis(t)
	// The executor's orphans come to this process rather than to init:
	// else their process group, orphaned with a stopped member, would get
	// SIGHUP and SIGCONT from the kernel, which wakes the watchdog (and
	// ends redis-server) and so proves nothing. They stay zombies here,
	// which alive counts as dead.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	port := freePort(t)
	helper, _, watchdog := startRedisHelper(t, port)
	redis := redisPID(t, port)

	if err := syscall.Kill(watchdog, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(watchdog, syscall.SIGKILL) })
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	eventually(t, 5*time.Second, "redis-server is gone after its executor died", func() bool { return !alive(redis) })
	if redisPing(port) == "PONG" {
		t.Error("something still answers on the task's port")
	}
}

// An orphan holding a task's port (what a dead executor left behind, before
// the fix above) does not make the new task's TCP health check pass; the
// check names the orphan. The task's own redis-server does pass it.
func TestTCPHealthCheckRefusesAListenerThatIsNotTheTasks(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	orphan := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orphan.Process.Kill(); _ = orphan.Wait() })
	eventually(t, 10*time.Second, "the orphan redis-server answers", func() bool { return redisPing(port) == "PONG" })

	health := protocol.Health{TCPPort: "redis", Timeout: protocol.Duration(2 * time.Second)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The new task, whose own process could not have bound the port.
	p, _, _ := startProcess(t, protocol.TaskData{Command: "exec sleep 1000"})
	c := healthChecker{health: health, spec: true, workload: p, host: "127.0.0.1", ports: map[string]uint32{"redis": port}}
	err := c.check(ctx)
	if err == nil {
		t.Fatal("the TCP health check passed against a redis-server that is not the task's")
	}
	want := fmt.Sprintf("pid %d (redis-server)", orphan.Process.Pid)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder, %s", err, want)
	}

	// A task whose own redis-server listens passes, again and again.
	own := freePort(t)
	q, _, _ := startProcess(t, protocol.TaskData{Command: fmt.Sprintf("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no; exec sleep 1000", own)})
	c = healthChecker{health: health, spec: true, workload: q, host: "127.0.0.1", ports: map[string]uint32{"redis": own}}
	eventually(t, 10*time.Second, "the task's own redis-server passes the TCP check", func() bool { return c.check(ctx) == nil })
	if err := c.check(ctx); err != nil {
		t.Fatalf("a second check of the task's own listener: %v", err)
	}

	// Its redis-server dies (the task lives on) and another process takes
	// the port: the listener once found the task's does not vouch for it.
	if err := syscall.Kill(redisPID(t, own), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the task's redis-server gone", func() bool { return redisPing(own) != "PONG" })
	taker := exec.Command("redis-server", "--port", fmt.Sprint(own), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := taker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taker.Process.Kill(); _ = taker.Wait() })
	eventually(t, 10*time.Second, "the other redis-server answers", func() bool { return redisPing(own) == "PONG" })
	err = c.check(ctx)
	if want := fmt.Sprintf("pid %d (redis-server)", taker.Process.Pid); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("check after another process took the port = %v, want an error naming %s", err, want)
	}
}

func TestParseProcAddr(t *testing.T) {
	// /proc/net/tcp{,6} print each 32-bit word of the address in host
	// byte order; these are a little-endian host's.
	if !littleEndian() {
		t.Skip("the cases are written for a little-endian host")
	}
	for _, tc := range []struct {
		in   string
		ip   string
		port uint32
	}{
		{"0100007F:1F90", "127.0.0.1", 8080},
		{"00000000:18EB", "0.0.0.0", 6379},
		{"00000000000000000000000001000000:18EB", "::1", 6379},
		{"00000000000000000000000000000000:0050", "::", 80},
	} {
		ip, port, ok := parseProcAddr(tc.in)
		if !ok || !ip.Equal(net.ParseIP(tc.ip)) || port != tc.port {
			t.Errorf("parseProcAddr(%q) = %v, %d, %v; want %s, %d", tc.in, ip, port, ok, tc.ip, tc.port)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "01007F:1F90", "zz00007F:1F90", "0100007F:1FFFF"} {
		if _, _, ok := parseProcAddr(bad); ok {
			t.Errorf("parseProcAddr(%q) accepted", bad)
		}
	}
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// Issue 10's fault test end to end (localmesos, the executor binary, real
// redis-server): kill -9 the watchdog, then the executor. No redis-server
// may be left. (localmesos' sweep by MESOS_SANDBOX cannot find it: it
// rewrites its environment.)
func TestE2EKillWatchdogThenExecutorLeavesNoRedis(t *testing.T) {
	needRedis(t)
	c := startCluster(t)
	l := c.launch("cache1-0.1", "cache1-0", redisProcessTask(t, 0), "redis")
	c.waitState(l.taskID, mesos.TASK_RUNNING, 30*time.Second)
	res := c.exec(l, "pid", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "server")
	redis, err := strconv.Atoi(infoField(res.Stdout, "process_id"))
	if err != nil {
		t.Fatalf("no redis pid in %+v", res)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", redis))
	if err != nil {
		t.Fatal(err)
	}
	f, ok := statFields(stat)
	if !ok {
		t.Fatalf("cannot parse /proc/%d/stat", redis)
	}
	killGroupOnCleanup(t, f.pgrp)
	watchdog := watchdogOf(t, f.pgrp)

	if err := syscall.Kill(watchdog, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.lm.KillExecutor(l.agentID, c.fwID, l.executorID); err != nil {
		t.Fatal(err)
	}
	c.waitState(l.taskID, mesos.TASK_FAILED, 20*time.Second)
	eventually(t, 10*time.Second, "no redis-server (nor anything of its process group) is left", func() bool {
		return !alive(redis) && len(groupMembers(f.pgrp)) == 0
	})
	if got := redisPingAt(l.host, l.ports["redis"]); got == "PONG" {
		t.Errorf("something still answers on the dead task's port")
	}
}

// A new task whose port an orphan holds never becomes RUNNING: its TCP
// health check reaches the orphan but sees that the listener is not the
// task's, and the failure names the orphan.
func TestE2EOrphanOnTheTaskPortDoesNotMakeItHealthy(t *testing.T) {
	needRedis(t)
	c := startCluster(t)
	var orphan *exec.Cmd
	l := c.launchWith("cache1-0.2", "cache1-0", func(host string, ports map[string]uint32) protocol.TaskData {
		orphan = exec.Command("redis-server", "--port", fmt.Sprint(ports["redis"]), "--bind", host, "--save", "", "--appendonly", "no")
		if err := orphan.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = orphan.Process.Kill(); _ = orphan.Wait() })
		eventually(t, 10*time.Second, "the orphan redis-server answers", func() bool { return redisPingAt(host, ports["redis"]) == "PONG" })
		return protocol.TaskData{
			Runtime: protocol.RuntimeProcess,
			// Stands for a redis-server that failed to bind: alive, not
			// listening.
			Command: "exec sleep 1000",
			Health: &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(100 * time.Millisecond),
				Grace: protocol.Duration(2 * time.Second), Timeout: protocol.Duration(time.Second)},
		}
	}, "redis")
	failed := c.waitState(l.taskID, mesos.TASK_FAILED, 30*time.Second)
	want := fmt.Sprintf("pid %d (redis-server)", orphan.Process.Pid)
	if !strings.Contains(failed.GetMessage(), "never passed") || !strings.Contains(failed.GetMessage(), want) {
		t.Errorf("TASK_FAILED message %q, want the health check never passing, naming %s", failed.GetMessage(), want)
	}
	for _, s := range c.states(l.taskID) {
		if strings.HasPrefix(s, "TASK_RUNNING") {
			t.Errorf("the task was reported RUNNING on the strength of an orphan: %v", c.states(l.taskID))
		}
	}
}

// The TCP check of a Docker task asks the container's own network
// namespace (bridge) or, on the host network, which processes hold the
// port: its own redis-server passes either way, a host process that is not
// the container's does not.
func TestDockerTCPHealthCheckRefusesAListenerThatIsNotTheContainers(t *testing.T) {
	needRedis(t)
	cli, fw := dockerFor(t)
	rt, err := NewDockerRuntime(cli)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	health := protocol.Health{TCPPort: "redis", Timeout: protocol.Duration(5 * time.Second)}
	started := 0
	start := func(network string, port uint32) Workload {
		started++
		d := redisContainerTask(port, network)
		d.Version = protocol.TaskDataVersion
		d.Runtime = protocol.RuntimeDocker
		w, err := rt.Start(ctx, StartSpec{TaskID: fmt.Sprintf("cache1-0.%d", started), ExecutorID: "exec-1", FrameworkID: fw, Sandbox: t.TempDir(), Host: "127.0.0.1", Data: &d})
		if err != nil {
			t.Fatalf("start a %s container: %v", network, err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background(), 0) })
		return w
	}

	for _, network := range []string{protocol.NetworkHost, protocol.NetworkBridge} {
		port := freePort(t)
		w := start(network, port)
		c := healthChecker{health: health, spec: true, workload: w, host: "127.0.0.1", ports: map[string]uint32{"redis": port}}
		eventually(t, 30*time.Second, "the "+network+" container's redis-server passes the TCP check", func() bool {
			return c.check(ctx) == nil
		})
	}

	// A host-network container asked about a port a host process holds.
	orphanPort := freePort(t)
	orphan := exec.Command("redis-server", "--port", fmt.Sprint(orphanPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orphan.Process.Kill(); _ = orphan.Wait() })
	eventually(t, 10*time.Second, "the orphan redis-server answers", func() bool { return redisPing(orphanPort) == "PONG" })
	w := start(protocol.NetworkHost, freePort(t))
	c := healthChecker{health: health, spec: true, workload: w, host: "127.0.0.1", ports: map[string]uint32{"redis": orphanPort}}
	err = c.check(ctx)
	want := fmt.Sprintf("pid %d (redis-server)", orphan.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("check = %v, want an error naming %s", err, want)
	}
}
