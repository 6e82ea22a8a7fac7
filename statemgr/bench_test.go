package statemgr_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// BenchmarkUpdate compares persisting task status updates one transaction
// each (UpdateTask) with batching them (ApplyTaskUpdates). Each etcd
// transaction costs a disk sync, so the figure to read is updates/s.
func BenchmarkUpdate(b *testing.B) {
	s := statemgrtest.NewStore(b)
	ctx := context.Background()
	inst := &stateful.Instance{Name: "bench", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: stateful.MaxSlaves,
		Spec: stateful.Spec{CPU: 0.1, Mem: 64, Command: "sleep 1000", Network: stateful.NetworkHost}}
	if err := s.CreateInstance(ctx, inst, inst.InitialTasks(time.Now())); err != nil {
		b.Fatal(err)
	}
	tasks := inst.TaskCount()
	seq := 0
	update := func() statemgr.TaskUpdate {
		seq++
		n := seq
		return statemgr.TaskUpdate{Instance: "bench", Ordinal: n % tasks, Mutate: func(t *stateful.Task) error {
			t.State = stateful.TaskRunning
			t.Message = "update " + strconv.Itoa(n)
			return nil
		}}
	}

	b.Run("one-put-per-update", func(b *testing.B) {
		for b.Loop() {
			u := update()
			if _, err := s.UpdateTask(ctx, u.Instance, u.Ordinal, u.Mutate); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
	})
	for _, size := range []int{8, 64} {
		b.Run(fmt.Sprintf("batched-%d", size), func(b *testing.B) {
			batch := make([]statemgr.TaskUpdate, size)
			for b.Loop() {
				for i := range batch {
					batch[i] = update()
				}
				res, err := s.ApplyTaskUpdates(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}
