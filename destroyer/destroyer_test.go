package destroyer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

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

// TestDestroy follows a destroy on the real state store: DELETING is
// stored at once, every live task is killed on every pass until Mesos
// reports it ended, queued tasks leave the task queue, and the instance
// and its tasks are removed only when nothing runs. Repeating the request
// or the pass changes nothing.
func TestDestroy(t *testing.T) {
	ctx := context.Background()
	store := statemgrtest.NewStore(t)
	queue := buffer.NewTaskQueue[offermgr.Demand]()
	kills := &killRecorder{}
	var enqueued []string
	d, err := New(store, queue, kills, func(n string) { enqueued = append(enqueued, n) }, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Destroy(ctx, "ghost"); !errors.Is(err, stateful.ErrNotFound) {
		t.Fatalf("destroying a missing instance: %v", err)
	}

	inst := &stateful.Instance{Name: "d", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2,
		Spec: stateful.Spec{CPU: 0.1, Mem: 64, Command: "sleep 100", Network: stateful.NetworkHost}}
	tasks := inst.InitialTasks(time.Now())
	for i, state := range []stateful.TaskState{stateful.TaskRunning, stateful.TaskUnreachable} {
		tasks[i].TaskID, tasks[i].Attempt, tasks[i].State, tasks[i].AgentID = stateful.FormatTaskID("d", i, 1), 1, state, "agent"
	}
	if err := store.CreateInstance(ctx, inst, tasks); err != nil {
		t.Fatal(err)
	}
	queue.Put("d-2", offermgr.Demand{Key: offermgr.Key{Instance: "d", Ordinal: 2}})

	for range 2 {
		got, err := d.Destroy(ctx, "d")
		if err != nil || got.Status != stateful.StatusDeleting {
			t.Fatalf("Destroy = %v, %v", got, err)
		}
	}
	if fmt.Sprint(enqueued) != "[d d]" {
		t.Errorf("enqueued %v", enqueued)
	}
	for range 2 {
		res, err := d.Reconcile(ctx, "d")
		if err != nil || res.RequeueAfter != time.Second {
			t.Fatalf("Reconcile = %+v, %v; want a requeue while d-0 runs", res, err)
		}
	}
	// Only the running task is killed (the unreachable one cannot be, and
	// is killed as an unknown task should it come back).
	if fmt.Sprint(kills.kills) != "[d-0.1 d-0.1]" || queue.Len() != 0 {
		t.Fatalf("kills %v, queue %d", kills.kills, queue.Len())
	}
	if _, err := store.UpdateTask(ctx, "d", 0, func(t *stateful.Task) error { t.State = stateful.TaskKilled; return nil }); err != nil {
		t.Fatal(err)
	}
	if res, err := d.Reconcile(ctx, "d"); err != nil || res.RequeueAfter != 0 {
		t.Fatalf("Reconcile = %+v, %v", res, err)
	}
	if _, err := store.Instance("d"); !errors.Is(err, stateful.ErrNotFound) {
		t.Fatalf("instance still stored: %v", err)
	}
	if len(store.Tasks("d")) != 0 {
		t.Fatalf("tasks still stored: %v", store.Tasks("d"))
	}
	if _, err := d.Reconcile(ctx, "d"); err != nil {
		t.Fatalf("a pass after the removal: %v", err)
	}
}
