package maintainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// batchFixture is a fixture whose etcd client the test can read revisions
// and watch history with, and a running Batcher.
type batchFixture struct {
	*fixture
	etcd *clientv3.Client
	b    *Batcher
	stop context.CancelFunc
	ran  chan error // Run's result
}

func newBatchFixture(t *testing.T, cfg BatcherConfig) *batchFixture {
	t.Helper()
	e := statemgrtest.StartEtcd(t)
	f := newFixtureOn(t, statemgrtest.NewLeader(t, e))
	b, err := NewBatcher(f.m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	bf := &batchFixture{fixture: f, etcd: e.Client(), b: b, stop: stop, ran: make(chan error, 1)}
	go func() { bf.ran <- b.Run(runCtx) }()
	t.Cleanup(func() { bf.shutdown(t) })
	return bf
}

// shutdown stops Run and waits for it.
func (f *batchFixture) shutdown(t *testing.T) {
	t.Helper()
	f.stop()
	select {
	case err, ok := <-f.ran:
		if ok {
			close(f.ran)
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s of its context ending")
	}
}

// revision is etcd's current revision: every transaction that writes
// raises it by one.
func (f *batchFixture) revision(t *testing.T) int64 {
	t.Helper()
	resp, err := f.etcd.Get(ctx, "revision-probe")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// outcomes collects what each update's done got.
type outcomes struct {
	mu    sync.Mutex
	errs  []error
	calls []int
}

func newOutcomes(n int) *outcomes {
	return &outcomes{errs: make([]error, n), calls: make([]int, n)}
}

func (o *outcomes) done(i int) func(error) {
	return func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls[i]++
		o.errs[i] = err
	}
}

// wait polls until every done has been called, then checks none was
// called twice.
func (o *outcomes) wait(t *testing.T) []error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		missing := 0
		for i, n := range o.calls {
			if n > 1 {
				o.mu.Unlock()
				t.Fatalf("done of update %d called %d times", i, n)
			}
			if n == 0 {
				missing++
			}
		}
		errs := append([]error(nil), o.errs...)
		o.mu.Unlock()
		if missing == 0 {
			return errs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d updates still without an outcome after 10s", missing)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stepStatus(taskID string, state mesos.TaskState, step int) mesos.TaskStatus {
	return mesos.TaskStatus{TaskID: mesos.TaskID{Value: taskID}, State: state.Enum(), Message: ptr("step " + strconv.Itoa(step))}
}

// writtenSteps returns, per task name, the step numbers of the task's
// message in every version etcd stored after revision from up to to (which
// must have written a task), in revision order, and the number of
// transactions that wrote them.
func (f *batchFixture) writtenSteps(t *testing.T, from, to int64) (map[string][]int, int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	prefix := "/stateful/" + statemgrtest.Framework + "/tasks/"
	steps := map[string][]int{}
	revs := map[int64]bool{}
	for resp := range f.etcd.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			t.Fatalf("watch: %v", err)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > to {
				continue
			}
			var task stateful.Task
			if err := json.Unmarshal(ev.Kv.Value, &task); err != nil {
				t.Fatalf("task document at revision %d: %v", ev.Kv.ModRevision, err)
			}
			n, err := strconv.Atoi(strings.TrimPrefix(task.Message, "step "))
			if err != nil {
				t.Fatalf("task %s written with message %q", task.Name, task.Message)
			}
			steps[task.Name] = append(steps[task.Name], n)
			revs[ev.Kv.ModRevision] = true
		}
		if revs[to] {
			return steps, len(revs)
		}
	}
	t.Fatalf("watch ended before revision %d", to)
	return nil, 0
}

func TestBatcherWritesABurstInFewTransactionsInOrder(t *testing.T) {
	const tasks, updates = 10, 300
	f := newBatchFixture(t, BatcherConfig{Size: 64, Linger: 200 * time.Millisecond})
	states := make([]stateful.TaskState, tasks)
	for i := range states {
		states[i] = stateful.TaskStaging
	}
	f.create(t, "burst", false, states...)
	before := f.revision(t)

	// Each task's updates alternate STARTING and RUNNING, so every one
	// changes the document, and carry a rising step number; a batch holds
	// several updates of each task.
	out := newOutcomes(updates)
	last := map[string]int{}
	for i := range updates {
		ordinal := i % tasks
		state := mesos.TASK_STARTING
		if (i/tasks)%2 == 1 {
			state = mesos.TASK_RUNNING
		}
		f.b.UpdateAsync(ctx, stepStatus(stateful.FormatTaskID("burst", ordinal, 1), state, i), out.done(i))
		last[stateful.TaskName("burst", ordinal)] = i
	}
	for i, err := range out.wait(t) {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	after := f.revision(t)
	txns := int(after - before)
	t.Logf("%d updates written in %d transactions", updates, txns)
	if txns >= updates || txns > updates/8 {
		t.Fatalf("%d updates took %d transactions; a burst must share transactions (batches of up to 64)", updates, txns)
	}

	steps, wrote := f.writtenSteps(t, before, after)
	if wrote != txns {
		t.Fatalf("watch saw %d writing transactions, revisions moved by %d", wrote, txns)
	}
	for name, seq := range steps {
		for i := 1; i < len(seq); i++ {
			if seq[i] <= seq[i-1] {
				t.Fatalf("task %s stored step %d after step %d: updates of one task applied out of order (%v)", name, seq[i], seq[i-1], seq)
			}
		}
	}
	for name, want := range last {
		tk, err := f.store.Task("burst", ordinalOf(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if tk.Message != "step "+strconv.Itoa(want) {
			t.Errorf("task %s ends with %q, want its last update, step %d", name, tk.Message, want)
		}
	}
	select {
	case name := <-f.enqueued:
		if name != "burst" {
			t.Fatalf("enqueued %q, want burst", name)
		}
	default:
		t.Fatalf("the instance was not enqueued after its updates were recorded")
	}
}

func ordinalOf(t *testing.T, taskName string) int {
	t.Helper()
	i := strings.LastIndexByte(taskName, '-')
	n, err := strconv.Atoi(taskName[i+1:])
	if err != nil {
		t.Fatalf("task name %q", taskName)
	}
	return n
}

func TestBatcherAppliesTwoUpdatesOfATaskInOneBatchInOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  mesos.TaskState
		second mesos.TaskState
		want   stateful.TaskState
	}{
		{"running then failed", mesos.TASK_RUNNING, mesos.TASK_FAILED, stateful.TaskFailed},
		{"killing then running", mesos.TASK_KILLING, mesos.TASK_RUNNING, stateful.TaskRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A batch of two, written when full: one transaction.
			f := newBatchFixture(t, BatcherConfig{Size: 2, Linger: time.Second})
			f.create(t, "pair", false, stateful.TaskStaging)
			before := f.revision(t)
			out := newOutcomes(2)
			f.b.UpdateAsync(ctx, stepStatus("pair-0.1", tc.first, 1), out.done(0))
			f.b.UpdateAsync(ctx, stepStatus("pair-0.1", tc.second, 2), out.done(1))
			for i, err := range out.wait(t) {
				if err != nil {
					t.Fatalf("update %d: %v", i, err)
				}
			}
			if n := f.revision(t) - before; n != 1 {
				t.Fatalf("%d transactions for one batch", n)
			}
			tk, _ := f.store.Task("pair", 0)
			if tk.State != tc.want || tk.Message != "step 2" {
				t.Fatalf("stored %s %q, want %s \"step 2\" (the later update)", tk.State, tk.Message, tc.want)
			}
		})
	}
}

func TestBatcherOutcomes(t *testing.T) {
	f := newBatchFixture(t, BatcherConfig{Size: 4, Linger: 0})
	f.create(t, "o", false, stateful.TaskStaging, stateful.TaskStaging)
	ended, end := context.WithCancelCause(ctx)
	end(errors.New("subscription closed"))
	before := f.revision(t)

	out := newOutcomes(4)
	f.b.UpdateAsync(ctx, stepStatus("o-0.1", mesos.TASK_RUNNING, 1), out.done(0))
	f.b.UpdateAsync(ctx, stepStatus("ghost-0.1", mesos.TASK_RUNNING, 2), out.done(1))
	f.b.UpdateAsync(ctx, stepStatus("o-0.7", mesos.TASK_RUNNING, 3), out.done(2)) // not the current attempt
	f.b.UpdateAsync(ended, stepStatus("o-1.1", mesos.TASK_RUNNING, 4), out.done(3))
	errs := out.wait(t)
	if errs[0] != nil {
		t.Errorf("known task: %v", errs[0])
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(errs[i], mesoslib.ErrUnknownTask) {
			t.Errorf("update %d: %v, want ErrUnknownTask", i, errs[i])
		}
	}
	if errs[3] == nil || errors.Is(errs[3], mesoslib.ErrUnknownTask) {
		t.Errorf("update of an ended subscription: %v, want an error (not acknowledged)", errs[3])
	}
	if tk, _ := f.store.Task("o", 1); tk.State != stateful.TaskStaging {
		t.Errorf("update of an ended subscription was written: %s", tk.State)
	}
	if tk, _ := f.store.Task("o", 0); tk.State != stateful.TaskRunning {
		t.Errorf("o-0 is %s, want TASK_RUNNING", tk.State)
	}
	if n := f.revision(t) - before; n != 1 {
		t.Errorf("%d transactions, want 1", n)
	}

	// A second Run is refused; after Run, updates fail at once.
	if err := f.b.Run(ctx); err == nil {
		t.Errorf("second Run accepted")
	}
	f.shutdown(t)
	late := newOutcomes(1)
	f.b.UpdateAsync(ctx, stepStatus("o-1.1", mesos.TASK_RUNNING, 5), late.done(0))
	if err := late.wait(t)[0]; !errors.Is(err, ErrBatcherStopped) {
		t.Errorf("update after Run: %v, want ErrBatcherStopped", err)
	}
}

func TestBatcherStopFailsWhatIsNotWritten(t *testing.T) {
	// The batch waits a second for more updates; Run stops first.
	f := newBatchFixture(t, BatcherConfig{Size: 64, Linger: time.Second})
	f.create(t, "s", false, stateful.TaskStaging, stateful.TaskStaging)
	before := f.revision(t)
	out := newOutcomes(2)
	f.b.UpdateAsync(ctx, stepStatus("s-0.1", mesos.TASK_RUNNING, 1), out.done(0))
	f.b.UpdateAsync(ctx, stepStatus("s-1.1", mesos.TASK_RUNNING, 2), out.done(1))
	f.shutdown(t)
	for i, err := range out.wait(t) {
		if !errors.Is(err, ErrBatcherStopped) {
			t.Errorf("update %d: %v, want ErrBatcherStopped", i, err)
		}
	}
	if n := f.revision(t) - before; n != 0 {
		t.Errorf("%d transactions after a stop before the linger ended", n)
	}
}

func TestBatcherConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg BatcherConfig
		ok  bool
	}{
		{NewBatcherConfig(), true},
		{BatcherConfig{Size: 1}, true},
		{BatcherConfig{Size: statemgr.MaxBatch, Linger: time.Second}, true},
		{BatcherConfig{Size: 0, Linger: time.Millisecond}, false},
		{BatcherConfig{Size: statemgr.MaxBatch + 1}, false},
		{BatcherConfig{Size: 8, Linger: -time.Millisecond}, false},
		{BatcherConfig{Size: 8, Linger: 2 * time.Second}, false},
	} {
		t.Run(fmt.Sprintf("%d/%v", tc.cfg.Size, tc.cfg.Linger), func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok = %v", err, tc.ok)
			}
			if _, nerr := NewBatcher(&Maintainer{}, tc.cfg); (nerr == nil) != tc.ok {
				t.Fatalf("NewBatcher: %v, want ok = %v", nerr, tc.ok)
			}
		})
	}
}
