// Command statusupdates measures how many task status updates per second
// the scheduler persists with embedded etcd, through the path Mesos updates
// take (maintainer.RecordBatch into statemgr): one etcd transaction per
// update beside batches that share one transaction, and so one disk sync.
// Then it measures the live path's recorder, maintainer.Batcher, fed the
// way mesoslib feeds it (one update after the other from one goroutine,
// never waiting for an update to be persisted), with the framework's
// default batch size and linger: updates/s, transactions, and how long an
// update waits to be persisted (which is when mesoslib acknowledges it).
//
//	go run ./bench/statusupdates [-tasks 640] [-updates 2000] [-batches 1,8,64,100] [-batch-size 64] [-linger 2ms]
//
// Figures are printed, not asserted; they depend mostly on the disk's sync
// latency.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	bcfg := maintainer.NewBatcherConfig()
	flag.IntVar(&bcfg.Size, "batch-size", bcfg.Size, "the batcher's most updates per transaction")
	flag.DurationVar(&bcfg.Linger, "linger", bcfg.Linger, "how long the batcher's first update of a batch waits for others")
	flag.Parse()
	if err := bcfg.Validate(); err != nil {
		fail(fmt.Errorf("-batch-size/-linger: %w", err))
	}
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
	if err := run(*tasks, *updates, batches, bcfg); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "statusupdates:", err)
	os.Exit(1)
}

func run(nTasks, nUpdates int, batches []int, bcfg maintainer.BatcherConfig) error {
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
	fmt.Fprintln(w, "RecordBatch, updates per transaction\tupdates/s\tms per transaction\t")
	seq := 0
	next := func() mesos.TaskStatus {
		seq++
		// Alternate the state so that every update changes the document
		// and is written.
		state := mesos.TASK_RUNNING
		if seq%2 == 0 {
			state = mesos.TASK_STARTING
		}
		msg := "update " + strconv.Itoa(seq)
		return mesos.TaskStatus{TaskID: mesos.TaskID{Value: ids[seq%len(ids)]}, State: state.Enum(), Message: &msg}
	}
	for _, size := range batches {
		start := time.Now()
		txns := 0
		for done := 0; done < nUpdates; {
			n := min(size, nUpdates-done)
			batch := make([]mesos.TaskStatus, n)
			for i := range batch {
				batch[i] = next()
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
		fmt.Fprintf(w, "%d\t%.0f\t%.2f\t\n", size, float64(nUpdates)/elapsed.Seconds(), float64(elapsed.Microseconds())/1000/float64(txns))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Printf("\nlive path: maintainer.Batcher (up to %d per transaction, linger %v) as mesoslib's async path feeds it\n\n", bcfg.Size, bcfg.Linger)
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "updates arriving\tupdates\tupdates/s\ttransactions\tupdates per transaction\tms to persisted, p50\tp99\tmax\t")
	for _, run := range []struct {
		name string
		n    int
		wait bool
	}{
		// A burst: mesoslib hands each update over and reads the next.
		{"in a burst", nUpdates, false},
		// A trickle: each update comes alone, so it waits out the linger.
		{"one at a time", min(nUpdates, 200), true},
	} {
		res, err := measureBatcher(ctx, m, etcd, bcfg, run.n, run.wait, next)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t\n", run.name, run.n, res.rate, res.txns, float64(run.n)/float64(max(res.txns, 1)),
			ms(res.latency[len(res.latency)/2]), ms(res.latency[len(res.latency)*99/100]), ms(res.latency[len(res.latency)-1]))
	}
	return w.Flush()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type batcherResult struct {
	rate    float64         // updates persisted per second
	txns    int             // etcd transactions (revisions) they took
	latency []time.Duration // per update, from hand-over to done, sorted
}

// measureBatcher hands n updates to a running Batcher from one goroutine,
// without waiting (or, with wait, each once the one before is persisted),
// and times each until its done.
func measureBatcher(ctx context.Context, m *maintainer.Maintainer, etcd *statemgr.Embedded, cfg maintainer.BatcherConfig, n int, wait bool, next func() mesos.TaskStatus) (batcherResult, error) {
	b, err := maintainer.NewBatcher(m, cfg)
	if err != nil {
		return batcherResult{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	defer func() {
		stop()
		<-ran
	}()

	before, err := etcd.Client().Get(ctx, "revision-probe")
	if err != nil {
		return batcherResult{}, err
	}
	var (
		mu       sync.Mutex
		firstErr error
		latency  = make([]time.Duration, 0, n)
		finished = make(chan struct{})
	)
	start := time.Now()
	persisted := make(chan struct{}, 1)
	for range n {
		s := next()
		handed := time.Now()
		b.UpdateAsync(ctx, s, func(err error) {
			took := time.Since(handed)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("update %s: %w", s.TaskID.Value, err)
			}
			latency = append(latency, took)
			if len(latency) == n {
				close(finished)
			}
			if wait {
				persisted <- struct{}{}
			}
		})
		if wait {
			<-persisted
		}
	}
	<-finished
	elapsed := time.Since(start)
	if firstErr != nil {
		return batcherResult{}, firstErr
	}
	after, err := etcd.Client().Get(ctx, "revision-probe")
	if err != nil {
		return batcherResult{}, err
	}
	slices.Sort(latency)
	return batcherResult{
		rate:    float64(n) / elapsed.Seconds(),
		txns:    int(after.Header.Revision - before.Header.Revision),
		latency: latency,
	}, nil
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
