package offermgr

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// fakeQueue is an in-memory TaskQueue.
type fakeQueue struct {
	mu     sync.Mutex
	tasks  []Demand
	notify chan struct{}
}

func newFakeQueue() *fakeQueue { return &fakeQueue{notify: make(chan struct{}, 1)} }

func (q *fakeQueue) put(ds ...Demand) {
	q.mu.Lock()
	q.tasks = append(q.tasks, ds...)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *fakeQueue) remove(k Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tasks = slices.DeleteFunc(q.tasks, func(d Demand) bool { return d.Key == k })
}

func (q *fakeQueue) Pending() []Demand {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.tasks)
}

func (q *fakeQueue) Notify() <-chan struct{} { return q.notify }

// recorder is the scheduler side: it records every call in order. Its
// Launch dequeues the tasks, as the real Launcher does after recording
// STAGING.
type recorder struct {
	queue     *fakeQueue
	mu        sync.Mutex
	calls     []string
	launchErr error
	reviveErr error
	// onLaunch, when set, runs inside Launch and decides its result.
	onLaunch func(ctx context.Context) error
}

func (r *recorder) record(format string, args ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
	return nil
}

func (r *recorder) Launch(ctx context.Context, l Launch) error {
	var tasks []string
	for _, p := range l.Placements {
		tasks = append(tasks, p.Demand.Key.String())
	}
	r.record("LAUNCH %s on %s", strings.Join(tasks, ","), idList(l.OfferIDs))
	r.mu.Lock()
	err, hook := r.launchErr, r.onLaunch
	r.mu.Unlock()
	if hook != nil {
		err = hook(ctx)
	}
	if err != nil {
		return err
	}
	for _, p := range l.Placements {
		r.queue.remove(p.Demand.Key)
	}
	return nil
}

func (r *recorder) Decline(_ context.Context, ids []mesos.OfferID, refuse time.Duration) error {
	return r.record("DECLINE %s refuse %v", idList(ids), refuse)
}

func (r *recorder) Suppress(context.Context, ...string) error { return r.record("SUPPRESS") }

func (r *recorder) Revive(context.Context, ...string) error {
	r.mu.Lock()
	err := r.reviveErr
	r.mu.Unlock()
	r.record("REVIVE")
	return err
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func (r *recorder) count(prefix string) int {
	n := 0
	for _, c := range r.snapshot() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func idList(ids []mesos.OfferID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Value
	}
	return strings.Join(s, ",")
}

type noRunning struct{}

func (noRunning) ByAgent() map[string][]Key { return nil }

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	m     *Manager
	queue *fakeQueue
	rec   *recorder
	clock *fakeClock
}

// newHarness builds a Manager on fakes. Resync and revive intervals are an
// hour, so only the test's own actions start passes and the fake clock
// alone decides the revive rate limit. configure, if given, adjusts the
// config further.
func newHarness(t *testing.T, configure ...func(*Config)) *harness {
	t.Helper()
	h := &harness{queue: newFakeQueue(), clock: &fakeClock{now: t0}}
	h.rec = &recorder{queue: h.queue}
	cfg := NewConfig()
	cfg.Now = h.clock.Now
	cfg.Seed = 1
	cfg.ReviveInterval = time.Hour
	cfg.ResyncInterval = time.Hour
	for _, c := range configure {
		c(&cfg)
	}
	m, err := NewManager(cfg, h.queue, h.rec, h.rec, noRunning{})
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Start did not return after cancel")
		}
	})
}

// waitCalls polls until the recorded calls equal want.
func (h *harness) waitCalls(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := h.rec.snapshot()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		time.Sleep(time.Millisecond)
	}
}

func queued(instance string, ordinal int) Demand {
	d := task(instance, ordinal)
	d.QueuedSince = t0
	return d
}

func TestManagerSuppressesWhenQueueEmpty(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.waitCalls(t, "SUPPRESS")
	// Offers sent before SUPPRESS took effect go back with the long filter,
	// and the manager does not suppress again.
	h.m.Offer(offers(bigAgent("a1"))...)
	h.waitCalls(t, "SUPPRESS", "DECLINE o-a1 refuse 1m0s")
}

// TestManagerReleasesOrphanedReservation: a reservation that leaves the
// tasks' records keeps offers coming with nothing queued (a REVIVE, short
// declines) until an offer carried it and it was released, and for
// orphanSettle more (its other part may follow); then the manager is idle
// again.
func TestManagerReleasesOrphanedReservation(t *testing.T) {
	var mu sync.Mutex
	known := map[string]bool{"r1": true}
	h := newHarness(t, func(c *Config) {
		c.Framework = "fw"
		c.Known = func() map[string]bool {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(known)
		}
	})
	h.start(t)
	h.waitCalls(t, "SUPPRESS")

	mu.Lock()
	delete(known, "r1") // its instance was deleted, say
	mu.Unlock()
	h.m.Resubscribed() // a pass without offers
	calls := []string{"SUPPRESS", "REVIVE"}
	h.waitCalls(t, calls...)
	h.m.Offer(offers(bigAgent("a1"))...)
	calls = append(calls, "DECLINE o-a1 refuse 5s")
	h.waitCalls(t, calls...)
	carrying := offers(bigAgent("a2"))
	carrying[0] = withReservation(carrying[0], "r1", false)
	h.m.Offer(carrying...)
	calls = append(calls, "LAUNCH cache1-0 on o-a2")
	h.waitCalls(t, calls...)
	h.m.Offer(offers(bigAgent("a3"))...)
	calls = append(calls, "DECLINE o-a3 refuse 5s")
	h.waitCalls(t, calls...)

	h.clock.advance(orphanSettle + time.Second)
	h.m.Offer(offers(bigAgent("a4"))...)
	calls = append(calls, "DECLINE o-a4 refuse 1m0s", "SUPPRESS")
	h.waitCalls(t, calls...)
}

func TestManagerRevivesOnNewWorkRateLimited(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.waitCalls(t, "SUPPRESS")

	h.queue.put(queued("cache1", 0))
	h.waitCalls(t, "SUPPRESS", "REVIVE")
	// More work while offers flow again needs no REVIVE. The explanation
	// shows the pass that saw it is over.
	h.queue.put(queued("cache1", 1))
	eventually(t, func() bool { _, ok := h.m.WhyNotPlaced(Key{"cache1", 1}); return ok })
	h.m.Offer(offers(bigAgent("a1"), bigAgent("a2"))...)
	eventually(t, func() bool { return h.rec.count("LAUNCH") == 2 })
	want := h.rec.snapshot()
	if len(want) != 4 || !slices.Equal(want[:2], []string{"SUPPRESS", "REVIVE"}) {
		t.Fatalf("calls %v, want SUPPRESS, REVIVE and two launches", want)
	}
	// Nothing queued: suppress again.
	h.m.Offer(offers(bigAgent("a3"))...)
	want = append(want, "DECLINE o-a3 refuse 1m0s", "SUPPRESS")
	h.waitCalls(t, want...)

	// New work within the revive interval: no REVIVE yet. The unusable
	// offer's DECLINE marks the end of that pass.
	h.clock.advance(10 * time.Minute)
	h.queue.put(queued("cache1", 2))
	tiny := agentOffer{id: "tiny", agent: "a4", cpus: 0.1, mem: 32}
	h.m.Offer(offers(tiny)...)
	want = append(want, "DECLINE tiny refuse 5s")
	h.waitCalls(t, want...)

	// Once the interval has passed, the next pass revives, once.
	h.clock.advance(time.Hour)
	h.m.Offer(offers(agentOffer{id: "tiny2", agent: "a4", cpus: 0.1, mem: 32})...)
	want = append(want, "REVIVE", "DECLINE tiny2 refuse 5s")
	h.waitCalls(t, want...)
}

func TestManagerRetriesFailedRevive(t *testing.T) {
	h := newHarness(t)
	h.rec.reviveErr = errors.New("connection refused")
	h.start(t)
	h.waitCalls(t, "SUPPRESS")
	h.queue.put(queued("cache1", 0))
	h.waitCalls(t, "SUPPRESS", "REVIVE")
	h.rec.mu.Lock()
	h.rec.reviveErr = nil
	h.rec.mu.Unlock()
	h.clock.advance(time.Hour)
	h.m.Offer(offers(agentOffer{id: "tiny", agent: "a4", cpus: 0.1, mem: 32})...)
	h.waitCalls(t, "SUPPRESS", "REVIVE", "REVIVE", "DECLINE tiny refuse 5s")
}

func TestManagerLaunchesAndDeclines(t *testing.T) {
	h := newHarness(t)
	big := queued("big", 0)
	big.Mem = 100000
	h.queue.put(queued("cache1", 0), big)
	h.start(t)
	// The queue was not empty at start: no SUPPRESS, no REVIVE (never
	// suppressed), and the task waits for offers.
	eventually(t, func() bool {
		m, ok := h.m.WhyNotPlaced(Key{"big", 0})
		return ok && m.Summary == "waiting for offers"
	})
	h.m.Offer(offers(bigAgent("a1"))...)
	h.waitCalls(t, "LAUNCH cache1-0 on o-a1")

	m, ok := h.m.WhyNotPlaced(Key{"big", 0})
	if !ok || m.DimensionExhausted["mem"] != 1 || m.Summary != "1 agent: 1 lacks mem (need 100000, best 7936)" {
		t.Errorf("explanation for big-0 = %+v, %v", m, ok)
	}
	if got := h.m.Explain("big"); len(got) != 1 || got[0].Summary != m.Summary {
		t.Errorf("Explain(big) = %v", got)
	}
	if _, ok := h.m.WhyNotPlaced(Key{"cache1", 0}); ok {
		t.Errorf("a placed task still has an explanation")
	}
	// The explanation is a copy.
	m.DimensionExhausted["mem"] = 99
	if again, _ := h.m.WhyNotPlaced(Key{"big", 0}); again.DimensionExhausted["mem"] != 1 {
		t.Errorf("caller changed the stored explanation")
	}

	h.m.Offer(offers(bigAgent("a2"))...)
	h.waitCalls(t, "LAUNCH cache1-0 on o-a1", "DECLINE o-a2 refuse 5s")
	// Dequeued elsewhere: the explanation goes at the next pass.
	h.queue.remove(Key{"big", 0})
	h.m.Offer(offers(bigAgent("a3"))...)
	h.waitCalls(t, "LAUNCH cache1-0 on o-a1", "DECLINE o-a2 refuse 5s", "DECLINE o-a3 refuse 1m0s", "SUPPRESS")
	if got := h.m.Explain("big"); len(got) != 0 {
		t.Errorf("explanations of a dequeued task remain: %v", got)
	}
}

func TestManagerDeclinesOffersOfAFailedLaunch(t *testing.T) {
	h := newHarness(t)
	h.rec.launchErr = errors.New("etcd unavailable")
	h.queue.put(queued("cache1", 0))
	h.m.Offer(offers(bigAgent("a1"))...)
	h.start(t)
	h.waitCalls(t, "LAUNCH cache1-0 on o-a1", "DECLINE o-a1 refuse 5s")
	// Still queued: the next offer is tried again.
	h.rec.mu.Lock()
	h.rec.launchErr = nil
	h.rec.mu.Unlock()
	h.m.Offer(offers(bigAgent("a2"))...)
	h.waitCalls(t, "LAUNCH cache1-0 on o-a1", "DECLINE o-a1 refuse 5s", "LAUNCH cache1-0 on o-a2")
}

func TestManagerRescindDropsOffer(t *testing.T) {
	h := newHarness(t)
	h.queue.put(queued("cache1", 0))
	h.m.Offer(offers(bigAgent("a1"), bigAgent("a2"))...)
	h.m.Rescind(mesos.OfferID{Value: "o-a1"})
	h.m.Rescind(mesos.OfferID{Value: "unknown"})
	h.start(t)
	eventually(t, func() bool { return h.rec.count("LAUNCH") == 1 })
	// The queue's notification and the offers' wake-up may give a second
	// pass, which suppresses; o-a1 is in no call either way.
	calls := h.rec.snapshot()
	if calls[0] != "LAUNCH cache1-0 on o-a2" || slices.ContainsFunc(calls, func(c string) bool { return strings.Contains(c, "o-a1") }) {
		t.Errorf("calls %v, want the launch on o-a2 and nothing about the rescinded o-a1", calls)
	}
}

func TestManagerResubscribed(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.waitCalls(t, "SUPPRESS")
	h.queue.put(queued("cache1", 0))
	h.waitCalls(t, "SUPPRESS", "REVIVE")
	h.queue.remove(Key{"cache1", 0})
	h.m.Offer(offers(bigAgent("a1"))...)
	h.waitCalls(t, "SUPPRESS", "REVIVE", "DECLINE o-a1 refuse 1m0s", "SUPPRESS")
	// A new subscription starts unsuppressed: suppress again.
	h.m.Resubscribed()
	h.waitCalls(t, "SUPPRESS", "REVIVE", "DECLINE o-a1 refuse 1m0s", "SUPPRESS", "SUPPRESS")
}

func TestManagerDeclinesHeldOffersOnStop(t *testing.T) {
	h := newHarness(t)
	inLaunch := make(chan struct{})
	h.rec.onLaunch = func(ctx context.Context) error {
		close(inLaunch)
		<-ctx.Done()
		return ctx.Err()
	}
	h.queue.put(queued("cache1", 0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.m.Start(ctx) }()
	h.m.Offer(offers(bigAgent("a1"))...)
	select {
	case <-inLaunch:
	case <-time.After(5 * time.Second):
		t.Fatal("no launch")
	}
	// Arrives while the pass is busy, and is still held when Start stops.
	h.m.Offer(offers(bigAgent("a2"))...)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
	want := []string{"LAUNCH cache1-0 on o-a1", "DECLINE o-a1 refuse 5s", "DECLINE o-a2 refuse 5s"}
	if got := h.rec.snapshot(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

func TestManagerStartTwice(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.waitCalls(t, "SUPPRESS")
	if err := h.m.Start(context.Background()); err == nil {
		t.Fatal("second Start returned nil, want an error")
	}
}

func TestNewManagerValidates(t *testing.T) {
	q, r := newFakeQueue(), &recorder{}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"zero decline refuse", func(c *Config) { c.DeclineRefuse = 0 }, "decline refuse: 0s must be more than 0"},
		{"idle refuse over a year", func(c *Config) { c.IdleRefuse = 400 * 24 * time.Hour }, "idle refuse"},
		{"no revive interval", func(c *Config) { c.ReviveInterval = 0 }, "revive interval"},
		{"negative resync", func(c *Config) { c.ResyncInterval = -time.Second }, "resync interval"},
		{"negative co-location wait", func(c *Config) { c.Policy.CoLocateAfter = -time.Second }, "co-locate after"},
		{"negative candidates", func(c *Config) { c.Policy.Candidates = -1 }, "candidates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewConfig()
			tt.edit(&cfg)
			_, err := NewManager(cfg, q, r, r, noRunning{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := NewManager(NewConfig(), nil, r, r, noRunning{}); err == nil {
		t.Error("nil queue accepted")
	}
	if _, err := NewManager(NewConfig(), q, nil, r, noRunning{}); err == nil {
		t.Error("nil launcher accepted")
	}
	if _, err := NewManager(NewConfig(), q, r, nil, noRunning{}); err == nil {
		t.Error("nil caller accepted")
	}
	if _, err := NewManager(NewConfig(), q, r, r, nil); err == nil {
		t.Error("nil running source accepted")
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
