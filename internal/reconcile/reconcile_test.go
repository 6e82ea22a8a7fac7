package reconcile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
)

func TestMerge(t *testing.T) {
	cases := []struct{ a, b, want time.Duration }{
		{0, 0, 0}, {0, time.Second, time.Second}, {time.Second, 0, time.Second},
		{time.Second, 2 * time.Second, time.Second}, {3 * time.Second, 2 * time.Second, 2 * time.Second},
	}
	for _, c := range cases {
		if got := (Result{c.a}).Merge(Result{c.b}); got.RequeueAfter != c.want {
			t.Errorf("%v merge %v = %v, want %v", c.a, c.b, got.RequeueAfter, c.want)
		}
	}
	if After(-time.Second) != (Result{}) {
		t.Error("After of a negative duration requeues")
	}
}

func TestCallTurnsPanicsAndErrorsIntoCallbackErrors(t *testing.T) {
	ctx := context.Background()
	if err := Call(ctx, time.Second, "Start", "x", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Call(ctx, time.Second, "Start", "x", func(context.Context) error { return boom })
	var cbErr *CallbackError
	if !errors.As(err, &cbErr) || !errors.Is(err, boom) || cbErr.Panicked {
		t.Fatalf("error: %v", err)
	}
	err = Call(ctx, time.Second, "MasterLost", "x-0", func(context.Context) error { panic("oops") })
	if !errors.As(err, &cbErr) || !cbErr.Panicked || cbErr.Callback != "MasterLost" {
		t.Fatalf("panic: %v", err)
	}
	err = Call(ctx, 10*time.Millisecond, "Config", "x-0", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the callback's deadline: %v", err)
	}
}

func task(ord int, role stateful.Role, state stateful.TaskState) *stateful.Task {
	return &stateful.Task{Instance: "i", Ordinal: ord, Name: stateful.TaskName("i", ord), Role: role, State: state}
}

func TestSurplus(t *testing.T) {
	m, s := stateful.RoleMaster, stateful.RoleSlave
	run := stateful.TaskRunning
	cases := []struct {
		name  string
		inst  *stateful.Instance
		tasks []*stateful.Task
		want  []int
	}{
		{"none", &stateful.Instance{Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2},
			[]*stateful.Task{task(0, m, run), task(1, s, run), task(2, s, run)}, nil},
		{"highest slaves go", &stateful.Instance{Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1},
			[]*stateful.Task{task(0, m, run), task(1, s, run), task(2, s, run), task(3, s, run)}, []int{2, 3}},
		{"after a failover the master is kept", &stateful.Instance{Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1, MasterOrdinal: 2},
			[]*stateful.Task{task(0, s, run), task(1, s, run), task(2, m, run)}, []int{1}},
		{"to zero slaves", &stateful.Instance{Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 0, MasterOrdinal: 1},
			[]*stateful.Task{task(0, s, run), task(1, m, run)}, []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.inst.Tasks = c.tasks
			got := slices.Sorted(maps.Keys(Surplus(c.inst)))
			if fmt.Sprint(got) != fmt.Sprint(c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("Surplus = %v, want %v", got, c.want)
			}
		})
	}
}

func TestLostAndForgettable(t *testing.T) {
	for _, c := range []struct {
		state             stateful.TaskState
		lost, forgettable bool
	}{
		{stateful.TaskQueued, false, true},
		{stateful.TaskStaging, false, false},
		{stateful.TaskRunning, false, false},
		{stateful.TaskKilling, false, false},
		{stateful.TaskFailed, true, true},
		{stateful.TaskFinished, true, true},
		{stateful.TaskGone, true, true},
		{stateful.TaskUnreachable, true, true},
		{stateful.TaskUnknown, true, true},
	} {
		tk := task(0, stateful.RoleMaster, c.state)
		if Lost(tk) != c.lost || Forgettable(tk) != c.forgettable {
			t.Errorf("%s: lost %t forgettable %t, want %t %t", c.state, Lost(tk), Forgettable(tk), c.lost, c.forgettable)
		}
	}
}

func TestLocksSerialise(t *testing.T) {
	var l Locks
	unlock, err := l.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a held lock was taken again: %v", err)
	}
	other, err := l.Lock(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	other()
	got := make(chan struct{})
	go func() {
		u, err := l.Lock(context.Background(), "a")
		if err == nil {
			u()
		}
		close(got)
	}()
	unlock()
	<-got
	if n := l.Len(); n != 0 {
		t.Errorf("%d keys still tracked after every lock was released", n)
	}
}
