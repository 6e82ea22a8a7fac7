package maintainer

import (
	"context"
	"fmt"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor/protocol"
)

// switchWorkload is the recording workload with a Switchover.
type switchWorkload struct {
	*workload
}

func (w switchWorkload) Switchover(_ context.Context, _ stateful.Handle, _ *stateful.Instance, from, to *stateful.Task) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, fmt.Sprintf("Switchover %s→%s", from.Name, to.Name))
	return w.fail["Switchover"]
}

func setRoles(sent []protocol.Message) map[string]string {
	out := map[string]string{}
	for _, m := range sent {
		if sr, ok := m.(*protocol.SetRole); ok {
			out[sr.TaskID] = sr.Role
		}
	}
	return out
}

func TestPromoteTellsTheExecutorsTheirRoles(t *testing.T) {
	f := newFixture(t)
	inst := f.create(t, "p", false, stateful.TaskRunning, stateful.TaskRunning, stateful.TaskRunning)
	if err := f.m.Handle().Promote(ctx, inst, inst.Tasks[2]); err != nil {
		t.Fatal(err)
	}
	f.msgs.mu.Lock()
	got := setRoles(f.msgs.sent)
	f.msgs.sent = nil
	f.msgs.mu.Unlock()
	if got["p-2.1"] != "master" || got["p-0.1"] != "slave" || len(got) != 2 {
		t.Errorf("set_role sent %v, want p-2.1 master and p-0.1 slave", got)
	}

	// A stats report with the old role (the message was lost) makes the
	// maintainer say it again.
	f.m.Message(ctx, mesos.AgentID{Value: "agent-2"}, mesos.ExecutorID{Value: "p-2.1"}, encode(t, &protocol.Stats{TaskID: "p-2.1", Time: time.Now(), State: "TASK_RUNNING", Role: "slave"}))
	f.msgs.mu.Lock()
	got = setRoles(f.msgs.sent)
	f.msgs.mu.Unlock()
	if got["p-2.1"] != "master" {
		t.Errorf("after a stats report with the old role, set_role sent %v", got)
	}
}

func TestRollSwitchesTheMasterOverLast(t *testing.T) {
	f := newFixture(t)
	f.m.w = switchWorkload{f.w}
	inst := f.create(t, "r", false, stateful.TaskRunning, stateful.TaskRunning, stateful.TaskRunning)
	bump := func() {
		if _, err := f.store.UpdateInstance(ctx, "r", func(w *stateful.Instance) error {
			w.Generation++
			w.Spec.Mem = 128
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	reconcile := func() {
		t.Helper()
		if _, err := f.m.Reconcile(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	reconcile() // RUNNING
	bump()
	reconcile()
	if got := f.kills.killed(); fmt.Sprint(got) != "[r-2.1]" {
		t.Fatalf("first step killed %v, want the highest slave r-2.1", got)
	}
	got, _ := f.store.InstanceWithTasks("r")
	if got.Status != stateful.StatusUpdating {
		t.Errorf("status %s during the rollout, want UPDATING (%s)", got.Status, got.Message)
	}
	// The slaves come back at the new generation (as a launch records).
	for _, n := range []int{1, 2} {
		if _, err := f.store.UpdateTask(ctx, "r", n, func(x *stateful.Task) error {
			x.Relaunch, x.Generation = false, inst.Generation+1
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	reconcile() // asks for the switchover
	got, _ = f.store.InstanceWithTasks("r")
	if got.Switchover == nil || got.Switchover.Reason != stateful.SwitchoverUpdate {
		t.Fatalf("the master's turn stored no switchover: %+v", got.Switchover)
	}
	reconcile() // carries it out
	got, _ = f.store.InstanceWithTasks("r")
	if got.MasterOrdinal != 1 || got.Tasks[0].Role != stateful.RoleSlave || got.Switchover != nil {
		t.Fatalf("after the switchover: master %d, r-0 %s, pending %+v; calls %v", got.MasterOrdinal, got.Tasks[0].Role, got.Switchover, f.w.called())
	}
	if c := f.w.called(); len(c) == 0 || c[len(c)-1] != "Switchover r-0→r-1" {
		t.Errorf("calls %v, want Switchover r-0→r-1", c)
	}
	reconcile() // the old master, now a slave, is relaunched
	if got := f.kills.killed(); fmt.Sprint(got) != "[r-2.1 r-0.1]" {
		t.Errorf("kills %v, want r-0.1 relaunched after the switchover", got)
	}
}

func TestRequestSwitchover(t *testing.T) {
	f := newFixture(t)
	f.create(t, "s", false, stateful.TaskRunning, stateful.TaskRunning)
	if _, err := f.m.RequestSwitchover(ctx, "s", ptr(1)); err == nil {
		t.Fatal("a workload without Switchover accepted a switchover")
	}
	f.m.w = switchWorkload{f.w}
	for _, to := range []int{0, 5} {
		if _, err := f.m.RequestSwitchover(ctx, "s", ptr(to)); err == nil {
			t.Errorf("switchover to %d (not a slave) accepted", to)
		}
	}
	if _, err := f.m.RequestSwitchover(ctx, "s", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Reconcile(ctx, "s"); err != nil { // fixes the target
		t.Fatal(err)
	}
	if _, err := f.m.Reconcile(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.InstanceWithTasks("s")
	if got.MasterOrdinal != 1 || got.Switchover != nil || got.Status != stateful.StatusRunning {
		t.Errorf("after the switchover: master %d, pending %+v, %s %s", got.MasterOrdinal, got.Switchover, got.Status, got.Message)
	}
}

func TestDeriveStatusTellsPlannedWorkFromFaults(t *testing.T) {
	base := func() *stateful.Instance {
		inst := &stateful.Instance{Name: "d", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2, Generation: 1, Status: stateful.StatusRunning}
		for i := range 3 {
			task := stateful.NewTask(inst, i, inst.RoleFor(i), time.Now())
			task.State, task.Healthy, task.Attempt, task.NotifiedAttempt = stateful.TaskRunning, true, 1, 1
			inst.Tasks = append(inst.Tasks, task)
		}
		return inst
	}
	for _, tc := range []struct {
		name   string
		change func(*stateful.Instance)
		want   stateful.InstanceStatus
	}{
		{"all healthy", func(*stateful.Instance) {}, stateful.StatusRunning},
		{"relaunching", func(i *stateful.Instance) { i.Tasks[2].Relaunch = true }, stateful.StatusUpdating},
		{"relaunched, on its way back", func(i *stateful.Instance) {
			i.Tasks[2].Requeue(time.Now())
			i.Tasks[2].Planned = true
		}, stateful.StatusUpdating},
		{"stale generation", func(i *stateful.Instance) { i.Generation = 2 }, stateful.StatusUpdating},
		{"switchover pending", func(i *stateful.Instance) { i.Switchover = &stateful.Switchover{To: 1} }, stateful.StatusUpdating},
		{"new slave", func(i *stateful.Instance) {
			i.Slaves = 3
			i.Tasks = append(i.Tasks, stateful.NewTask(i, 3, stateful.RoleSlave, time.Now()))
		}, stateful.StatusScaling},
		{"lost slave", func(i *stateful.Instance) { i.Tasks[1].Requeue(time.Now()) }, stateful.StatusDegraded},
		{"unhealthy master", func(i *stateful.Instance) { i.Tasks[0].Healthy = false }, stateful.StatusDegraded},
		{"fault during a rollout", func(i *stateful.Instance) {
			i.Generation = 2
			i.Tasks[1].State = stateful.TaskFailed
		}, stateful.StatusDegraded},
	} {
		inst := base()
		tc.change(inst)
		if got, msg := deriveStatus(inst); got != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, got, msg, tc.want)
		}
	}
}

func TestAbortRolloutGoesBackToThePreviousSpec(t *testing.T) {
	f := newFixture(t)
	f.create(t, "a", false, stateful.TaskRunning, stateful.TaskRunning, stateful.TaskRunning)
	if _, err := f.m.AbortRollout(ctx, "a"); err == nil {
		t.Fatal("abort without a rollout accepted")
	}
	// A spec change as creator.Update stores it; ordinal 2 is updated.
	if _, err := f.store.UpdateInstance(ctx, "a", func(w *stateful.Instance) error {
		prev := w.Spec.Clone()
		w.Generation++
		w.PreviousSpec, w.SpecGeneration = &prev, w.Generation
		w.Spec.Mem = 999
		for _, t := range w.Tasks {
			if t.Ordinal == 2 {
				t.Generation = w.Generation
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.AbortRollout(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	got, _ := f.store.InstanceWithTasks("a")
	if got.Spec.Mem != 64 || got.PreviousSpec != nil || got.Generation != 3 {
		t.Fatalf("after abort: mem %v, previous %v, generation %d", got.Spec.Mem, got.PreviousSpec, got.Generation)
	}
	for _, task := range got.Tasks {
		stale := task.Generation < got.Generation
		if stale != (task.Ordinal == 2) {
			t.Errorf("%s at generation %d of %d: only the updated ordinal 2 is to be rolled back", task.Name, task.Generation, got.Generation)
		}
	}
}
