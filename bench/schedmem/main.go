// Command schedmem measures the scheduler's heap bytes per managed task: it
// stores -tasks running tasks in embedded etcd, then builds what a
// scheduler keeps in memory for them (statemgr's cache, loaded from etcd,
// and the maintainer's latest stats, one report per task), runs one
// reconcile pass of the maintainer and the creator over every instance, and
// reports the growth of the live heap divided by the number of tasks.
//
//	go run ./bench/schedmem [-tasks 10000] [-per-instance 10]
//
// The embedded etcd runs in the same process; its own memory is in the
// baseline (measured after the data was written), not in the figure.
// Figures are printed, not asserted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/creator"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/maintainer"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

func main() {
	tasks := flag.Int("tasks", 10000, "running tasks to manage")
	perInstance := flag.Int("per-instance", 10, "tasks per instance (MS: one master, the rest slaves; at most 65)")
	flag.Parse()
	if *tasks < 1 || *perInstance < 1 || *perInstance > 1+stateful.MaxSlaves {
		fmt.Fprintln(os.Stderr, "schedmem: -tasks must be at least 1 and -per-instance between 1 and 65")
		os.Exit(2)
	}
	if err := run(*tasks, *perInstance); err != nil {
		fmt.Fprintln(os.Stderr, "schedmem:", err)
		os.Exit(1)
	}
}

func run(nTasks, perInstance int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "schedmem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	etcd, err := statemgr.StartEmbedded(ctx, dir)
	if err != nil {
		return err
	}
	defer etcd.Close()

	start := time.Now()
	instances, err := write(ctx, etcd, nTasks, perInstance)
	if err != nil {
		return err
	}
	fmt.Printf("schedmem: %d running tasks in %d instances written to embedded etcd in %v\n", nTasks, len(instances), time.Since(start).Round(time.Millisecond))

	before := liveHeap()
	store, err := statemgr.New(ctx, etcd.Client(), "bench")
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Campaign(ctx); err != nil {
		return err
	}
	queue := buffer.NewTaskQueue[offermgr.Demand]()
	m, err := maintainer.New(maintainer.NewConfig(), store, stateful.BaseWorkload{}, nopKiller{}, nopMessenger{}, func(string) {})
	if err != nil {
		return err
	}
	c, err := creator.New(creator.NewConfig(), store, stateful.BaseWorkload{}, m.Handle(), queue, nopKiller{}, func(string) {})
	if err != nil {
		return err
	}
	for _, t := range store.AllTasks() {
		stats := &protocol.Stats{TaskID: t.TaskID, State: "TASK_RUNNING", Time: time.Now(), CPUSeconds: 12.5, MemBytes: 64 << 20,
			Workload: map[string]string{"role": string(t.Role), "replication_offset": "123456789", "connected_slaves": "2"}}
		raw, err := protocol.EncodeMessage(stats)
		if err != nil {
			return err
		}
		m.Message(ctx, mesos.AgentID{Value: t.AgentID}, mesos.ExecutorID{Value: t.TaskID}, raw)
	}
	for _, name := range instances {
		if _, err := m.Reconcile(ctx, name); err != nil {
			return fmt.Errorf("maintainer pass over %s: %w", name, err)
		}
		if _, err := c.Reconcile(ctx, name); err != nil {
			return fmt.Errorf("creator pass over %s: %w", name, err)
		}
	}
	after := liveHeap()
	runtime.KeepAlive(store)
	runtime.KeepAlive(m)
	runtime.KeepAlive(c)

	grown := int64(after) - int64(before)
	fmt.Printf("live heap: %.1f MiB before the scheduler's state, %.1f MiB after\n", mib(before), mib(after))
	fmt.Printf("scheduler heap per managed task: %d bytes (%.1f MiB for %d tasks)\n", grown/int64(nTasks), float64(grown)/(1<<20), nTasks)
	return nil
}

// write stores the instances, every task RUNNING and notified, so that the
// reconcile passes have nothing to change.
func write(ctx context.Context, etcd *statemgr.Embedded, nTasks, perInstance int) ([]string, error) {
	w, err := statemgr.New(ctx, etcd.Client(), "bench")
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := w.Campaign(ctx); err != nil {
		return nil, err
	}
	var names []string
	for left, i := nTasks, 0; left > 0; i++ {
		size := min(left, perInstance)
		left -= size
		inst := &stateful.Instance{Name: "bench-" + strconv.Itoa(i), Type: stateful.TypeMasterSlave, Masters: 1, Slaves: size - 1,
			Generation: 1, Status: stateful.StatusRunning,
			Spec: stateful.Spec{CPU: 0.5, Mem: 256, Disk: 512, Command: "redis-server --port $STATEFUL_PORT_REDIS", Network: stateful.NetworkHost,
				Ports: []string{"redis"}, Volume: "/data", Env: map[string]string{"MAXMEMORY": "200mb"},
				Health: &stateful.HealthCheck{TCP: "redis", IntervalS: 10, GraceS: 30, TimeoutS: 5}}}
		tasks := inst.InitialTasks(time.Now())
		for _, t := range tasks {
			t.TaskID, t.Attempt, t.PreparedAttempt, t.NotifiedAttempt = stateful.FormatTaskID(inst.Name, t.Ordinal, 1), 1, 1, 1
			t.State, t.Healthy, t.Generation = stateful.TaskRunning, true, 1
			t.AgentID = "3a8840eb-c529-41b1-9943-f16f8b63a19f-S" + strconv.Itoa(t.Ordinal)
			t.Host = "10.0.0." + strconv.Itoa(1+t.Ordinal)
			t.Ports = map[string]int{"redis": 31000 + t.Ordinal}
			t.Message = "health check passed"
		}
		if err := w.CreateInstance(ctx, inst, tasks); err != nil {
			return nil, err
		}
		names = append(names, inst.Name)
	}
	return names, nil
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

type nopKiller struct{}

func (nopKiller) Kill(context.Context, string, string) error { return nil }

type nopMessenger struct{}

func (nopMessenger) Message(context.Context, string, string, []byte) error { return nil }
