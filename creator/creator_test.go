package creator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// The creator's tests run on the real state store (embedded etcd) and the
// real task queue; kills and callbacks are recorded.

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

type workload struct {
	stateful.BaseWorkload
	mu    sync.Mutex
	calls []string
	fail  map[string]int
}

func (w *workload) Defaults() stateful.Spec {
	return stateful.Spec{CPU: 0.5, Mem: 128, Disk: 10, Command: "sleep 100", Network: stateful.NetworkHost, Ports: []string{"p"}}
}

func (w *workload) note(s string, callback string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, s)
	if w.fail[callback] > 0 {
		w.fail[callback]--
		return errors.New("injected")
	}
	return nil
}

func (w *workload) Start(_ context.Context, _ stateful.Handle, inst *stateful.Instance) error {
	return w.note("Start "+inst.Name, "Start")
}

func (w *workload) StartMaster(_ context.Context, _ stateful.Handle, _ *stateful.Instance, t *stateful.Task) error {
	return w.note("StartMaster "+t.Name, "StartMaster")
}

func (w *workload) StartSlave(_ context.Context, _ stateful.Handle, _ *stateful.Instance, t *stateful.Task) error {
	return w.note("StartSlave "+t.Name, "StartSlave")
}

func (w *workload) called() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

type fixture struct {
	store *statemgr.Store
	c     *Creator
	w     *workload
	queue *buffer.TaskQueue[offermgr.Demand]
	kills *killRecorder
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		store: statemgrtest.NewStore(t),
		w:     &workload{fail: map[string]int{}},
		queue: buffer.NewTaskQueue[offermgr.Demand](),
		kills: &killRecorder{},
		now:   time.Now(),
	}
	cfg := NewConfig()
	cfg.Now = func() time.Time { return f.now }
	c, err := New(cfg, f.store, f.w, noHandle{}, f.queue, f.kills, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

type noHandle struct{ stateful.Handle }

var ctx = context.Background()

func (f *fixture) queued() []string {
	var out []string
	for _, e := range f.queue.Snapshot() {
		out = append(out, e.Key)
	}
	slices.Sort(out)
	return out
}

func TestCreate(t *testing.T) {
	f := newFixture(t)
	req := &stateful.Instance{Name: "c", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2}
	inst, err := f.c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != stateful.StatusCreating || inst.Generation != 1 || len(inst.Tasks) != 3 || inst.Spec.Mem != 128 {
		t.Fatalf("created %+v", inst)
	}
	for _, tk := range inst.Tasks {
		if tk.State != stateful.TaskQueued {
			t.Errorf("%s is %s", tk.Name, tk.State)
		}
	}
	if _, err := f.c.Create(ctx, req); !errors.Is(err, stateful.ErrExists) {
		t.Errorf("second create: %v", err)
	}
	bad := &stateful.Instance{Name: "d", Type: stateful.TypeSingle, Masters: 1, Slaves: 1}
	if _, err := f.c.Create(ctx, bad); err == nil {
		t.Error("created an S instance with a slave")
	} else if ve, ok := stateful.AsValidationError(err); !ok || ve.Field != "slaves" {
		t.Errorf("error %v does not name the field", err)
	}
}

func TestReconcileStartsAndQueuesOnce(t *testing.T) {
	f := newFixture(t)
	f.w.fail["Start"] = 1
	f.w.fail["StartSlave"] = 1
	if _, err := f.c.Create(ctx, &stateful.Instance{Name: "q", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "q"); err == nil {
		t.Fatal("a failing Start must fail the pass")
	}
	if len(f.queued()) != 0 {
		t.Fatalf("tasks queued before Start succeeded: %v", f.queued())
	}
	if _, err := f.c.Reconcile(ctx, "q"); err == nil {
		t.Fatal("a failing StartSlave must fail the pass")
	}
	// What was prepared before the failure is queued.
	if got := f.queued(); fmt.Sprint(got) != "[q-0]" {
		t.Fatalf("queued %v", got)
	}
	if _, err := f.c.Reconcile(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	want := []string{"Start q", "Start q", "StartMaster q-0", "StartSlave q-1", "StartSlave q-1", "StartSlave q-2"}
	if got := f.w.called(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if got := f.queued(); fmt.Sprint(got) != "[q-0 q-1 q-2]" {
		t.Fatalf("queued %v", got)
	}
	d := f.queue.Snapshot()[0].Value
	if d.CPU != 0.5 || d.Mem != 128 || d.Disk != 10 || fmt.Sprint(d.Ports) != "[p]" || d.Executor.ID == "" || d.Executor.Mem != DefaultExecutorMem || d.PrevAgent != "" {
		t.Errorf("demand %+v", d)
	}
	for _, tk := range f.store.Tasks("q") {
		if tk.PreparedAttempt != 1 {
			t.Errorf("%s: prepared attempt %d", tk.Name, tk.PreparedAttempt)
		}
	}

	// A new Creator (a restarted scheduler) calls nothing again.
	cfg := NewConfig()
	again, _ := New(cfg, f.store, f.w, noHandle{}, buffer.NewTaskQueue[offermgr.Demand](), f.kills, func(string) {})
	if _, err := again.Reconcile(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if got := f.w.called(); len(got) != len(want) {
		t.Errorf("a restart repeated callbacks: %v", got[len(want):])
	}
}

func TestRelaunchBackoffAndStickiness(t *testing.T) {
	f := newFixture(t)
	if _, err := f.c.Create(ctx, &stateful.Instance{Name: "b", Type: stateful.TypeSingle, Masters: 1}); err != nil {
		t.Fatal(err)
	}
	// Attempt 2 failed before it ever ran (NotifiedAttempt 0): the second
	// failure in a row waits twice the base backoff.
	if _, err := f.store.UpdateTask(ctx, "b", 0, func(tk *stateful.Task) error {
		tk.TaskID, tk.Attempt, tk.StickyAgentID = "b-0.2", 2, "agent-7"
		tk.QueuedAt = f.now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	res, err := f.c.Reconcile(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * DefaultRelaunchBackoff; res.RequeueAfter != want || len(f.queued()) != 0 {
		t.Fatalf("requeue after %v with %v queued, want %v and nothing queued", res.RequeueAfter, f.queued(), want)
	}
	f.now = f.now.Add(2 * DefaultRelaunchBackoff)
	if _, err := f.c.Reconcile(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if len(f.queued()) != 1 {
		t.Fatal("not queued after the backoff")
	}
	d := f.queue.Snapshot()[0].Value
	tk, _ := f.store.Task("b", 0)
	if d.PrevAgent != "agent-7" || !d.StickyUntil.Equal(tk.QueuedAt.Add(DefaultStickyWait)) || d.Executor.ID != "b-0.3" {
		t.Errorf("demand %+v", d)
	}
}

func TestUpdateAndScale(t *testing.T) {
	f := newFixture(t)
	if _, err := f.c.Create(ctx, &stateful.Instance{Name: "s", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1}); err != nil {
		t.Fatal(err)
	}
	// Both tasks run.
	for ord := range 2 {
		if _, err := f.store.UpdateTask(ctx, "s", ord, func(tk *stateful.Task) error {
			tk.TaskID, tk.Attempt, tk.State, tk.AgentID = stateful.FormatTaskID("s", ord, 1), 1, stateful.TaskRunning, "a"
			tk.Generation = 1
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	three := 3
	if _, err := f.c.Update(ctx, "s", 7, &three, nil); !errors.Is(err, stateful.ErrConflict) {
		t.Fatalf("update from a stale generation: %v", err)
	}
	inst, err := f.c.Update(ctx, "s", 1, &three, nil)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Generation != 2 || inst.Slaves != 3 || inst.Tasks[0].Generation != 2 {
		t.Fatalf("after scaling: generation %d, slaves %d, task generation %d (a scale is not a spec change)", inst.Generation, inst.Slaves, inst.Tasks[0].Generation)
	}
	if _, err := f.c.Reconcile(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	tasks := f.store.Tasks("s")
	if len(tasks) != 4 || tasks[3].Role != stateful.RoleSlave || tasks[3].State != stateful.TaskQueued {
		t.Fatalf("after the scale-up: %v", tasks)
	}

	one := 1
	if _, err := f.c.Update(ctx, "s", 2, &one, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	// s-2 and s-3 go: s-3 (queued) is deleted; nothing runs to kill.
	tasks = f.store.Tasks("s")
	if len(tasks) != 2 || tasks[1].Ordinal != 1 {
		t.Fatalf("after the scale-down: %v", tasks)
	}
	if slices.Contains(f.queued(), "s-2") || slices.Contains(f.queued(), "s-3") {
		t.Errorf("removed tasks still queued: %v", f.queued())
	}

	// Scale down a running slave: it is killed first, deleted once ended.
	zero := 0
	if _, err := f.c.Update(ctx, "s", 3, &zero, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(f.kills.kills) != "[s-1.1]" || len(f.store.Tasks("s")) != 2 {
		t.Fatalf("killed %v, tasks %v", f.kills.kills, f.store.Tasks("s"))
	}
	if _, err := f.store.UpdateTask(ctx, "s", 1, func(tk *stateful.Task) error { tk.State = stateful.TaskKilled; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if len(f.store.Tasks("s")) != 1 {
		t.Fatalf("the killed slave was not removed: %v", f.store.Tasks("s"))
	}

	spec := stateful.Spec{Mem: 256}
	inst, err = f.c.Update(ctx, "s", 4, nil, &spec)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Spec.Mem != 256 || inst.Spec.Command != "sleep 100" || inst.Tasks[0].Generation != 4 {
		t.Errorf("after a spec change: %+v (tasks keep their generation until rolled)", inst)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"--port", "6379", "a b", "it's", "", "$HOME"})
	want := `--port 6379 'a b' 'it'\''s' '' '$HOME'`
	if got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}

func TestCreateRefusesWhatTheRuntimeCannotRun(t *testing.T) {
	f := newFixture(t)
	cfg := NewConfig()
	cfg.Runtime = "docker"
	c, err := New(cfg, f.store, f.w, noHandle{}, f.queue, f.kills, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(ctx, &stateful.Instance{Name: "r", Type: stateful.TypeSingle, Masters: 1})
	if ve, ok := stateful.AsValidationError(err); !ok || ve.Field != "spec.image" {
		t.Fatalf("create without an image on the docker runtime: %v", err)
	}
	if _, err := f.store.Instance("r"); !errors.Is(err, stateful.ErrNotFound) {
		t.Errorf("a refused create stored the instance: %v", err)
	}
}

// TestSlavesWaitForConfirmedMaster: a slave of an MS instance is queued
// only once Mesos confirmed its master running in this term; a stored
// RUNNING (from before a crash, say) is not enough, and a master that is
// no longer confirmed takes its queued slaves off the queue again.
func TestSlavesWaitForConfirmedMaster(t *testing.T) {
	f := newFixture(t)
	confirmed := map[string]bool{}
	cfg := NewConfig()
	cfg.Now = func() time.Time { return f.now }
	cfg.Confirmed = func(id string) bool { return confirmed[id] }
	c, err := New(cfg, f.store, f.w, noHandle{}, f.queue, f.kills, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, &stateful.Instance{Name: "w", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if got := f.queued(); fmt.Sprint(got) != "[w-0]" {
		t.Fatalf("queued %v, want the master alone", got)
	}
	// The master runs as far as the store says, unconfirmed.
	if _, err := f.store.UpdateTask(ctx, "w", 0, func(tk *stateful.Task) error {
		tk.TaskID, tk.Attempt, tk.State, tk.Host, tk.Ports = "w-0.1", 1, stateful.TaskRunning, "h", map[string]int{"p": 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.queue.Remove("w-0")
	if _, err := c.Reconcile(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if got := f.queued(); len(got) != 0 {
		t.Fatalf("queued %v while the master is not confirmed running", got)
	}
	confirmed["w-0.1"] = true
	if _, err := c.Reconcile(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if got := f.queued(); fmt.Sprint(got) != "[w-1 w-2]" {
		t.Fatalf("queued %v once the master was confirmed, want both slaves", got)
	}
	delete(confirmed, "w-0.1")
	if _, err := c.Reconcile(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	if got := f.queued(); len(got) != 0 {
		t.Fatalf("queued %v after the master stopped being confirmed", got)
	}
}
