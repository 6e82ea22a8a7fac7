package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestRecoverFromCheckpoint: an agent detached from its executors (as a
// killed agent process is) is followed by a new agent on the same work
// dir. It takes the old one's ID and address, adopts the running command,
// makes the updates its predecessor had not made (here: the task.updates
// record is gone, as if the process died right after starting the
// command), re-registers with the task, and kills it on request.
func TestRecoverFromCheckpoint(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-checkpoint", true)
	h.agent.RunTask(fw, nil, h.commandTask("c1", "sleep 600"))
	h.expectAndAck(fw, "c1", mesos.TASK_STARTING)
	pid := h.expectAndAck(fw, "c1", mesos.TASK_RUNNING).Status.ContainerStatus.GetExecutorPID()
	id, addr := h.agent.ID(), h.agent.Address()
	h.agent.Detach()
	if err := syscall.Kill(int(pid), 0); err != nil {
		t.Fatalf("the command did not outlive its agent: %v", err)
	}
	updates, _ := filepath.Glob(filepath.Join(h.workDir, "meta", "slaves", id.Value, "frameworks", "fw-checkpoint", "executors", "c1", "runs", "*", "tasks", "c1", "task.updates"))
	if len(updates) != 1 {
		t.Fatalf("task.updates: %v", updates)
	}
	if err := os.Remove(updates[0]); err != nil {
		t.Fatal(err)
	}

	m := newExecMaster()
	a, err := New(Config{ID: mesos.AgentID{Value: "another-id"}, IP: "127.0.0.3", Resources: mesos.Resources{}, WorkDir: h.workDir,
		ExecutorReregistrationTimeout: h.agent.cfg.ExecutorReregistrationTimeout}, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if a.ID() != id || a.Address() != addr {
		t.Fatalf("recovered agent %s at %s, want %s at %s", a.ID().Value, a.Address(), id.Value, addr)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	reg := m.nextRegistration(t)
	if !reg.Reregistration || len(reg.Tasks) != 1 || reg.Tasks[0].TaskID.Value != "c1" || reg.Tasks[0].GetState() != mesos.TASK_RUNNING {
		t.Fatalf("re-registration = %+v", reg)
	}
	h.agent, h.master = a, m
	h.expectAndAck(fw, "c1", mesos.TASK_STARTING)
	if u := h.expectAndAck(fw, "c1", mesos.TASK_RUNNING); u.Status.ContainerStatus.GetExecutorPID() != pid {
		t.Errorf("RUNNING names pid %d, want %d", u.Status.ContainerStatus.GetExecutorPID(), pid)
	}
	a.KillTask(*fw.ID, mesos.TaskID{Value: "c1"}, nil)
	u := h.expectAndAck(fw, "c1", mesos.TASK_KILLED)
	if u.Status.GetMessage() != "Command terminated with unknown status" {
		t.Errorf("TASK_KILLED = %+v", u.Status)
	}
	if e := m.nextExit(t); e.executor != "c1" {
		t.Errorf("exit = %+v", e)
	}
}

// TestWaitGone: an adopted process is watched through a pidfd: the wait
// ends when the process exits, or when the agent stops watching.
func TestWaitGone(t *testing.T) {
	start := func() (*exec.Cmd, int64) {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		st, err := processStartTime(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return cmd, st
	}
	waited := func(what string, done <-chan bool) {
		t.Helper()
		select {
		case ok := <-done:
			if !ok {
				t.Fatalf("%s: pidfds not usable", what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still waiting", what)
		}
	}

	cmd, st := start()
	done := make(chan bool, 1)
	go func() { done <- waitPidfd(cmd.Process.Pid, st, nil) }()
	select {
	case <-done:
		t.Fatal("the wait ended while the process runs")
	case <-time.After(200 * time.Millisecond):
	}
	_ = cmd.Process.Kill()
	waited("exit", done)

	cmd, st = start()
	quit := make(chan struct{})
	go func() { done <- waitPidfd(cmd.Process.Pid, st, quit) }()
	close(quit)
	waited("quit", done)
	if !processAlive(cmd.Process.Pid, st) {
		t.Error("the process died")
	}
	// Another process under a reused pid is not the one adopted.
	if processAlive(cmd.Process.Pid, st+1) {
		t.Error("a different start time counts as the same process")
	}
}
