// Command localmesos-bench measures the embedded Mesos cluster the way a
// framework sees it, through the toolkit's own scheduler client (mesoslib):
//
//   - offers issued per second by the master with -agents agents and one
//     framework that declines everything with no filter (so the allocator
//     may re-offer every agent on every pass), beside the ceiling of one
//     offer per agent per allocation pass;
//   - tasks launched per second: -tasks command tasks (sleep) accepted on
//     those offers until every one is TASK_RUNNING, beside starting the same
//     processes directly with os/exec (the fork/exec floor, same run);
//   - memory per agent: heap in use with -agents agents minus with one,
//     divided by the difference;
//   - restart recovery: -restart-tasks command tasks running, SIGKILL of
//     the process running the cluster, start again on the same work dir:
//     seconds until every task is RUNNING again (restart.go).
//
// Figures are printed, never asserted: this machine is shared and noisy, so
// compare each figure with its baseline from the same run.
//
//	go run ./bench/localmesos -agents 100 -tasks 500 -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos"
	"github.com/mesos-stateful/stateful/mesoslib"
)

func main() {
	agents := flag.Int("agents", 100, "agents in the cluster")
	tasks := flag.Int("tasks", 500, "command tasks to launch")
	offerFor := flag.Duration("offer-time", 3*time.Second, "how long to count offers")
	runs := flag.Int("runs", 3, "runs of each measurement (the median is printed)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	if *agents < 2 || *tasks < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "localmesos-bench: need -agents >= 2, -tasks >= 1, -runs >= 1")
		os.Exit(2)
	}

	var offerRates, launchRates, execRates []float64
	ceiling := float64(*agents) / allocationInterval.Seconds()
	for r := 0; r < *runs; r++ {
		o, err := measureOffers(*agents, *offerFor)
		check(err)
		l, err := measureLaunch(*agents, *tasks)
		check(err)
		e, err := measureExec(*tasks)
		check(err)
		offerRates = append(offerRates, o)
		launchRates, execRates = append(launchRates, l), append(execRates, e)
		fmt.Printf("run %d: %.0f offers/s (ceiling %.0f), %.0f tasks launched/s (os/exec floor %.0f/s)\n", r+1, o, ceiling, l, e)
	}
	perAgent, err := measureMemory(*agents)
	check(err)
	restart, err := restartFigure(*agents, *tasks, *runs)
	check(err)

	fmt.Printf("\nlocalmesos, %d agents, one framework, median of %d runs (GOMAXPROCS=%d)\n", *agents, *runs, runtime.GOMAXPROCS(0))
	fmt.Printf("  %-44s %12s   %s\n", "figure", "localmesos", "baseline (same run)")
	fmt.Printf("  %-44s %12.0f   %.0f: one offer per agent every %v allocation pass\n", "offers issued per second", median(offerRates), ceiling, allocationInterval)
	fmt.Printf("  %-44s %12.0f   %.0f processes/s started by os/exec\n", fmt.Sprintf("tasks launched per second (%d, to RUNNING)", *tasks), median(launchRates), median(execRates))
	fmt.Printf("  %-44s %12s\n", "heap per agent (idle)", fmt.Sprintf("%.1f KiB", perAgent/1024))
	fmt.Println(restart)
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "localmesos-bench: %v\n", err)
		os.Exit(1)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// allocationInterval is short so the allocator, not the timer, is measured.
const allocationInterval = 5 * time.Millisecond

// startCluster starts a cluster with fast timers on free ports.
func startCluster(ctx context.Context, agents int) (*localmesos.Cluster, error) {
	cfg := localmesos.NewConfig()
	cfg.Port = 0
	cfg.Agents = agents
	cfg.AllocationInterval = allocationInterval
	cfg.Resources = "cpus:4;mem:8192;disk:20480;ports:[31000-32000]"
	cfg.SharePorts = true // tasks here take no ports
	return localmesos.Start(ctx, cfg)
}

// framework is a minimal mesoslib consumer.
type framework struct {
	mu        sync.Mutex
	id        string
	onOffers  func([]mesos.Offer)
	running   atomic.Int64
	subscribe chan struct{}
	once      sync.Once
}

func newFramework() *framework { return &framework{subscribe: make(chan struct{})} }

func (f *framework) FrameworkID(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id, nil
}
func (f *framework) SetFrameworkID(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.id = id
	return nil
}
func (f *framework) LiveTasks(context.Context) ([]mesoslib.TaskRef, error) { return nil, nil }
func (f *framework) Subscribed(context.Context, mesoslib.Subscription) {
	f.once.Do(func() { close(f.subscribe) })
}
func (f *framework) Disconnected(context.Context, error) {}
func (f *framework) Offers(_ context.Context, offers []mesos.Offer) {
	f.mu.Lock()
	h := f.onOffers
	f.mu.Unlock()
	if h != nil {
		h(offers)
	}
}
func (f *framework) Rescind(context.Context, mesos.OfferID) {}
func (f *framework) Update(_ context.Context, s mesos.TaskStatus) error {
	if s.GetState() == mesos.TASK_RUNNING {
		f.running.Add(1)
	}
	return nil
}
func (f *framework) Message(context.Context, mesos.AgentID, mesos.ExecutorID, []byte) {}
func (f *framework) Failure(context.Context, mesoslib.Failure)                        {}
func (f *framework) Error(context.Context, string)                                    {}

func connect(ctx context.Context, url string, f *framework) (*mesoslib.Client, <-chan error, error) {
	cfg := mesoslib.NewConfig()
	cfg.Master = url
	cfg.Name = "localmesos-bench"
	c, err := mesoslib.New(cfg, f, f, f)
	if err != nil {
		return nil, nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-f.subscribe:
		return c, errc, nil
	case err := <-errc:
		return nil, nil, fmt.Errorf("subscribe: %v", err)
	case <-time.After(30 * time.Second):
		return nil, nil, fmt.Errorf("subscribe: no SUBSCRIBED within 30s")
	}
}

// measureOffers counts offers while declining each with no filter.
func measureOffers(agents int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := startCluster(ctx, agents)
	if err != nil {
		return 0, err
	}
	defer cluster.Close()
	f := newFramework()
	var count atomic.Int64
	declines := make(chan []mesos.OfferID, 1024)
	f.onOffers = func(offers []mesos.Offer) {
		count.Add(int64(len(offers)))
		ids := make([]mesos.OfferID, len(offers))
		for i, o := range offers {
			ids[i] = o.ID
		}
		select {
		case declines <- ids:
		case <-ctx.Done():
		}
	}
	client, errc, err := connect(ctx, cluster.MasterURL(), f)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	defer func() { // before the cluster closes, as in measureLaunch
		cancel()
		wg.Wait()
		<-errc
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case ids := <-declines:
				_ = client.Decline(ctx, ids, 0)
			case <-ctx.Done():
				return
			}
		}
	}()
	// Let the first full round arrive, then count.
	time.Sleep(200 * time.Millisecond)
	start, n0 := time.Now(), count.Load()
	time.Sleep(d)
	return float64(count.Load()-n0) / time.Since(start).Seconds(), nil
}

// measureLaunch accepts offers with command tasks until n are RUNNING.
func measureLaunch(agents, n int) (float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := startCluster(ctx, agents)
	if err != nil {
		return 0, err
	}
	defer cluster.Close()
	f := newFramework()
	var launched atomic.Int64
	accepts := make(chan mesos.Offer, 4096)
	f.onOffers = func(offers []mesos.Offer) {
		for _, o := range offers {
			select {
			case accepts <- o:
			case <-ctx.Done():
				return
			}
		}
	}
	client, errc, err := connect(ctx, cluster.MasterURL(), f)
	if err != nil {
		return 0, err
	}
	perAgent := (n + agents - 1) / agents
	start := time.Now()
	var wg sync.WaitGroup
	// Our goroutines stop before the cluster does (whichever way this
	// returns): a call to a closed master only reports "connection
	// refused", which would hide why the run ended.
	defer func() {
		cancel()
		wg.Wait()
		<-errc
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		seq := 0
		for {
			select {
			case o := <-accepts:
				var infos []mesos.TaskInfo
				for i := 0; i < perAgent && launched.Load() < int64(n); i++ {
					seq++
					launched.Add(1)
					infos = append(infos, commandTask("t"+strconv.Itoa(seq), o.AgentID))
				}
				if len(infos) == 0 {
					_ = client.Decline(ctx, []mesos.OfferID{o.ID}, time.Hour)
					continue
				}
				op := mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: infos}}
				if err := client.Accept(ctx, []mesos.OfferID{o.ID}, []mesos.Offer_Operation{op}, time.Hour); err != nil && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "accept: %v\n", err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for f.running.Load() < int64(n) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d tasks RUNNING after 5 minutes", f.running.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func commandTask(id string, agent mesos.AgentID) mesos.TaskInfo {
	shell := true
	return mesos.TaskInfo{
		Name:    id,
		TaskID:  mesos.TaskID{Value: id},
		AgentID: agent,
		Command: &mesos.CommandInfo{Value: proto("sleep 600"), Shell: &shell},
		Resources: []mesos.Resource{
			scalar("cpus", 0.01), scalar("mem", 1),
		},
	}
}

func proto(s string) *string { return &s }

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// measureExec starts n `sh -c "sleep 600"` processes in their own process
// groups, as the agent does, then kills them.
func measureExec(n int) (float64, error) {
	cmds := make([]*exec.Cmd, 0, n)
	defer func() {
		for _, c := range cmds {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			_ = c.Wait()
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		c := exec.Command("/bin/sh", "-c", "sleep 600")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, c)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// measureMemory compares the heap with many agents to the heap with one.
func measureMemory(agents int) (float64, error) {
	heap := func(n int) (uint64, error) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		cluster, err := startCluster(ctx, n)
		if err != nil {
			return 0, err
		}
		defer cluster.Close()
		time.Sleep(300 * time.Millisecond) // a few allocation passes
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if after.HeapAlloc < before.HeapAlloc {
			return 0, nil
		}
		return after.HeapAlloc - before.HeapAlloc, nil
	}
	one, err := heap(1)
	if err != nil {
		return 0, err
	}
	many, err := heap(agents)
	if err != nil {
		return 0, err
	}
	return (float64(many) - float64(one)) / float64(agents-1), nil
}
