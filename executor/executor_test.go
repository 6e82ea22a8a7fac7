package executor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

func taskData(t *testing.T, d protocol.TaskData) []byte {
	t.Helper()
	b, err := protocol.EncodeTaskData(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func message(t *testing.T, m protocol.Message) *executor.Event {
	t.Helper()
	b, err := protocol.EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return &executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: b}}
}

// waitMessage waits for a framework message from the executor that
// matches and returns it decoded.
func (a *testAgent) waitMessage(within time.Duration, what string, match func(protocol.Message) bool) protocol.Message {
	a.t.Helper()
	var found protocol.Message
	eventually(a.t, within, what, func() bool {
		for _, b := range a.frameworkMessages() {
			m, err := protocol.DecodeMessage(b)
			if err != nil {
				a.t.Fatalf("executor sent an undecodable message %q: %v", b, err)
			}
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func TestExecutorLifecycle(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	a.launch("web-0.1", taskData(t, protocol.TaskData{Command: "echo $$ > " + pidFile + "; exec sleep 1000", Env: map[string]string{"ROLE_NAME": "primary"}}), nil)

	a.waitState("web-0.1", mesos.TASK_RUNNING, 10*time.Second)
	pid := readPID(t, pidFile)
	if subs := a.subscriptions(); len(subs[0].UnacknowledgedTasks) != 0 || len(subs[0].UnacknowledgedUpdates) != 0 {
		t.Errorf("first SUBSCRIBE should carry nothing: %+v", subs[0])
	}

	// HEARTBEAT must not hurt; stats flow.
	a.send(&executor.Event{Type: executor.Event_HEARTBEAT})
	a.waitMessage(5*time.Second, "a stats message", func(m protocol.Message) bool {
		s, ok := m.(*protocol.Stats)
		return ok && s.TaskID == "web-0.1" && s.State == "TASK_RUNNING" && s.MemBytes > 0
	})

	// exec inside the task, with its environment.
	a.send(message(t, &protocol.Exec{ID: "req-1", TaskID: "web-0.1", Cmd: []string{"/bin/sh", "-c", "echo $ROLE_NAME"}}))
	res := a.waitMessage(5*time.Second, "the exec result", func(m protocol.Message) bool {
		r, ok := m.(*protocol.ExecResult)
		return ok && r.ID == "req-1"
	}).(*protocol.ExecResult)
	if res.ExitCode != 0 || res.Stdout != "primary\n" || res.Error != "" || res.TaskID != "web-0.1" {
		t.Errorf("exec result = %+v", res)
	}

	// Bad messages get an error reply, never a crash.
	a.send(&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: []byte(`{"type":"reboot","id":"req-2"}`)}})
	a.send(&executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: []byte(`not json`)}})
	a.send(message(t, &protocol.Exec{ID: "req-3", TaskID: "nope", Cmd: []string{"true"}}))
	a.waitMessage(5*time.Second, "an error reply to the unknown type", func(m protocol.Message) bool {
		e, ok := m.(*protocol.ErrorReply)
		return ok && e.ID == "req-2" && strings.Contains(e.Error, "reboot")
	})
	a.waitMessage(5*time.Second, "an error reply to garbage", func(m protocol.Message) bool {
		e, ok := m.(*protocol.ErrorReply)
		return ok && e.ID == "" && strings.Contains(e.Error, "not a JSON object")
	})
	a.waitMessage(5*time.Second, "an exec result naming the unknown task", func(m protocol.Message) bool {
		r, ok := m.(*protocol.ExecResult)
		return ok && r.ID == "req-3" && r.ExitCode == -1 && strings.Contains(r.Error, "not running")
	})

	// KILL with a policy: SIGTERM is enough for sleep.
	a.send(&executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: mesos.TaskID{Value: "web-0.1"}}})
	a.waitState("web-0.1", mesos.TASK_KILLED, 10*time.Second)
	if alive(pid) {
		t.Error("the killed task's process is still running")
	}
	// Its last task gone and acknowledged, the executor exits by itself.
	if err := run.wait(t, 10*time.Second); err != nil {
		t.Errorf("executor exited with %v", err)
	}

	var got []string
	uuids := map[string]bool{}
	for _, u := range a.statusUpdates() {
		got = append(got, u.GetState().String())
		if uuids[string(u.UUID)] {
			t.Errorf("uuid reused: %x", u.UUID)
		}
		uuids[string(u.UUID)] = true
		if u.UUID[6]>>4 != 4 {
			t.Errorf("uuid %x is not a version 4 UUID", u.UUID)
		}
	}
	if strings.Join(got, ",") != "TASK_STARTING,TASK_RUNNING,TASK_KILLED" {
		t.Errorf("updates = %v", got)
	}
}

func TestExecutorShutdownKillsEveryTaskAndExitsInTime(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{shutdownGrace: 3 * time.Second})
	dir := t.TempDir()
	var pids []int
	for _, id := range []string{"a", "b"} {
		// b ignores SIGTERM: it must be killed by force within the budget.
		cmd := "echo $$ > " + filepath.Join(dir, id) + "; exec sleep 1000"
		if id == "b" {
			cmd = "trap '' TERM; echo $$ > " + filepath.Join(dir, id) + "; while :; do sleep 0.05; done"
		}
		a.launch(id, taskData(t, protocol.TaskData{Command: cmd}), &mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(time.Minute)}})
		a.waitState(id, mesos.TASK_RUNNING, 10*time.Second)
		pids = append(pids, readPID(t, filepath.Join(dir, id)))
	}
	start := time.Now()
	a.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	if err := run.wait(t, 10*time.Second); err != nil {
		t.Errorf("executor exited with %v after SHUTDOWN", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("executor took %v to shut down; the agent's grace period is 3s", d)
	}
	for _, id := range []string{"a", "b"} {
		a.waitState(id, mesos.TASK_KILLED, time.Second)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d survived SHUTDOWN", pid)
		}
	}
}

func TestExecutorShutdownWithNoTask(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{})
	a.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	if err := run.wait(t, 5*time.Second); err != nil {
		t.Errorf("executor exited with %v", err)
	}
}

func TestExecutorReplaysUnacknowledgedUpdatesAfterAgentRestart(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{checkpoint: true})
	dir := t.TempDir()
	goFile := filepath.Join(dir, "go")
	a.launch("db-0.1", taskData(t, protocol.TaskData{Command: "while [ ! -f " + goFile + " ]; do sleep 0.05; done; exit 0"}), nil)
	a.waitState("db-0.1", mesos.TASK_RUNNING, 10*time.Second)

	// The agent dies; meanwhile the task finishes. Its update cannot be
	// delivered, yet it is not lost.
	a.down()
	if err := writeFile(goFile); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the agent stays down a while: a scenario, not a synchronisation
	if run.exited() {
		t.Fatal("a checkpointing executor gave up on its agent at once")
	}
	a.up()

	finished := a.waitState("db-0.1", mesos.TASK_FINISHED, 10*time.Second)
	var replayed bool
	for _, s := range a.subscriptions()[1:] {
		for _, u := range s.UnacknowledgedUpdates {
			if string(u.Status.UUID) == string(finished.UUID) {
				replayed = true
			}
		}
	}
	if !replayed {
		t.Errorf("TASK_FINISHED was not replayed in a SUBSCRIBE (%d subscriptions)", len(a.subscriptions()))
	}
	if err := run.wait(t, 10*time.Second); err != nil {
		t.Errorf("executor exited with %v", err)
	}
}

func TestExecutorReplaysUnacknowledgedTasks(t *testing.T) {
	a := newTestAgent(t)
	a.setHoldAcks(true)
	run, _ := startExecutor(t, a, execSetup{checkpoint: true})
	a.launch("db-0.1", taskData(t, protocol.TaskData{Command: "exec sleep 1000"}), nil)
	a.waitState("db-0.1", mesos.TASK_RUNNING, 10*time.Second)

	// Nothing was acknowledged: a re-subscription carries the task and
	// both updates, in order.
	a.down()
	a.up()
	var sub executor.Call_Subscribe
	eventually(t, 10*time.Second, "a second SUBSCRIBE", func() bool {
		subs := a.subscriptions()
		if len(subs) < 2 {
			return false
		}
		sub = subs[len(subs)-1]
		return true
	})
	if len(sub.UnacknowledgedTasks) != 1 || sub.UnacknowledgedTasks[0].TaskID.Value != "db-0.1" {
		t.Errorf("unacknowledged tasks = %+v", sub.UnacknowledgedTasks)
	}
	var states []string
	for _, u := range sub.UnacknowledgedUpdates {
		states = append(states, u.Status.GetState().String())
	}
	if strings.Join(states, ",") != "TASK_STARTING,TASK_RUNNING" {
		t.Errorf("unacknowledged updates = %v, want STARTING then RUNNING", states)
	}
	a.setHoldAcks(false)
	a.send(&executor.Event{Type: executor.Event_SHUTDOWN})
	if err := run.wait(t, 10*time.Second); err != nil {
		t.Errorf("executor exited with %v", err)
	}
}

func TestExecutorWithoutCheckpointExitsWhenTheAgentIsGone(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{checkpoint: false})
	pidFile := filepath.Join(t.TempDir(), "pid")
	a.launch("c-0.1", taskData(t, protocol.TaskData{Command: "echo $$ > " + pidFile + "; exec sleep 1000"}), nil)
	a.waitState("c-0.1", mesos.TASK_RUNNING, 10*time.Second)
	pid := readPID(t, pidFile)
	a.down()
	err := run.wait(t, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("exit error = %v, want one about checkpointing", err)
	}
	if alive(pid) {
		t.Error("the task outlived its executor")
	}
}

func TestExecutorGivesUpAfterTheRecoveryTimeout(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{checkpoint: true, recoveryTimeout: 700 * time.Millisecond})
	pidFile := filepath.Join(t.TempDir(), "pid")
	a.launch("c-0.1", taskData(t, protocol.TaskData{Command: "echo $$ > " + pidFile + "; exec sleep 1000"}), nil)
	a.waitState("c-0.1", mesos.TASK_RUNNING, 10*time.Second)
	pid := readPID(t, pidFile)
	start := time.Now()
	a.down()
	err := run.wait(t, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "could not reach the agent") {
		t.Errorf("exit error = %v", err)
	}
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("gave up after %v, before the recovery timeout", d)
	}
	if n := len(a.subscriptions()); n < 1 {
		t.Errorf("subscriptions = %d", n)
	}
	if alive(pid) {
		t.Error("the task outlived its executor")
	}
}

func TestExecutorRejectsBadTaskData(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"future version", `{"version":9,"command":"x"}`, "unsupported task data version 9"},
		{"malformed", `{"version":1,`, "invalid task data"},
		{"none", ``, "empty"},
		{"docker image that cannot be had", `{"version":1,"runtime":"docker","image":"stateful-test/no-such-image:1"}`, "stateful-test/no-such-image:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAgent(t)
			run, _ := startExecutor(t, a, execSetup{})
			a.launch("bad", []byte(tt.data), nil)
			failed := a.waitState("bad", mesos.TASK_FAILED, 10*time.Second)
			if !strings.Contains(failed.GetMessage(), tt.want) {
				t.Errorf("message %q does not contain %q", failed.GetMessage(), tt.want)
			}
			if err := run.wait(t, 10*time.Second); err != nil {
				t.Errorf("executor exited with %v", err)
			}
		})
	}
}

func TestExecutorRejectsTaskGroups(t *testing.T) {
	a := newTestAgent(t)
	run, _ := startExecutor(t, a, execSetup{})
	a.send(&executor.Event{Type: executor.Event_LAUNCH_GROUP, LaunchGroup: &executor.Event_LaunchGroup{TaskGroup: mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{
		{Name: "g", TaskID: mesos.TaskID{Value: "g1"}, AgentID: mesos.AgentID{Value: "agent-1"}},
	}}}})
	failed := a.waitState("g1", mesos.TASK_FAILED, 10*time.Second)
	if !strings.Contains(failed.GetMessage(), "LAUNCH_GROUP") {
		t.Errorf("message = %q", failed.GetMessage())
	}
	if err := run.wait(t, 10*time.Second); err != nil {
		t.Errorf("executor exited with %v", err)
	}
}

func TestExecutorWaitsBoundedForAcknowledgements(t *testing.T) {
	// Like an agent ignoring updates of a terminating framework: no
	// ACKNOWLEDGED ever comes, and the executor still exits.
	a := newTestAgent(t)
	a.setHoldAcks(true)
	run, _ := startExecutor(t, a, execSetup{ackWait: 300 * time.Millisecond})
	a.launch("q", taskData(t, protocol.TaskData{Command: "exit 0"}), nil)
	a.waitState("q", mesos.TASK_FINISHED, 10*time.Second)
	start := time.Now()
	if err := run.wait(t, 10*time.Second); err != nil {
		t.Errorf("executor exited with %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("executor waited %v for acknowledgements", d)
	}
}

func TestExecutorContextCancelStopsTasks(t *testing.T) {
	a := newTestAgent(t)
	run, cancel := startExecutor(t, a, execSetup{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	a.launch("c", taskData(t, protocol.TaskData{Command: "echo $$ > " + pidFile + "; exec sleep 1000"}), nil)
	a.waitState("c", mesos.TASK_RUNNING, 10*time.Second)
	pid := readPID(t, pidFile)
	cancel()
	if err := run.wait(t, 10*time.Second); err == nil {
		t.Error("Run should return the context's error")
	}
	if alive(pid) {
		t.Error("the task outlived its executor")
	}
	a.waitState("c", mesos.TASK_KILLED, 5*time.Second)
}

func TestStatsProviderReachesTheScheduler(t *testing.T) {
	a := newTestAgent(t)
	provider := StatsProviderFunc(func(ctx context.Context, task TaskHandle) (map[string]string, error) {
		return map[string]string{"role": task.Data.Role, "ordinal": strconv.Itoa(task.Data.Ordinal)}, nil
	})
	startExecutor(t, a, execSetup{stats: provider})
	a.launch("s-3.1", taskData(t, protocol.TaskData{Command: "exec sleep 1000", Role: protocol.RoleSlave, Ordinal: 3}), nil)
	m := a.waitMessage(5*time.Second, "stats with workload figures", func(m protocol.Message) bool {
		s, ok := m.(*protocol.Stats)
		return ok && s.Workload["role"] == "slave"
	}).(*protocol.Stats)
	if m.Workload["ordinal"] != "3" {
		t.Errorf("workload = %v", m.Workload)
	}
}

func TestShutdownBudgetFitsTheGracePeriod(t *testing.T) {
	for _, period := range []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, time.Minute} {
		grace, acks := shutdownBudget(period, DefaultAckWait)
		if grace < 0 || acks < 0 || grace+acks+period/5 > period {
			t.Errorf("period %v: task grace %v + acks %v + kill time %v exceed it", period, grace, acks, period/5)
		}
		if period >= 3*time.Second && grace < period/3 {
			t.Errorf("period %v: tasks get only %v to stop gracefully", period, grace)
		}
	}
}

func TestUUIDsAreFresh(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		u := newUUID()
		if len(u) != 16 || seen[string(u)] || u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Fatalf("bad or repeated uuid %x", u)
		}
		seen[string(u)] = true
	}
}

func writeFile(path string) error { return os.WriteFile(path, []byte("1\n"), 0o644) }
