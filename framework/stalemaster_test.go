package framework_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
)

// TestCrashSlavesNameLiveMaster kills the scheduler (-9), run with its own
// embedded cluster (--master=local, one agent, so the slaves wait for the
// master's agent), while an MS instance's master is launched and its slaves
// are still QUEUED, and starts it again on the same data. Everything of the
// old incarnation is dead (its cluster with it), but the stored master
// still names its old host:port. Every slave launched after the restart
// must be configured with the master attempt that runs now, never the dead
// one, and (with redis-server) replicate from it: INFO replication on each
// slave names the current master.
func TestCrashSlavesNameLiveMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	checkTestPorts(t)
	dataDir := t.TempDir()
	t.Cleanup(func() { killProcessesOf(t, dataDir, "pair") })
	p := newSubprocess(t, dataDir, "--master=local", "--etcd=embedded", "--local-agents=1", "--local-resources="+testResources)
	p.env = []string{testworkload.LocalAgentIPEnv + "=" + testAgentIP()}
	p.start()

	call(t, http.MethodPost, p.api+"/v1/instances", createBody("pair", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	eventuallyWithin(t, stepTimeout, "the master launched, the slaves queued", func() (bool, string) {
		inst, _ := get(t, p.api, "pair")
		if inst == nil || len(inst.Tasks) != 3 {
			return false, "no instance yet"
		}
		ready := true
		for _, task := range inst.Tasks {
			switch task.Role {
			case stateful.RoleMaster:
				ready = ready && task.State.IsLaunched() && task.Host != ""
			default:
				ready = ready && task.State.IsQueued()
			}
		}
		if ready {
			p.crash()
		}
		return ready, describe(inst)
	})
	// The embedded cluster died with the scheduler; its executors and
	// workloads are left without it. They are gone as a host's would be.
	killProcessesOf(t, dataDir, "pair")
	before, err := testworkload.ReadLog(p.calls)
	if err != nil {
		t.Fatal(err)
	}

	p.start()
	inst := waitRunning(t, p.api, "pair")
	master := inst.Tasks[inst.MasterOrdinal]
	if master.Role != stateful.RoleMaster {
		t.Fatalf("the master ordinal's task is a %s: %s", master.Role, describe(inst))
	}
	masterAddr := master.Host + ":" + strconv.Itoa(master.Ports[testworkload.Port])
	calls, err := testworkload.ReadLog(p.calls)
	if err != nil {
		t.Fatal(err)
	}
	configured := 0
	for _, c := range calls[len(before):] {
		if c.Callback != "Config" || c.Role != stateful.RoleSlave || c.Err != "" {
			continue
		}
		configured++
		id, addr, ok := testworkload.ConfiguredMaster(c)
		if !ok {
			t.Errorf("slave Config without a master: %+v", c)
			continue
		}
		if id != master.TaskID || addr != masterAddr {
			t.Errorf("slave %s launched against master %s at %s; the master that runs is %s at %s", c.Task, id, addr, master.TaskID, masterAddr)
		}
	}
	if configured < 2 {
		t.Errorf("%d slave launches after the restart, want at least 2", configured)
	}
	checkReplication(t, inst)
}

// checkReplication checks, when tasks run redis-server, that every slave
// of inst replicates from inst's master as stored: INFO replication on the
// slave names the master's host and port.
func checkReplication(t *testing.T, inst *stateful.Instance) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil || !testworkload.New().Redis {
		t.Logf("replication not checked: needs redis-server and redis-cli")
		return
	}
	master := inst.Tasks[inst.MasterOrdinal]
	for _, task := range inst.Tasks {
		if task.Role != stateful.RoleSlave {
			continue
		}
		eventually(t, task.Name+" replicates from "+master.Name, replicatesFrom(task, master))
	}
}

// replicatesFrom checks that the redis-server of slave replicates from the
// one of master: INFO replication on the slave names the master's host and
// port. It answers with what INFO said.
func replicatesFrom(slave, master *stateful.Task) func() (bool, string) {
	want := fmt.Sprintf("master_host:%s\nmaster_port:%d\n", master.Host, master.Ports[testworkload.Port])
	return func() (bool, string) {
		info := redisInfo(slave.Host, slave.Ports[testworkload.Port])
		return strings.Contains(info, "role:slave\n") && strings.Contains(info, want), info
	}
}

// redisInfo returns INFO replication of the redis-server at host:port,
// with \n line ends, or the error.
func redisInfo(host string, port int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", strconv.Itoa(port), "INFO", "replication").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("redis-cli: %v: %s", err, out)
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

// killProcessesOf kills (SIGKILL, by pid) what agents working in dataDir
// started for instance (so this test's only): executors, found by their
// environment, and workloads, found by their working directory (the task's
// volume under dataDir; redis-server overwrites its environment with its
// title). It waits until they are gone.
func killProcessesOf(t *testing.T, dataDir, instance string) {
	t.Helper()
	volumes := filepath.Join(dataDir, "volumes", instance) + "/"
	eventually(t, "no process of "+instance+" left", func() (bool, string) {
		var left []string
		executors := processesOf(instance)
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			env, _ := os.ReadFile(filepath.Join(d, "environ"))
			cwd, _ := os.Readlink(filepath.Join(d, "cwd"))
			ours := strings.HasPrefix(cwd+"/", volumes) ||
				(bytes.Contains(env, []byte(dataDir)) && slices.Contains(executors, filepath.Base(d)))
			if !ours {
				continue
			}
			left = append(left, filepath.Base(d))
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return len(left) == 0, fmt.Sprint(left)
	})
}
