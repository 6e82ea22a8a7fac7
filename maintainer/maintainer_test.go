package maintainer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// The maintainer's tests run on the real state store (embedded etcd);
// Mesos is replaced by recorders of kills and messages.

type killRecorder struct {
	mu    sync.Mutex
	kills []string
}

func (k *killRecorder) Kill(_ context.Context, taskID, _ string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kills = append(k.kills, taskID)
	return nil
}

func (k *killRecorder) killed() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.kills)
}

// messenger hands each message to reply, if set.
type messenger struct {
	mu    sync.Mutex
	sent  []protocol.Message
	reply func(agentID, executorID string, m protocol.Message)
}

func (f *messenger) Message(_ context.Context, agentID, executorID string, data []byte) error {
	m, err := protocol.DecodeMessage(data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.sent = append(f.sent, m)
	reply := f.reply
	f.mu.Unlock()
	if reply != nil {
		go reply(agentID, executorID, m)
	}
	return nil
}

// workload records callbacks; fail makes the named callback fail.
type workload struct {
	stateful.BaseWorkload
	mu    sync.Mutex
	calls []string
	fail  map[string]error
	// duringMasterLost, if set, runs inside MasterLost (before the
	// promotion), as a status update arriving meanwhile would.
	duringMasterLost func()
}

func (w *workload) note(name string, t *stateful.Task) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, fmt.Sprintf("%s %s#%d", name, t.Name, t.Attempt))
	return w.fail[name]
}

func (w *workload) MasterRunning(_ context.Context, _ stateful.Handle, _ *stateful.Instance, t *stateful.Task) error {
	return w.note("MasterRunning", t)
}

func (w *workload) SlaveRunning(_ context.Context, _ stateful.Handle, _ *stateful.Instance, t *stateful.Task) error {
	return w.note("SlaveRunning", t)
}

func (w *workload) MasterLost(ctx context.Context, h stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	if err := w.note("MasterLost", t); err != nil {
		return err
	}
	if w.duringMasterLost != nil {
		w.duringMasterLost()
	}
	return stateful.DefaultMasterLost(ctx, h, inst, t)
}

func (w *workload) SlaveLost(_ context.Context, _ stateful.Handle, _ *stateful.Instance, t *stateful.Task) error {
	return w.note("SlaveLost", t)
}

func (w *workload) called() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

type fixture struct {
	store    *statemgr.Store
	m        *Maintainer
	w        *workload
	kills    *killRecorder
	msgs     *messenger
	enqueued chan string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, statemgrtest.NewStore(t))
}

// newFixtureOn is newFixture on a given (leading) store.
func newFixtureOn(t *testing.T, store *statemgr.Store) *fixture {
	t.Helper()
	f := &fixture{
		store:    store,
		w:        &workload{fail: map[string]error{}},
		kills:    &killRecorder{},
		msgs:     &messenger{},
		enqueued: make(chan string, 100),
	}
	cfg := NewConfig()
	cfg.KillRetry = time.Second
	m, err := New(cfg, f.store, f.w, f.kills, f.msgs, func(name string) { f.enqueued <- name })
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	return f
}

var ctx = context.Background()

// create stores an MS instance whose tasks run as given: each task i is at
// attempt 1 on agent-i, in states[i].
func (f *fixture) create(t *testing.T, name string, health bool, states ...stateful.TaskState) *stateful.Instance {
	t.Helper()
	inst := &stateful.Instance{Name: name, Type: stateful.TypeMasterSlave, Masters: 1, Slaves: len(states) - 1, Generation: 1,
		Spec: stateful.Spec{CPU: 0.1, Mem: 64, Command: "sleep 100", Network: stateful.NetworkHost, Ports: []string{"p"}}}
	if health {
		inst.Spec.Health = &stateful.HealthCheck{TCP: "p", IntervalS: 1, GraceS: 1, TimeoutS: 1}
	}
	tasks := inst.InitialTasks(time.Now())
	for i, tk := range tasks {
		if states[i] == stateful.TaskQueued {
			continue
		}
		tk.TaskID, tk.Attempt = stateful.FormatTaskID(name, i, 1), 1
		tk.AgentID, tk.Host = fmt.Sprintf("agent-%d", i), "127.0.0.1"
		tk.State, tk.Healthy, tk.Generation = states[i], states[i] == stateful.TaskRunning, 1
	}
	if err := f.store.CreateInstance(ctx, inst, tasks); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.InstanceWithTasks(name)
	return got
}

func status(taskID string, state mesos.TaskState, healthy *bool) mesos.TaskStatus {
	return mesos.TaskStatus{TaskID: mesos.TaskID{Value: taskID}, State: state.Enum(), Healthy: healthy, Message: ptr("msg " + state.String())}
}

func ptr[T any](v T) *T { return &v }

func TestUpdateRecordsTheCurrentAttempt(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", false, stateful.TaskStaging, stateful.TaskStaging)
	if err := f.m.Update(ctx, status("a-0.1", mesos.TASK_RUNNING, nil)); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Task("a", 0)
	if got.State != stateful.TaskRunning || !got.Healthy || got.Message != "msg TASK_RUNNING" {
		t.Errorf("recorded %+v; without a health check RUNNING is healthy", got)
	}
	if name := <-f.enqueued; name != "a" {
		t.Errorf("enqueued %q", name)
	}
	// Duplicates are harmless.
	if err := f.m.Update(ctx, status("a-0.1", mesos.TASK_RUNNING, nil)); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Update(ctx, status("a-0.1", mesos.TASK_FAILED, nil)); err != nil {
		t.Fatal(err)
	}
	got, _ = f.store.Task("a", 0)
	if got.State != stateful.TaskFailed || got.Healthy {
		t.Errorf("recorded %+v", got)
	}
}

func TestUpdateHealth(t *testing.T) {
	f := newFixture(t)
	f.create(t, "h", true, stateful.TaskStaging)
	steps := []struct {
		healthy *bool
		want    bool
	}{
		{ptr(true), true},
		{nil, true}, // a reconciliation answer without health keeps it
		{ptr(false), false},
	}
	for i, s := range steps {
		if err := f.m.Update(ctx, status("h-0.1", mesos.TASK_RUNNING, s.healthy)); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.store.Task("h", 0); got.Healthy != s.want {
			t.Errorf("step %d: healthy %t, want %t", i, got.Healthy, s.want)
		}
	}
}

// TestHealthSurvivesAnAgentThatComesBack: a master that restarted answers
// TASK_UNKNOWN (or, after a partition, TASK_UNREACHABLE) until the agent
// re-registers, then sends TASK_RUNNING without health; the executor does
// not report an unchanged health again, so the task must be healthy again
// by itself, as a scheduler restarted on kept tasks needs.
func TestHealthSurvivesAnAgentThatComesBack(t *testing.T) {
	f := newFixture(t)
	inst := f.create(t, "back", true, stateful.TaskRunning, stateful.TaskRunning)
	if !allHealthy(inst) {
		t.Fatalf("the fixture is not healthy: %+v", inst.Tasks)
	}
	for i, away := range []mesos.TaskState{mesos.TASK_UNKNOWN, mesos.TASK_UNREACHABLE} {
		taskID := inst.Tasks[i].TaskID
		if err := f.m.Update(ctx, status(taskID, away, nil)); err != nil {
			t.Fatal(err)
		}
		got, _ := f.store.InstanceWithTasks("back")
		if allHealthy(got) {
			t.Errorf("%s %s: the instance counts as healthy", taskID, away)
		}
		back := status(taskID, mesos.TASK_RUNNING, nil)
		back.Reason, back.Message = mesos.REASON_AGENT_REREGISTERED.Enum(), ptr("Unknown agent reregistered")
		if err := f.m.Update(ctx, back); err != nil {
			t.Fatal(err)
		}
		got, _ = f.store.InstanceWithTasks("back")
		if tk := got.Tasks[i]; tk.State != stateful.TaskRunning || !tk.Healthy {
			t.Errorf("after %s and back: %s %s healthy=%t, want RUNNING and healthy as the executor last said", away, tk.Name, tk.State, tk.Healthy)
		}
	}
	// An executor's report still counts.
	if err := f.m.Update(ctx, status(inst.Tasks[0].TaskID, mesos.TASK_RUNNING, ptr(false))); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Task("back", 0); got.Healthy {
		t.Error("an unhealthy report was not recorded")
	}
}

func TestUpdateOfUnknownOrStaleAttempts(t *testing.T) {
	f := newFixture(t)
	f.create(t, "s", false, stateful.TaskRunning, stateful.TaskQueued)
	// Move ordinal 0 to attempt 2.
	if _, err := f.store.UpdateTask(ctx, "s", 0, func(tk *stateful.Task) error {
		tk.TaskID, tk.Attempt = "s-0.2", 2
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Ordinal 1 was given up (QUEUED) after attempt 3.
	if _, err := f.store.UpdateTask(ctx, "s", 1, func(tk *stateful.Task) error {
		tk.TaskID, tk.Attempt = "s-1.3", 3
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"not-ours", "ghost-0.1", "s-7.1", "s-0.1", "s-1.3"} {
		err := f.m.Update(ctx, status(id, mesos.TASK_RUNNING, nil))
		if !errors.Is(err, mesoslib.ErrUnknownTask) {
			t.Errorf("%s: %v, want ErrUnknownTask (acknowledge and kill)", id, err)
		}
	}
	if got, _ := f.store.Task("s", 1); got.State != stateful.TaskQueued {
		t.Errorf("an update of a given-up attempt changed the task: %+v", got)
	}
	if got, _ := f.store.Task("s", 0); got.State != stateful.TaskRunning || got.TaskID != "s-0.2" {
		t.Errorf("an update of an old attempt changed the task: %+v", got)
	}
}

func TestRecordBatch(t *testing.T) {
	f := newFixture(t)
	f.create(t, "b", false, stateful.TaskStaging, stateful.TaskStaging, stateful.TaskStaging)
	errs := f.m.RecordBatch(ctx, []mesos.TaskStatus{
		status("b-0.1", mesos.TASK_STARTING, nil),
		status("b-1.1", mesos.TASK_RUNNING, nil),
		status("b-0.1", mesos.TASK_RUNNING, nil), // same task, later: applied in order
		status("b-9.1", mesos.TASK_RUNNING, nil),
		status("b-2.1", mesos.TASK_FAILED, nil),
	})
	for i, want := range []bool{true, true, true, false, true} {
		if (errs[i] == nil) != want {
			t.Errorf("status %d: %v", i, errs[i])
		}
	}
	for ord, want := range []stateful.TaskState{stateful.TaskRunning, stateful.TaskRunning, stateful.TaskFailed} {
		if got, _ := f.store.Task("b", ord); got.State != want {
			t.Errorf("b-%d: %s, want %s", ord, got.State, want)
		}
	}
}

func TestReconcileRunningAndLost(t *testing.T) {
	f := newFixture(t)
	f.create(t, "r", false, stateful.TaskRunning, stateful.TaskRunning, stateful.TaskRunning)
	if _, err := f.m.Reconcile(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	// The stored RUNNING of the master is not enough for SlaveRunning
	// (which points slaves at it): Mesos must confirm it in this term.
	if got := f.w.called(); fmt.Sprint(got) != "[MasterRunning r-0#1]" {
		t.Fatalf("calls %v before the master was confirmed running, want only MasterRunning", got)
	}
	if err := f.m.Update(ctx, status("r-0.1", mesos.TASK_RUNNING, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Reconcile(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Reconcile(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	want := []string{"MasterRunning r-0#1", "SlaveRunning r-1#1", "SlaveRunning r-2#1"}
	if got := f.w.called(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v (once per attempt)", got, want)
	}
	inst, _ := f.store.Instance("r")
	if inst.Status != stateful.StatusRunning {
		t.Errorf("status %s", inst.Status)
	}

	// The master is lost; MasterLost fails once, then succeeds.
	if err := f.m.Update(ctx, status("r-0.1", mesos.TASK_LOST, nil)); err != nil {
		t.Fatal(err)
	}
	f.w.fail["MasterLost"] = errors.New("not now")
	if _, err := f.m.Reconcile(ctx, "r"); err == nil {
		t.Fatal("a failing MasterLost must fail the pass")
	}
	if got, _ := f.store.Task("r", 0); got.State != stateful.TaskLost {
		t.Fatalf("requeued although MasterLost failed: %+v", got)
	}
	delete(f.w.fail, "MasterLost")
	if _, err := f.m.Reconcile(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	inst, _ = f.store.InstanceWithTasks("r")
	lost := inst.Tasks[0]
	if inst.MasterOrdinal != 1 || inst.Tasks[1].Role != stateful.RoleMaster || lost.Role != stateful.RoleSlave {
		t.Errorf("no failover: master ordinal %d, roles %s %s", inst.MasterOrdinal, lost.Role, inst.Tasks[1].Role)
	}
	if lost.State != stateful.TaskQueued || lost.StickyAgentID != "agent-0" || lost.AgentID != "" {
		t.Errorf("the lost master is not queued sticky to its agent: %+v", lost)
	}
	if inst.Status != stateful.StatusDegraded {
		t.Errorf("status %s, want DEGRADED while a task is replaced", inst.Status)
	}
}

func TestRelaunchSkipsTheLostCallback(t *testing.T) {
	f := newFixture(t)
	inst := f.create(t, "x", false, stateful.TaskRunning, stateful.TaskQueued)
	h := f.m.Handle()
	if err := h.Relaunch(ctx, inst.Tasks[1]); err != nil {
		t.Fatal(err)
	}
	if len(f.kills.killed()) != 0 {
		t.Fatalf("relaunching a queued task killed %v", f.kills.killed())
	}
	if err := h.Relaunch(ctx, inst.Tasks[0]); err != nil {
		t.Fatal(err)
	}
	if got := f.kills.killed(); fmt.Sprint(got) != "[x-0.1]" {
		t.Fatalf("killed %v", got)
	}
	if got, _ := f.store.Task("x", 0); !got.Relaunch {
		t.Fatal("the relaunch is not recorded")
	}
	if err := f.m.Update(ctx, status("x-0.1", mesos.TASK_KILLED, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Reconcile(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.Task("x", 0)
	if got.State != stateful.TaskQueued || got.Relaunch {
		t.Errorf("after the kill: %+v", got)
	}
	for _, c := range f.w.called() {
		if c == "MasterLost x-0#1" {
			t.Errorf("MasterLost called for a relaunch")
		}
	}
}

func TestPromote(t *testing.T) {
	f := newFixture(t)
	inst := f.create(t, "p", false, stateful.TaskRunning, stateful.TaskRunning, stateful.TaskRunning)
	h := f.m.Handle()
	if err := h.Promote(ctx, inst, inst.Tasks[2]); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.InstanceWithTasks("p")
	if got.MasterOrdinal != 2 || got.Tasks[0].Role != stateful.RoleSlave || got.Tasks[2].Role != stateful.RoleMaster || got.Tasks[1].Role != stateful.RoleSlave {
		t.Errorf("after promoting p-2: %+v", got)
	}
	if err := h.Promote(ctx, got, got.Tasks[2]); err != nil {
		t.Errorf("promoting the master again: %v", err)
	}
	if err := h.Promote(ctx, got, &stateful.Task{Instance: "p", Ordinal: 9, Name: "p-9"}); !errors.Is(err, stateful.ErrNotFound) {
		t.Errorf("promoting a missing task: %v", err)
	}
}

func TestExec(t *testing.T) {
	f := newFixture(t)
	inst := f.create(t, "e", false, stateful.TaskRunning, stateful.TaskQueued)
	f.msgs.reply = func(agentID, executorID string, m protocol.Message) {
		req := m.(*protocol.Exec)
		if agentID != "agent-0" || executorID != "e-0.1" || req.TaskID != "e-0.1" {
			f.m.Message(ctx, mesos.AgentID{Value: agentID}, mesos.ExecutorID{Value: executorID}, encode(t, &protocol.ErrorReply{ID: req.ID, Error: "wrong address"}))
			return
		}
		f.m.Message(ctx, mesos.AgentID{Value: agentID}, mesos.ExecutorID{Value: executorID},
			encode(t, &protocol.ExecResult{ID: req.ID, TaskID: req.TaskID, ExitCode: 3, Stdout: "out", Stderr: "err"}))
	}
	h := f.m.Handle()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := h.Exec(cctx, inst.Tasks[0], []string{"echo", "hi"})
	if err != nil || res.ExitCode != 3 || res.Stdout != "out" || res.Stderr != "err" {
		t.Fatalf("Exec = %+v, %v", res, err)
	}
	if req := f.msgs.sent[0].(*protocol.Exec); req.TimeoutSeconds <= 0 || req.TimeoutSeconds > 5 {
		t.Errorf("the executor's timeout %vs does not follow the caller's deadline", req.TimeoutSeconds)
	}
	if _, err := h.Exec(cctx, inst.Tasks[1], []string{"true"}); err == nil {
		t.Error("Exec in a task that is not running succeeded")
	}

	f.msgs.reply = nil // the executor never answers
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := h.Exec(short, inst.Tasks[0], []string{"true"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec without a reply: %v", err)
	}
}

func TestStatsFollowTheCurrentAttempt(t *testing.T) {
	f := newFixture(t)
	f.create(t, "st", false, stateful.TaskRunning)
	send := func(taskID string, v string) {
		f.m.Message(ctx, mesos.AgentID{Value: "agent-0"}, mesos.ExecutorID{Value: taskID},
			encode(t, &protocol.Stats{TaskID: taskID, State: "TASK_RUNNING", CPUSeconds: 1.5, MemBytes: 1024, Workload: map[string]string{"role": v}}))
	}
	send("st-0.1", "master")
	tasks := f.m.Handle().Tasks(&stateful.Instance{Name: "st"})
	if tasks[0].Stats["role"] != "master" || tasks[0].Stats[StatMemBytes] != "1024" || tasks[0].Stats[StatCPUSeconds] != "1.500" {
		t.Fatalf("stats %v", tasks[0].Stats)
	}
	// A report whose workload figures failed keeps the last good ones and
	// says why; the next good report clears the error.
	f.m.Message(ctx, mesos.AgentID{Value: "agent-0"}, mesos.ExecutorID{Value: "st-0.1"},
		encode(t, &protocol.Stats{TaskID: "st-0.1", State: "TASK_RUNNING", CPUSeconds: 2, MemBytes: 2048, Error: "workload stats: connection refused"}))
	tasks = f.m.Handle().Tasks(&stateful.Instance{Name: "st"})
	if tasks[0].Stats["role"] != "master" || tasks[0].Stats[StatMemBytes] != "2048" || tasks[0].Stats[StatError] == "" {
		t.Fatalf("stats after a failed report: %v", tasks[0].Stats)
	}
	send("st-0.1", "master")
	if tasks = f.m.Handle().Tasks(&stateful.Instance{Name: "st"}); tasks[0].Stats[StatError] != "" {
		t.Fatalf("error kept after a good report: %v", tasks[0].Stats)
	}
	// A later attempt does not show the old attempt's figures.
	if _, err := f.store.UpdateTask(ctx, "st", 0, func(tk *stateful.Task) error {
		tk.TaskID, tk.Attempt = "st-0.2", 2
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tasks = f.m.Handle().Tasks(&stateful.Instance{Name: "st"})
	if len(tasks[0].Stats) != 0 {
		t.Errorf("stats of attempt 1 shown for attempt 2: %v", tasks[0].Stats)
	}
	// Garbage is dropped.
	f.m.Message(ctx, mesos.AgentID{}, mesos.ExecutorID{}, []byte(`{"type":"nonsense"}`))
}

func encode(t *testing.T, m protocol.Message) []byte {
	t.Helper()
	b, err := protocol.EncodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReconciliationAnswerKeepsTheMessage(t *testing.T) {
	f := newFixture(t)
	f.create(t, "m", false, stateful.TaskStaging)
	if err := f.m.Update(ctx, status("m-0.1", mesos.TASK_RUNNING, nil)); err != nil {
		t.Fatal(err)
	}
	answer := status("m-0.1", mesos.TASK_RUNNING, nil)
	answer.Reason, answer.Message = mesos.REASON_RECONCILIATION.Enum(), ptr("Reconciliation: Latest task state")
	if err := f.m.Update(ctx, answer); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Task("m", 0); got.Message != "msg TASK_RUNNING" || got.Reason != "" {
		t.Errorf("a confirming reconciliation answer replaced the message: %q (%s)", got.Message, got.Reason)
	}
	answer.State = mesos.TASK_LOST.Enum()
	if err := f.m.Update(ctx, answer); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Task("m", 0); got.State != stateful.TaskLost || got.Reason != "REASON_RECONCILIATION" {
		t.Errorf("a reconciliation answer with news was not recorded: %+v", got)
	}
}

// TestMasterBackDuringItsFailover: the master's agent is unreachable, and
// re-registers (its task RUNNING again, same attempt) while MasterLost
// promotes a slave. The promotion stands; the old master is not queued
// again but notified under its new role: SlaveRunning re-points it, so it
// is never left as a second master.
func TestMasterBackDuringItsFailover(t *testing.T) {
	f := newFixture(t)
	f.create(t, "r", false, stateful.TaskRunning, stateful.TaskRunning)
	for _, id := range []string{"r-0.1", "r-1.1"} {
		if err := f.m.Update(ctx, status(id, mesos.TASK_RUNNING, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.Reconcile(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Update(ctx, status("r-0.1", mesos.TASK_UNREACHABLE, nil)); err != nil {
		t.Fatal(err)
	}
	f.w.duringMasterLost = func() {
		if err := f.m.Update(ctx, status("r-0.1", mesos.TASK_RUNNING, nil)); err != nil {
			t.Error(err)
		}
	}
	for range 2 {
		if _, err := f.m.Reconcile(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	inst, _ := f.store.InstanceWithTasks("r")
	back := inst.Tasks[0]
	if inst.MasterOrdinal != 1 || back.Role != stateful.RoleSlave {
		t.Fatalf("promotion lost: master ordinal %d, r-0 is %s", inst.MasterOrdinal, back.Role)
	}
	if back.State != stateful.TaskRunning || back.Attempt != 1 {
		t.Errorf("r-0 after coming back: %s attempt %d, want the same attempt RUNNING", back.State, back.Attempt)
	}
	if got := f.w.called(); !slices.Contains(got, "SlaveRunning r-0#1") {
		t.Errorf("calls %v: the old master was not re-pointed (no SlaveRunning for r-0#1)", got)
	}
	if k := f.kills.killed(); slices.Contains(k, "r-0.1") {
		t.Errorf("killed %v: the attempt that came back is re-pointed, not killed", k)
	}
}
