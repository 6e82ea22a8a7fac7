package localmesos

// Close is a graceful shutdown: executors get SHUTDOWN and the grace
// period to stop their tasks, and only what is left then is killed.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestCloseShutsExecutorsDown(t *testing.T) {
	bin := execBuildTestexec(t, t.TempDir())
	t.Run("custom-executor", func(t *testing.T) { closeCustomExecutor(t, bin) })
	t.Run("command-task", closeCommandTask)
	t.Run("unresponsive-executor", closeUnresponsiveExecutor)
}

// closeTimed closes c and says how long it took.
func closeTimed(t *testing.T, c *Cluster) time.Duration {
	t.Helper()
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Close returned before Done was closed")
	}
	return time.Since(start)
}

// closeCustomExecutor: testexec gets SHUTDOWN, reports TASK_KILLED, has
// it acknowledged and exits 0 by itself, well within the grace period.
func closeCustomExecutor(t *testing.T, bin string) {
	cfg := execConfig(t)
	c := startCluster(t, cfg)
	ag := c.Agents()[0]
	s := execSubscribe(t, c, execFrameworkInfo("close-custom", false))
	s.launch(s.offer(nil), execTask("task-1", execRecexec(bin, nil), ""))
	s.updateAck("task-1", mesos.TASK_STARTING)
	s.updateAck("task-1", mesos.TASK_RUNNING)
	sandbox, err := filepath.EvalSymlinks(execSandbox(c, ag.ID, s.fwID, "recexec"))
	if err != nil {
		t.Fatal(err)
	}
	if len(execProcessesIn(sandbox)) == 0 {
		t.Fatalf("no executor process runs in %s", sandbox)
	}

	took := closeTimed(t, c)
	if left := execProcessesIn(sandbox); len(left) > 0 {
		t.Errorf("processes left in the executor's sandbox after Close: %v", left)
	}
	// The agent's kill comes at the end of the grace period; the executor
	// was gone before.
	if took >= cfg.ExecutorShutdownGracePeriod {
		t.Errorf("Close took %v, the whole grace period %v: the executor did not exit by itself", took, cfg.ExecutorShutdownGracePeriod)
	}
	events, _ := os.ReadFile(filepath.Join(sandbox, "events.log"))
	if !strings.Contains(string(events), "SHUTDOWN") {
		t.Errorf("the executor got no SHUTDOWN; its events: %q", events)
	}
	// STARTING, RUNNING, and the KILLED it sent on SHUTDOWN.
	if n := strings.Count(string(events), "ACKNOWLEDGED"); n != 3 {
		t.Errorf("the executor got %d ACKNOWLEDGED, want 3; its events: %q", n, events)
	}
	stderr, _ := os.ReadFile(filepath.Join(sandbox, "stderr"))
	if !strings.Contains(string(stderr), "exiting 0") {
		t.Errorf("the executor did not exit 0 by itself; its stderr:\n%s", stderr)
	}
}

// closeCommandTask: the built-in command executor sends its task SIGTERM
// (the task's trap leaves a marker) and exits once the task is gone.
func closeCommandTask(t *testing.T) {
	cfg := execConfig(t)
	// SIGKILL comes 2 s (the command executor's reserve) before the end
	// of the grace period: leave the trap a second.
	cfg.ExecutorShutdownGracePeriod = 3 * time.Second
	c := startCluster(t, cfg)
	ag := c.Agents()[0]
	s := execSubscribe(t, c, execFrameworkInfo("close-command", false))
	marker := filepath.Join(t.TempDir(), "got-sigterm")
	ready := filepath.Join(t.TempDir(), "trap-set")
	cmd := "trap 'echo TERM > " + marker + "; exit 0' TERM; touch " + ready + "; while :; do sleep 0.05; done"
	shell := true
	s.launch(s.offer(nil), mesos.TaskInfo{Name: "trapper", TaskID: mesos.TaskID{Value: "trapper-1"},
		Resources: []mesos.Resource{execScalar("cpus", 0.1), execScalar("mem", 32)}, Command: &mesos.CommandInfo{Value: &cmd, Shell: &shell}})
	s.updateAck("trapper-1", mesos.TASK_STARTING)
	s.updateAck("trapper-1", mesos.TASK_RUNNING)
	execFile(t, ready, func(string) bool { return true })
	sandbox, err := filepath.EvalSymlinks(execSandbox(c, ag.ID, s.fwID, "trapper-1"))
	if err != nil {
		t.Fatal(err)
	}

	took := closeTimed(t, c)
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Errorf("the task's TERM trap did not run (marker %q, %v)", b, err)
	}
	if left := execProcessesIn(sandbox); len(left) > 0 {
		t.Errorf("processes left in the task's sandbox after Close: %v", left)
	}
	if took >= cfg.ExecutorShutdownGracePeriod {
		t.Errorf("Close took %v, the whole grace period %v: the command executor did not exit by itself", took, cfg.ExecutorShutdownGracePeriod)
	}
}

// closeUnresponsiveExecutor: an executor that never subscribes cannot be
// told to stop; Close kills it once the grace period is over, and returns.
func closeUnresponsiveExecutor(t *testing.T) {
	cfg := execConfig(t)
	cfg.ExecutorShutdownGracePeriod = time.Second
	c := startCluster(t, cfg)
	s := execSubscribe(t, c, execFrameworkInfo("close-unresponsive", false))
	started := filepath.Join(t.TempDir(), "started")
	value := "trap '' TERM; touch " + started + "; while :; do sleep 0.05; done"
	shell := true
	s.launch(s.offer(nil), execTask("task-1", execExecutorInfo("mute", mesos.CommandInfo{Value: &value, Shell: &shell}), ""))
	execFile(t, started, func(string) bool { return true })

	took := closeTimed(t, c)
	if left := execProcessesIn(cfg.WorkDir); len(left) > 0 {
		t.Errorf("processes left after Close: %v", left)
	}
	if limit := cfg.ExecutorShutdownGracePeriod + 2*time.Second; took > limit {
		t.Errorf("Close took %v, more than the grace period %v and a margin", took, cfg.ExecutorShutdownGracePeriod)
	}
}
