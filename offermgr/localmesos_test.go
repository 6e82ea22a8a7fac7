package offermgr

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos"
	"github.com/mesos-stateful/stateful/mesoslib"
)

// TestManagerOnLocalMesos runs the Manager against the real pieces: a
// localmesos cluster of three agents and a mesoslib subscription. Three
// tasks of one instance must run on three distinct agents with exactly the
// resources the plan chose (the master validates them), the manager must
// suppress once the queue is empty, and a fourth task must revive offers
// and, with no sibling-free agent left, share an agent.
func TestManagerOnLocalMesos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Mesos cluster")
	}
	now := time.Now()
	lm := startLive(t, func(queue *fakeQueue) {
		for ord := range 3 {
			d := task("cache1", ord)
			d.Disk = 64
			d.QueuedSince = now
			queue.put(d)
		}
	})
	h, queue, launcher, calls := lm.h, lm.queue, lm.launcher, lm.calls
	eventually(t, func() bool { return h.runningCount() == 3 })
	agents := map[string]bool{}
	for _, a := range launcher.agentsOf("cache1") {
		agents[a] = true
	}
	if len(agents) != 3 {
		t.Fatalf("cache1 runs on %v, want three distinct agents", launcher.agentsOf("cache1"))
	}
	eventually(t, func() bool { return calls.count("SUPPRESS") >= 1 })
	// The manager started before the subscription: it waited for it
	// rather than send calls that could only fail.
	if n := calls.count("SUPPRESS failed") + calls.count("REVIVE failed"); n > 0 {
		t.Errorf("%d SUPPRESS or REVIVE calls failed", n)
	}

	// A fourth task that has waited past the co-location wait: every agent
	// holds a sibling, so it shares one and says so.
	d := task("cache1", 3)
	d.Disk = 64
	d.QueuedSince = now.Add(-time.Hour)
	queue.put(d)
	eventually(t, func() bool { return h.runningCount() == 4 })
	if calls.count("REVIVE") != 1 {
		t.Errorf("REVIVE sent %d times, want 1", calls.count("REVIVE"))
	}
	if r := launcher.reason(Key{"cache1", 3}); !strings.Contains(r, "shares the agent with cache1-") {
		t.Errorf("cache1-3 placed because %q, want it to name the sibling it shares with", r)
	}
}

// live is a Manager on a localmesos cluster with a mesoslib subscription.
type live struct {
	h        *liveHandler
	queue    *fakeQueue
	launcher *acceptLauncher
	calls    *countingCaller
}

// startLive starts a cluster of three agents, a subscription and a
// Manager; fill queues tasks before the manager and the subscription start.
func startLive(t *testing.T, fill func(*fakeQueue)) live {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ccfg := localmesos.NewConfig()
	ccfg.Port = 0
	ccfg.AllocationInterval = 50 * time.Millisecond
	ccfg.Resources = "cpus:2;mem:1024;disk:1024;ports:[31000-31299]"
	cluster, err := localmesos.Start(ctx, ccfg)
	if err != nil {
		cancel()
		t.Fatalf("localmesos: %v", err)
	}
	t.Cleanup(func() { cluster.Close() })

	h := &liveHandler{running: map[string]bool{}}
	mcfg := mesoslib.NewConfig()
	mcfg.Master = cluster.MasterURL()
	mcfg.Name = "offermgr-test"
	client, err := mesoslib.New(mcfg, &memFrameworkID{}, noLiveTasks{}, h)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	queue := newFakeQueue()
	calls := &countingCaller{OfferCaller: client, connected: client.Connected}
	launcher := &acceptLauncher{client: client, queue: queue, on: map[string][]Key{}}
	cfg := NewConfig()
	cfg.Seed = 1
	m, err := NewManager(cfg, queue, launcher, calls, launcher)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.m = m
	if fill != nil {
		fill(queue)
	}

	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, run := range []func(context.Context) error{client.Run, m.Start} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("runnable stopped: %v", err)
			}
		}()
	}
	return live{h: h, queue: queue, launcher: launcher, calls: calls}
}

// TestManagerWaitsForTheSubscription: a manager started with nothing
// queued, before its subscription is up (as the framework starts it),
// suppresses offers once subscribed, without calls that fail meanwhile.
func TestManagerWaitsForTheSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Mesos cluster")
	}
	lm := startLive(t, nil)
	eventually(t, func() bool { return lm.calls.count("SUPPRESS") >= 1 })
	if n := lm.calls.count("SUPPRESS failed"); n > 0 {
		t.Errorf("%d SUPPRESS calls failed before the subscription", n)
	}
}

// liveHandler forwards mesoslib events to the Manager and counts tasks
// that reached TASK_RUNNING.
type liveHandler struct {
	m       *Manager
	mu      sync.Mutex
	running map[string]bool
}

func (h *liveHandler) Subscribed(context.Context, mesoslib.Subscription) { h.m.Resubscribed() }
func (h *liveHandler) Disconnected(context.Context, error)               {}
func (h *liveHandler) Offers(_ context.Context, os []mesos.Offer)        { h.m.Offer(os...) }
func (h *liveHandler) Rescind(_ context.Context, id mesos.OfferID)       { h.m.Rescind(id) }
func (h *liveHandler) Message(context.Context, mesos.AgentID, mesos.ExecutorID, []byte) {
}
func (h *liveHandler) Failure(context.Context, mesoslib.Failure) {}
func (h *liveHandler) Error(context.Context, string)             {}

func (h *liveHandler) Update(_ context.Context, s mesos.TaskStatus) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.GetState() == mesos.TASK_RUNNING {
		h.running[s.TaskID.Value] = true
	}
	return nil
}

func (h *liveHandler) runningCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.running)
}

type memFrameworkID struct {
	mu sync.Mutex
	id string
}

func (s *memFrameworkID) FrameworkID(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, nil
}

func (s *memFrameworkID) SetFrameworkID(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id = id
	return nil
}

type noLiveTasks struct{}

func (noLiveTasks) LiveTasks(context.Context) ([]mesoslib.TaskRef, error) { return nil, nil }

// acceptLauncher launches placements as command tasks with one ACCEPT,
// dequeues them and remembers where they run (it is also the manager's
// RunningTasks).
type acceptLauncher struct {
	client  *mesoslib.Client
	queue   *fakeQueue
	mu      sync.Mutex
	on      map[string][]Key
	reasons map[Key]string
}

func (l *acceptLauncher) Launch(ctx context.Context, launch Launch) error {
	var tasks []mesos.TaskInfo
	for _, p := range launch.Placements {
		tasks = append(tasks, mesos.TaskInfo{
			Name:      p.Demand.Key.String(),
			TaskID:    mesos.TaskID{Value: p.Demand.Key.String() + ".1"},
			AgentID:   p.AgentID,
			Resources: p.Resources,
			Command:   &mesos.CommandInfo{Value: ptr("sleep 600"), Shell: ptr(true)},
		})
	}
	op := mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}
	if err := l.client.Accept(ctx, launch.OfferIDs, []mesos.Offer_Operation{op}, DefaultDeclineRefuse); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reasons == nil {
		l.reasons = map[Key]string{}
	}
	for _, p := range launch.Placements {
		l.on[p.AgentID.Value] = append(l.on[p.AgentID.Value], p.Demand.Key)
		l.reasons[p.Demand.Key] = p.Reason
		l.queue.remove(p.Demand.Key)
	}
	return nil
}

func (l *acceptLauncher) ByAgent() map[string][]Key {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]Key, len(l.on))
	for a, ks := range l.on {
		out[a] = slices.Clone(ks)
	}
	return out
}

func (l *acceptLauncher) agentsOf(instance string) []string {
	var out []string
	for a, ks := range l.ByAgent() {
		for _, k := range ks {
			if k.Instance == instance {
				out = append(out, a)
			}
		}
	}
	return out
}

func (l *acceptLauncher) reason(k Key) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reasons[k]
}

// countingCaller passes calls to Mesos and counts SUPPRESS and REVIVE.
type countingCaller struct {
	OfferCaller
	connected func() bool
	mu        sync.Mutex
	counts    map[string]int
}

func (c *countingCaller) Connected() bool { return c.connected() }

func (c *countingCaller) inc(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[name]++
}

func (c *countingCaller) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[name]
}

func (c *countingCaller) Suppress(ctx context.Context, roles ...string) error {
	err := c.OfferCaller.Suppress(ctx, roles...)
	if err == nil {
		c.inc("SUPPRESS")
	} else {
		c.inc("SUPPRESS failed")
	}
	return err
}

func (c *countingCaller) Revive(ctx context.Context, roles ...string) error {
	err := c.OfferCaller.Revive(ctx, roles...)
	if err == nil {
		c.inc("REVIVE")
	} else {
		c.inc("REVIVE failed")
	}
	return err
}
