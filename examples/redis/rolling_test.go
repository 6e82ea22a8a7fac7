package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
)

// TestRollingUpdateSwitchesOver: a spec change of a 1+2 instance rolls the
// slaves one at a time, then switches the master over to a slave (CLIENT
// PAUSE, catch up, promote) and relaunches the old master as a slave; then a
// switchover through the API moves the master back. A client writing
// through the master GET names all along loses no acknowledged write, and
// the instance shows UPDATING, never DEGRADED.
func TestRollingUpdateSwitchesOver(t *testing.T) {
	needRedis(t)
	env := start(t, "process")
	ctx := testCtx(t, 3*time.Minute)
	const name = "roll1"
	if err := env.Create(ctx, createBody(name, nil)); err != nil {
		t.Fatal(err)
	}
	inst, err := env.WaitHealthy(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	before := inst
	for _, task := range inst.Tasks {
		if task.Role == stateful.RoleSlave {
			waitReplicates(t, ctx, inst, task, redistest.Master(inst))
		}
	}

	w := env.StartWriter(ctx, name)
	defer w.Stop()
	err = redistest.Poll(ctx, "the writer's first acknowledged writes", func() (bool, string) {
		acked, _, _ := w.Result()
		return len(acked) > 20, fmt.Sprint(len(acked))
	})
	if err != nil {
		t.Fatal(err)
	}

	rec := recordStatus(env, name)
	defer rec.stop()
	patched, err := env.Client().Update(ctx, name, client.PatchRequest{Spec: json.RawMessage(`{"mem":300}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(patched.Tasks) != 3 || patched.Tasks[0].Stats == nil {
		t.Errorf("PATCH's body has no tasks with stats, unlike GET: %+v", patched.Tasks)
	}
	if inst, err = env.WaitUpdated(ctx, name); err != nil {
		t.Fatal(err)
	}
	m := redistest.Master(inst)
	if m == nil || m.Ordinal == 0 {
		t.Fatalf("the master did not move off ordinal 0 during the rollout: %s", redistest.Describe(inst))
	}
	// The new master was switched over to, not relaunched after: one
	// relaunch per ordinal, each at the new spec.
	for i, task := range inst.Tasks {
		if task.Attempt != before.Tasks[i].Attempt+1 {
			t.Errorf("%s: attempt %d, want %d (one relaunch each)", task.Name, task.Attempt, before.Tasks[i].Attempt+1)
		}
	}
	acked, gap, errs := w.Result()
	t.Logf("rolling update: %d writes acknowledged, longest gap %v, %d client retries", len(acked), gap.Round(time.Millisecond), errs)

	// A switchover through the API moves the master back to ordinal 0
	// without relaunching anything.
	if _, err := env.Client().Switchover(ctx, name, ptr(0)); err != nil {
		t.Fatal(err)
	}
	err = redistest.Poll(ctx, "ordinal 0 to be the master again", func() (bool, string) {
		got, _, err := env.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint(err)
		}
		inst = got
		m := redistest.Master(got)
		return m != nil && m.Ordinal == 0 && got.Switchover == nil && redistest.AllHealthy(got), redistest.Describe(got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := info(t, redistest.Server(inst, inst.Tasks[0]))["role"]; got != "master" {
		t.Errorf("ordinal 0's server is %q after the switchover", got)
	}
	err = redistest.Poll(ctx, "the executors to report the new roles", func() (bool, string) {
		got, _, _ := env.Get(ctx, name)
		if got == nil {
			return false, ""
		}
		for _, task := range got.Tasks {
			if task.Stats[stateful.StatRole] != string(task.Role) {
				return false, redistest.Describe(got)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Error(err)
	}
	w.Stop()
	rec.stop()

	acked, gap, errs = w.Result()
	t.Logf("after the switchover: %d writes acknowledged, longest gap %v, %d client retries", len(acked), gap.Round(time.Millisecond), errs)
	lost, err := w.Lost(ctx, redistest.Server(inst, redistest.Master(inst)))
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged writes lost: %v", len(lost), len(acked), lost[:min(len(lost), 10)])
	}
	seen := rec.statuses()
	if !slices.Contains(seen, stateful.StatusUpdating) || slices.Contains(seen, stateful.StatusDegraded) {
		t.Errorf("statuses seen %v, want UPDATING and never DEGRADED", seen)
	}
}

func ptr[T any](v T) *T { return &v }
