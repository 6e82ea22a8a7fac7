package agent

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// TestRestartRecovery is agent-restart-recovery.jsonl: a checkpointing
// framework's executor survives an agent restart, re-subscribes with the
// update it made while the agent was down, and the agent re-registers with
// its tasks; the update reaches the scheduler (twice: once on
// re-registration, once more when the framework is updated). A
// non-checkpointing framework's executor dies with the agent.
func TestRestartRecovery(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-checkpoint", true)
	ex := execCustomExecutor("survivor", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	pid := int(h.expectAndAck(fw, "t1", mesos.TASK_STARTING).Status.ContainerStatus.GetExecutorPID())
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)

	other := execFramework("fw-nocheckpoint", false)
	ex2 := execCustomExecutor("mortal", execTestexecCommand())
	h.agent.RunTask(other, &ex2, h.task("t2", ""))
	h.expectAndAck(other, "t2", mesos.TASK_STARTING)
	h.expectAndAck(other, "t2", mesos.TASK_RUNNING)
	mortal, err := filepath.EvalSymlinks(h.sandbox(other, "mortal"))
	if err != nil {
		t.Fatal(err)
	}
	addr := h.agent.Address()

	h.agent.Stop(Restart)
	execNoProcessesLeft(t, mortal)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("checkpointed executor died with the agent: %v", err)
	}
	// While the agent is down the executor makes an update it cannot
	// deliver; it keeps it as unacknowledged.
	events := filepath.Join(h.sandbox(fw, "survivor"), "events.log")
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if err := h.agent.Start(); err != nil {
		t.Fatal(err)
	}
	if h.agent.Address() != addr {
		t.Errorf("address after restart = %s, want %s", h.agent.Address(), addr)
	}
	// Re-subscribed: SUBSCRIBED then the ACKNOWLEDGED of the replayed
	// update, while the agent still recovers.
	execWaitFile(t, events, func(s string) bool {
		return strings.Count(s, "SUBSCRIBED") == 2 && strings.Count(s, "ACKNOWLEDGED") == 3
	})
	reg := h.master.nextRegistration(t)
	if !reg.Reregistration || len(reg.Frameworks) != 1 || reg.Frameworks[0].ID.Value != "fw-checkpoint" ||
		len(reg.Executors) != 1 || reg.Executors[0].ExecutorID.Value != "survivor" ||
		len(reg.Tasks) != 1 || reg.Tasks[0].TaskID.Value != "t1" || reg.Tasks[0].GetState() != mesos.TASK_RUNNING {
		t.Fatalf("re-registration = %+v", reg)
	}
	u := h.expectUpdate("t1", mesos.TASK_RUNNING)
	if u.Status.GetMessage() != "sent on SIGUSR1" || u.Status.ContainerStatus.GetExecutorPID() != uint32(pid) {
		t.Errorf("replayed update = %+v", u.Status)
	}
	h.agent.UpdateFramework(fw)
	dup := h.expectUpdate("t1", mesos.TASK_RUNNING)
	if string(dup.Status.UUID) != string(u.Status.UUID) || *dup.Status.Timestamp != *u.Status.Timestamp {
		t.Errorf("duplicate differs: %+v", dup.Status)
	}
	h.ack(fw, u)
	h.noMoreUpdates(200 * time.Millisecond)

	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "t1"}, nil)
	h.expectAndAck(fw, "t1", mesos.TASK_KILLED)
	if e := h.master.nextExit(t); e != (execExit{"fw-checkpoint", "survivor", 0}) {
		t.Errorf("exit = %+v", e)
	}
	// Nothing about the non-checkpointing framework: it is gone with the
	// old agent.
	if n := h.master.pending("exit"); n != 0 {
		t.Errorf("%d more exits", n)
	}
}

// TestRestartExecutorNotBack: an executor that does not re-subscribe
// within the reregistration timeout is destroyed; its task is lost.
func TestRestartExecutorNotBack(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-checkpoint", true)
	ex := execCustomExecutor("frozen", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	pid := int(h.expectAndAck(fw, "t1", mesos.TASK_STARTING).Status.ContainerStatus.GetExecutorPID())
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)
	h.agent.Stop(Restart)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.agent.Start(); err != nil {
		t.Fatal(err)
	}
	reg := h.master.nextRegistration(t)
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("re-registered after %v, before the reregistration timeout", elapsed)
	}
	if !reg.Reregistration || len(reg.Tasks) != 1 {
		t.Errorf("re-registration = %+v", reg)
	}
	u := h.expectAndAck(fw, "t1", mesos.TASK_LOST)
	if u.Status.GetReason() != mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT || u.Status.GetMessage() != "Executor did not reregister within 1secs" {
		t.Errorf("update = %+v", u.Status)
	}
	if e := h.master.nextExit(t); e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}
	execNoProcessesLeft(t, h.workDir)
}

// TestRestartCommandTask: the built-in command executor of a checkpointing
// framework survives a restart too.
func TestRestartCommandTask(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-checkpoint", true)
	h.agent.RunTask(fw, nil, h.commandTask("sleeper", "sleep 600"))
	starting := h.expectUpdate("sleeper", mesos.TASK_STARTING)
	pid := int(starting.Status.ContainerStatus.GetExecutorPID())
	h.agent.Stop(Restart)
	if err := h.agent.Start(); err != nil {
		t.Fatal(err)
	}
	reg := h.master.nextRegistration(t)
	if len(reg.Tasks) != 1 || len(reg.Executors) != 0 {
		t.Errorf("re-registration = %+v (command executors are not reported)", reg)
	}
	// The unacknowledged head is sent again on re-registration.
	again := h.expectUpdate("sleeper", mesos.TASK_STARTING)
	if string(again.Status.UUID) != string(starting.Status.UUID) {
		t.Errorf("a different update after restart")
	}
	h.ack(fw, again)
	h.expectAndAck(fw, "sleeper", mesos.TASK_RUNNING)
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("command died with the agent: %v", err)
	}
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "sleeper"}, nil)
	h.expectAndAck(fw, "sleeper", mesos.TASK_KILLED)
	execNoProcessesLeft(t, h.workDir)
}

// TestRestartDropsUndeliveredTask: a task queued for an executor that had
// not subscribed before the restart, and that the executor does not know
// when it subscribes, is lost (REASON_AGENT_RESTARTED).
func TestRestartDropsUndeliveredTask(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.ExecutorShutdownGracePeriod = 300 * time.Millisecond })
	fw := execFramework("fw-checkpoint", true)
	h.runSleeper(fw, "t1")
	h.agent.Stop(Restart)
	if err := h.agent.Start(); err != nil {
		t.Fatal(err)
	}
	c := execClient{t: t, addr: h.agent.Address()}
	sub := execCall(fw, "sleeper", executor.Call_SUBSCRIBE)
	sub.Subscribe = &executor.Call_Subscribe{}
	events := execReadEvents(t, c.call(sub, mediaProtobuf), mediaProtobuf)
	reg := h.master.nextRegistration(t)
	if len(reg.Tasks) != 1 || reg.Tasks[0].GetState() != mesos.TASK_LOST {
		t.Errorf("re-registration tasks = %+v", reg.Tasks)
	}
	u := h.expectAndAck(fw, "t1", mesos.TASK_LOST)
	if u.Status.GetReason() != mesos.REASON_AGENT_RESTARTED || u.Status.GetMessage() != "Task launched during agent restart" {
		t.Errorf("update = %+v", u.Status)
	}
	// It never got a task: it is shut down instead of subscribed.
	if ev := events.next(t); ev.Type != executor.Event_SHUTDOWN {
		t.Errorf("event = %s, want SHUTDOWN", ev.Type)
	}
	if e := h.master.nextExit(t); e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}
}

func TestHostLost(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-checkpoint", true)
	ex := execCustomExecutor("testexec", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)
	h.agent.RunTask(fw, nil, h.commandTask("cmd", "sleep 600"))
	h.expectUpdate("cmd", mesos.TASK_STARTING)
	h.agent.Stop(HostLost)
	execNoProcessesLeft(t, h.workDir)
	if err := h.agent.Start(); err == nil {
		t.Errorf("a lost agent started again")
	}
	h.noMoreUpdates(200 * time.Millisecond)
	if n := h.master.pending("exit"); n != 0 {
		t.Errorf("%d exits reported by a lost agent", n)
	}
}

func TestHeartbeats(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.ExecutorHeartbeatInterval = 50 * time.Millisecond })
	fw := execFramework("fw-heartbeat", false)
	ex := execCustomExecutor("testexec", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	execWaitFile(t, filepath.Join(h.sandbox(fw, "testexec"), "events.log"), func(s string) bool { return strings.Count(s, "HEARTBEAT") >= 3 })
}
