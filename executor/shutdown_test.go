package executor

// A cluster that closes (a framework with --master=local stopping) sends
// SHUTDOWN to its executors: they stop their tasks gracefully, remove
// their containers and exit, and nothing of the framework is left.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/internal/testimage"
)

// sandboxOf is the latest run directory of a launched task's executor.
func (c *cluster) sandboxOf(l launched) string {
	c.t.Helper()
	for i, a := range c.lm.Agents() {
		if a.ID == l.agentID {
			return filepath.Join(c.lm.WorkDir(), "agent-"+strconv.Itoa(i), "slaves", l.agentID, "frameworks", c.fwID, "executors", l.executorID, "runs", "latest")
		}
	}
	c.t.Fatalf("no agent %s", l.agentID)
	return ""
}

// checkShutDownGracefully checks, from the sandbox's files, that the
// executor of l got SHUTDOWN and exited by itself, and that its
// redis-server was stopped with SIGTERM (it logs that to stdout).
func (c *cluster) checkShutDownGracefully(l launched) {
	c.t.Helper()
	sandbox := c.sandboxOf(l)
	stderr, _ := os.ReadFile(filepath.Join(sandbox, "stderr"))
	for _, want := range []string{"SHUTDOWN from the agent", "executor " + l.executorID + ": exiting"} {
		if !strings.Contains(string(stderr), want) {
			c.t.Errorf("executor %s: no %q in its stderr:\n%s", l.executorID, want, stderr)
		}
	}
	stdout, _ := os.ReadFile(filepath.Join(sandbox, "stdout"))
	if !strings.Contains(string(stdout), "Received SIGTERM") {
		c.t.Errorf("task %s: redis-server did not get SIGTERM; its output:\n%s", l.taskID, stdout)
	}
}

// closeCluster closes the cluster as a framework's shutdown does and
// returns how long it took.
func (c *cluster) closeCluster() time.Duration {
	start := time.Now()
	if err := c.lm.Close(); err != nil {
		c.t.Fatalf("close cluster: %v", err)
	}
	return time.Since(start)
}

func TestE2EClusterCloseRemovesContainers(t *testing.T) {
	c, cli := dockerE2E(t)
	a := c.launchRedisContainer("cache1-0.1", "cache1-0")
	b := c.launchRedisContainer("cache1-1.1", "cache1-1")
	c.waitState(a.taskID, mesos.TASK_RUNNING, 60*time.Second)
	c.waitState(b.taskID, mesos.TASK_RUNNING, 60*time.Second)
	if n := len(c.containers(cli)); n != 2 {
		t.Fatalf("%d containers of the framework run, want 2", n)
	}

	took := c.closeCluster()
	t.Logf("the cluster closed in %v", took)
	// No waiting: once Close returns, nothing may be left, running or
	// exited.
	if left := c.containers(cli); len(left) > 0 {
		for _, ct := range left {
			t.Errorf("container %s (%s) of the framework left: %s", shortContainerID(ct.ID), ct.Name, ct.Status)
		}
	}
	if left := frameworkProcesses(c.fwID); len(left) > 0 {
		t.Errorf("processes of the framework left: %v", left)
	}
	c.checkShutDownGracefully(a)
	c.checkShutDownGracefully(b)
}

func TestE2EClusterCloseStopsProcesses(t *testing.T) {
	needRedis(t)
	c := startCluster(t)
	l := c.launch("cache1-0.1", "cache1-0", redisProcessTask(t, 0), "redis")
	c.waitState(l.taskID, mesos.TASK_RUNNING, 30*time.Second)
	// redis-server rewrites its environment (process title): ask it.
	res := c.exec(l, "pid", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "server")
	pid, err := strconv.Atoi(infoField(res.Stdout, "process_id"))
	if err != nil {
		t.Fatalf("no redis pid in %+v", res)
	}

	took := c.closeCluster()
	t.Logf("the cluster closed in %v", took)
	if alive(pid) {
		t.Errorf("redis-server (pid %d) still runs after Close", pid)
	}
	if left := frameworkProcesses(c.fwID); len(left) > 0 {
		t.Errorf("processes of the framework left: %v", left)
	}
	c.checkShutDownGracefully(l)
}

// TestDockerRemoveOwnLeavesOtherExecutors: the executor's last sweep
// removes what this process started, and only that.
func TestDockerRemoveOwnLeavesOtherExecutors(t *testing.T) {
	cli, fw := dockerFor(t)
	probeImage(t, cli)
	rt, err := NewDockerRuntime(cli)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(owner string) string {
		t.Helper()
		id, err := cli.Run(ctx, dockerlib.ContainerSpec{
			Image:   testimage.ProbeImage,
			Env:     map[string]string{"PROBE_LISTEN": "127.0.0.1:0"},
			Labels:  map[string]string{dockerlib.LabelFrameworkID: fw, LabelExecutorProcess: owner},
			Network: dockerlib.NetworkBridge,
		})
		if err != nil {
			t.Fatalf("run a probe container: %v", err)
		}
		return id
	}
	ours := run(rt.owner)
	other := run("pid:[1]/1/1") // another executor's, alive or not
	if err := rt.RemoveOwn(ctx, fw); err != nil {
		t.Fatalf("RemoveOwn: %v", err)
	}
	left := map[string]bool{}
	list, err := cli.List(ctx, map[string]string{dockerlib.LabelFrameworkID: fw})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range list {
		left[ct.ID] = true
	}
	if left[ours] {
		t.Error("our container is still there")
	}
	if !left[other] {
		t.Error("another executor's container was removed")
	}
}
