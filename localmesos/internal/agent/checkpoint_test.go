package agent

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

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
