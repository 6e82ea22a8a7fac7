// Command statusupdates measures how many task status updates per second
// the scheduler persists with embedded etcd, through the path Mesos updates
// take (maintainer.RecordBatch into statemgr): one etcd transaction per
// update beside batches that share one transaction, and so one disk sync.
//
//	go run ./bench/statusupdates [-tasks 640] [-updates 2000] [-batches 1,8,64,100]
//
// Figures are printed, not asserted; they depend mostly on the disk's sync
// latency.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/maintainer"
	"github.com/mesos-stateful/stateful/statemgr"
)

func main() {
	tasks := flag.Int("tasks", 640, "tasks the updates are spread over (in MS instances of up to 65 tasks)")
	updates := flag.Int("updates", 2000, "updates per measurement")
	batchList := flag.String("batches", "1,8,64,100", "batch sizes to measure; 1 is one transaction per update")
	flag.Parse()
	var batches []int
	for _, s := range strings.Split(*batchList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fail(fmt.Errorf("-batches: %q is not a positive number", s))
		}
		batches = append(batches, n)
	}
	if *tasks < 1 || *updates < 1 {
		fail(fmt.Errorf("-tasks and -updates must be at least 1"))
	}
	if err := run(*tasks, *updates, batches); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "statusupdates:", err)
	os.Exit(1)
}

func run(nTasks, nUpdates int, batches []int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "statusupdates-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	etcd, err := statemgr.StartEmbedded(ctx, dir)
	if err != nil {
		return err
	}
	defer etcd.Close()
	store, err := statemgr.New(ctx, etcd.Client(), "bench")
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Campaign(ctx); err != nil {
		return err
	}
	ids, err := createTasks(ctx, store, nTasks)
	if err != nil {
		return err
	}
	m, err := maintainer.New(maintainer.NewConfig(), store, stateful.BaseWorkload{}, nopKiller{}, nopMessenger{}, func(string) {})
	if err != nil {
		return err
	}

	fmt.Printf("statusupdates: %d updates per run over %d tasks, embedded etcd in %s (each transaction is one fsync)\n\n", nUpdates, len(ids), dir)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "updates per transaction\tupdates/s\tms per transaction\t")
	seq := 0
	for _, size := range batches {
		start := time.Now()
		txns := 0
		for done := 0; done < nUpdates; {
			n := min(size, nUpdates-done)
			batch := make([]mesos.TaskStatus, n)
			for i := range batch {
				seq++
				// Alternate the state so that every update changes the
				// document and is written.
				state := mesos.TASK_RUNNING
				if seq%2 == 0 {
					state = mesos.TASK_STARTING
				}
				msg := "update " + strconv.Itoa(seq)
				batch[i] = mesos.TaskStatus{TaskID: mesos.TaskID{Value: ids[seq%len(ids)]}, State: state.Enum(), Message: &msg}
			}
			for i, err := range m.RecordBatch(ctx, batch) {
				if err != nil {
					return fmt.Errorf("update %s: %w", batch[i].TaskID.Value, err)
				}
			}
			done += n
			txns++
		}
		elapsed := time.Since(start)
		fmt.Fprintf(w, "%d\t%.0f\t%.2f\t\n", size, float64(nUpdates)/elapsed.Seconds(), float64(elapsed.Milliseconds())/float64(txns))
	}
	return w.Flush()
}

// createTasks stores MS instances with nTasks tasks in all, each launched
// (attempt 1, STAGING), and returns their task IDs.
func createTasks(ctx context.Context, store *statemgr.Store, nTasks int) ([]string, error) {
	var ids []string
	for i := 0; len(ids) < nTasks; i++ {
		size := min(nTasks-len(ids), 1+stateful.MaxSlaves)
		inst := &stateful.Instance{Name: fmt.Sprintf("bench-%d", i), Type: stateful.TypeMasterSlave, Masters: 1, Slaves: size - 1, Generation: 1,
			Spec: stateful.Spec{CPU: 0.1, Mem: 64, Command: "redis-server", Network: stateful.NetworkHost, Ports: []string{"redis"}}}
		tasks := inst.InitialTasks(time.Now())
		for _, t := range tasks {
			t.TaskID, t.Attempt = stateful.FormatTaskID(inst.Name, t.Ordinal, 1), 1
			t.State, t.AgentID, t.Host = stateful.TaskStaging, "agent-1", "10.0.0.1"
			ids = append(ids, t.TaskID)
		}
		if err := store.CreateInstance(ctx, inst, tasks); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

type nopKiller struct{}

func (nopKiller) Kill(context.Context, string, string) error { return nil }

type nopMessenger struct{}

func (nopMessenger) Message(context.Context, string, string, []byte) error { return nil }
