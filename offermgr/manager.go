package offermgr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TaskQueue is the queue of tasks waiting for offers, as the manager uses
// it. buffer's task queue fits it through a small adapter that turns its
// entries into Demands.
type TaskQueue interface {
	// Pending returns the tasks waiting for an offer, oldest first. Once
	// Launcher.Launch has returned nil for a task, Pending must no longer
	// return it (until it is queued again).
	Pending() []Demand
	// Notify receives a value after new tasks were queued; one value may
	// stand for many. A nil channel is allowed: the manager then notices
	// new work at its next resync.
	Notify() <-chan struct{}
}

// Launcher starts placed tasks; the scheduler implements it.
type Launcher interface {
	// Launch accepts l.OfferIDs with one task per placement: it builds
	// each TaskInfo (calling the workload's Config), records the task as
	// STAGING, takes it off the queue, then sends one ACCEPT. A placement
	// it cannot prepare is left out of the ACCEPT and stays queued. If Launch
	// returns an error the manager declines l.OfferIDs, so the offers are
	// never left held (Mesos ignores a DECLINE of an offer already used).
	Launch(ctx context.Context, l Launch) error
}

// OfferCaller sends the offer-flow calls to Mesos; *mesoslib.Client
// implements it as it is.
type OfferCaller interface {
	// Decline sends DECLINE with filters.refuse_seconds = refuse.
	Decline(ctx context.Context, offers []mesos.OfferID, refuse time.Duration) error
	// Suppress sends SUPPRESS for roles; the manager passes none, meaning
	// all the framework's roles.
	Suppress(ctx context.Context, roles ...string) error
	// Revive sends REVIVE for roles (none: all), which also clears every
	// refuse filter.
	Revive(ctx context.Context, roles ...string) error
}

// connection is an OfferCaller that can tell whether it is subscribed
// (*mesoslib.Client can). With one, the manager sends SUPPRESS and REVIVE
// only while subscribed: before the first subscription they could only
// fail, and a (re)subscription lifts suppression anyway, after which
// Resubscribed brings a pass that decides afresh.
type connection interface {
	Connected() bool
}

// RunningTasks tells where this framework's tasks already run; statemgr
// implements it from its task cache.
type RunningTasks interface {
	// ByAgent returns, per agent ID, the tasks that are launched and not
	// terminal. The manager only reads the result.
	ByAgent() map[string][]Key
}

// Config configures a Manager.
type Config struct {
	// Policy tunes placement.
	Policy Policy
	// DeclineRefuse is the refuse filter for offers declined while tasks
	// are queued: short, so an agent is seen again soon after its
	// resources change.
	DeclineRefuse time.Duration
	// IdleRefuse is the refuse filter for offers declined while nothing is
	// queued (they arrive before SUPPRESS takes effect); new work revives.
	IdleRefuse time.Duration
	// ReviveInterval is the least time between two REVIVE calls, so a
	// burst of new work cannot turn into a revive storm.
	ReviveInterval time.Duration
	// ResyncInterval is how often the manager looks at the queue without
	// being told: it retries failed SUPPRESS/REVIVE calls and picks up
	// work whose notification was missed.
	ResyncInterval time.Duration
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Seed seeds the agent shuffle of every pass (pass N uses Seed+N, and
	// the seed is logged at -v=2); 0 picks a random one.
	Seed uint64
	// Framework is the stateful.framework label of the framework's
	// reservations (State.Framework); empty ignores reservations.
	Framework string
	// Known returns the resource IDs of the reservations tasks record
	// (State.Known); nil releases no reservation nobody owns.
	Known func() map[string]bool
}

// Defaults of NewConfig.
const (
	DefaultDeclineRefuse  = 5 * time.Second
	DefaultIdleRefuse     = 60 * time.Second
	DefaultReviveInterval = 5 * time.Second
	DefaultResyncInterval = 5 * time.Second
	// maxRefuse is Mesos' cap on refuse_seconds (365 days).
	maxRefuse = 365 * 24 * time.Hour
	// shutdownDeclineTimeout bounds the decline of held offers on exit.
	shutdownDeclineTimeout = 2 * time.Second
)

// NewConfig returns a Config with the defaults.
func NewConfig() Config {
	return Config{
		Policy:         DefaultPolicy(),
		DeclineRefuse:  DefaultDeclineRefuse,
		IdleRefuse:     DefaultIdleRefuse,
		ReviveInterval: DefaultReviveInterval,
		ResyncInterval: DefaultResyncInterval,
	}
}

// Validate reports every setting that is out of range, by name.
func (c Config) Validate() error {
	errs := []error{c.Policy.Validate()}
	refuse := func(name string, d time.Duration) {
		// 0 would mean "no filter": the master re-offers at once and
		// the framework hammers itself with offers.
		if d <= 0 || d > maxRefuse {
			errs = append(errs, fmt.Errorf("%s: %v must be more than 0 and at most 365 days", name, d))
		}
	}
	refuse("decline refuse", c.DeclineRefuse)
	refuse("idle refuse", c.IdleRefuse)
	if c.ReviveInterval <= 0 {
		errs = append(errs, fmt.Errorf("revive interval: %v must be more than 0", c.ReviveInterval))
	}
	if c.ResyncInterval <= 0 {
		errs = append(errs, fmt.Errorf("resync interval: %v must be more than 0", c.ResyncInterval))
	}
	return errors.Join(errs...)
}

// Manager runs the offer flow: it holds the offers Mesos sends, matches
// them against the queue once per pass with Place, launches through the
// Launcher, declines the rest, suppresses offers while nothing is queued and
// revives them when work arrives. It is a Runnable: Start blocks until its
// context ends. Offer, Rescind, Resubscribed and the explanation getters may
// be called from any goroutine.
type Manager struct {
	cfg      Config
	queue    TaskQueue
	launcher Launcher
	caller   OfferCaller
	running  RunningTasks

	mu    sync.Mutex
	inbox []mesos.Offer
	// resubscribed is set by Resubscribed and consumed by the next pass.
	resubscribed bool
	wake         chan struct{}
	started      atomic.Bool

	explain explanations

	// Owned by the Start goroutine.
	suppressed   bool
	idleFiltered bool // offers were declined with IdleRefuse since the last REVIVE
	reviveWanted bool
	lastRevive   time.Time
	// prevReserved is the reservations tasks recorded at the last pass.
	// One that is gone from the records (scale-down, replace, delete)
	// becomes an orphan, and offers are wanted even with nothing queued
	// until it has been released: its task may still be stopping, so its
	// resources can come in a later offer than the first after the
	// REVIVE, and its task and executor parts in different offers.
	prevReserved map[string]bool
	orphans      map[string]orphan
	known        map[Key]bool // keys pending in the previous pass
	passes       uint64
}

// NewManager returns a Manager; it validates cfg and its dependencies.
func NewManager(cfg Config, queue TaskQueue, launcher Launcher, caller OfferCaller, running RunningTasks) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("offermgr config: %w", err)
	}
	switch {
	case queue == nil:
		return nil, errors.New("offermgr: task queue is nil")
	case launcher == nil:
		return nil, errors.New("offermgr: launcher is nil")
	case caller == nil:
		return nil, errors.New("offermgr: offer caller is nil")
	case running == nil:
		return nil, errors.New("offermgr: running tasks source is nil")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	return &Manager{
		cfg:      cfg,
		queue:    queue,
		launcher: launcher,
		caller:   caller,
		running:  running,
		wake:     make(chan struct{}, 1),
		explain:  explanations{byKey: map[Key]PlacementMetric{}},
	}, nil
}

// Offer hands offers from an OFFERS event to the manager. It never blocks;
// the next pass (started at once) uses or declines them.
func (m *Manager) Offer(offers ...mesos.Offer) {
	if len(offers) == 0 {
		return
	}
	m.mu.Lock()
	m.inbox = append(m.inbox, offers...)
	m.mu.Unlock()
	glog.V(2).Infof("offermgr: received %d offers", len(offers))
	m.poke()
}

// Rescind drops a held offer (RESCIND event). An offer already in a pass
// cannot be recalled; Mesos then fails its launch with REASON_INVALID_OFFERS
// and the tasks come back to the queue through the status flow.
func (m *Manager) Rescind(id mesos.OfferID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.inbox {
		if m.inbox[i].ID == id {
			m.inbox = append(m.inbox[:i], m.inbox[i+1:]...)
			glog.V(2).Infof("offermgr: offer %s rescinded", id.Value)
			return
		}
	}
	glog.V(2).Infof("offermgr: rescind of unknown or used offer %s", id.Value)
}

// Resubscribed tells the manager the framework (re)subscribed: offers
// held from the old subscription are dead, and Mesos has lifted our
// suppression, so the next pass decides afresh.
func (m *Manager) Resubscribed() {
	m.mu.Lock()
	m.inbox = nil
	m.resubscribed = true
	m.mu.Unlock()
	m.poke()
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// WhyNotPlaced returns the latest explanation for a queued task, if it has
// been matched against offers and did not fit.
func (m *Manager) WhyNotPlaced(k Key) (PlacementMetric, bool) { return m.explain.get(k) }

// Explain returns the explanations of an instance's queued tasks, by
// ordinal, for GET /v1/instances/{name}.
func (m *Manager) Explain(instance string) map[int]PlacementMetric {
	return m.explain.forInstance(instance)
}

// Start runs passes until ctx ends, then declines the offers it still
// holds. It returns nil on cancellation, and an error if started twice.
func (m *Manager) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("offermgr: manager already started")
	}
	glog.Infof("offermgr: started (decline refuse %v, idle refuse %v, revive interval %v, co-locate after %v, seed %d)",
		m.cfg.DeclineRefuse, m.cfg.IdleRefuse, m.cfg.ReviveInterval, m.cfg.Policy.CoLocateAfter, m.cfg.Seed)
	defer m.declineHeld(ctx)
	resync := time.NewTicker(m.cfg.ResyncInterval)
	defer resync.Stop()
	reviveTimer := time.NewTimer(time.Hour)
	reviveTimer.Stop()
	defer reviveTimer.Stop()
	for {
		m.pass(ctx)
		var reviveDue <-chan time.Time
		if m.reviveWanted {
			reviveTimer.Reset(max(m.lastRevive.Add(m.cfg.ReviveInterval).Sub(m.cfg.Now()), 0))
			reviveDue = reviveTimer.C
		} else {
			reviveTimer.Stop()
		}
		select {
		case <-ctx.Done():
		case <-m.wake:
		case <-m.queue.Notify():
		case <-resync.C:
		case <-reviveDue:
		}
		// select picks at random among ready cases: a wake-up must not
		// start a pass after cancellation.
		if ctx.Err() != nil {
			glog.Infof("offermgr: stopped")
			return nil
		}
	}
}

// declineHeld returns offers still in the inbox on shutdown, so they do
// not stay held from other frameworks until the master notices we left.
func (m *Manager) declineHeld(ctx context.Context) {
	m.mu.Lock()
	held := m.inbox
	m.inbox = nil
	m.mu.Unlock()
	if len(held) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownDeclineTimeout)
	defer cancel()
	m.decline(dctx, offerIDs(held), m.cfg.DeclineRefuse)
}

// pass is one level-triggered round: it reads the queue and the held
// offers as they are now and acts on the difference from what it wants.
func (m *Manager) pass(ctx context.Context) {
	m.passes++
	now := m.cfg.Now()
	m.mu.Lock()
	offers := m.inbox
	m.inbox = nil
	if m.resubscribed {
		m.resubscribed = false
		m.suppressed = false
	}
	m.mu.Unlock()

	var reserved map[string]bool
	if m.cfg.Known != nil {
		reserved = m.cfg.Known()
		m.trackOrphans(now, reserved)
		// Placement releases every orphan an offer carries, whether or
		// not anything is queued.
		m.forgetOffered(now, offers, reserved)
	}
	pending := m.queue.Pending()
	if len(pending) == 0 {
		m.known = nil
		m.explain.retain(nil)
		if len(m.orphans) > 0 && len(offers) == 0 {
			if m.subscribed() {
				m.revive(ctx, now, 0)
			}
			return
		}
		if len(offers) > 0 && reserved != nil {
			offers = m.releaseOrphans(ctx, now, offers, reserved)
		}
		if len(m.orphans) > 0 {
			// Keep the rest of the offers coming: the orphan's resources
			// may be offered apart, once its task has ended.
			if len(offers) > 0 {
				m.decline(ctx, offerIDs(offers), m.cfg.DeclineRefuse)
			}
			return
		}
		if len(offers) > 0 {
			glog.V(2).Infof("offermgr: nothing queued, declining %d offers for %v", len(offers), m.cfg.IdleRefuse)
			m.decline(ctx, offerIDs(offers), m.cfg.IdleRefuse)
			m.idleFiltered = true
		}
		if !m.suppressed && m.subscribed() {
			if err := m.caller.Suppress(ctx); err != nil {
				// The call may still have taken effect: make sure new work
				// revives.
				m.idleFiltered = true
				glog.Errorf("offermgr: SUPPRESS failed (retrying at the next pass): %v", err)
			} else {
				m.suppressed = true
				m.reviveWanted = false
				glog.V(1).Infof("offermgr: nothing queued, offers suppressed")
			}
		}
		return
	}

	known := make(map[Key]bool, len(pending))
	newWork := 0
	for _, d := range pending {
		known[d.Key] = true
		if !m.known[d.Key] {
			newWork++
		}
	}
	m.known = known
	if newWork > 0 && (m.suppressed || m.idleFiltered) {
		m.reviveWanted = true
	}
	if m.reviveWanted && m.subscribed() {
		m.revive(ctx, now, newWork)
	}
	if len(offers) == 0 {
		m.explain.waiting(pending, now)
		return
	}

	seed := m.cfg.Seed + m.passes
	st := State{Now: now, Running: m.running.ByAgent(), Seed: seed, Framework: m.cfg.Framework, Known: reserved}
	plan := Place(m.cfg.Policy, offers, pending, st)
	placed := 0
	for _, l := range plan.Launches {
		placed += len(l.Placements)
		for _, p := range l.Placements {
			glog.V(1).Infof("offermgr: placing %s (%s) on agent %s (%s) ports %v: %s",
				p.Demand.Key, p.Demand.Role, p.AgentID.Value, p.Hostname, p.Ports, p.Reason)
		}
		if err := m.launcher.Launch(ctx, l); err != nil {
			glog.Errorf("offermgr: launch on agent %s failed, declining its offers: %v", l.AgentID.Value, err)
			m.decline(ctx, l.OfferIDs, m.cfg.DeclineRefuse)
		}
	}
	if len(plan.Declined) > 0 {
		m.decline(ctx, plan.Declined, m.cfg.DeclineRefuse)
	}
	glog.V(2).Infof("offermgr: pass %d (seed %d): %d offers, %d queued, %d placed, %d unplaced, %d offers declined",
		m.passes, seed, len(offers), len(pending), placed, len(plan.Unplaced), len(plan.Declined))
	m.explain.update(plan, known)
}

// subscribed reports whether calls can reach Mesos, as far as the caller
// can tell.
func (m *Manager) subscribed() bool {
	c, ok := m.caller.(connection)
	return !ok || c.Connected()
}

// orphanPatience bounds how long offers are kept coming, with nothing
// queued, for a reservation nobody owns any more: its agent may be gone for
// good (then Mesos has nothing to release) or come back much later (then
// the next release of an ordinal, or a restart, finds it again).
// orphanSettle is how long they are kept coming after an offer carried
// part of it, for the rest (the executor's part once the executor exits).
const (
	orphanPatience = 5 * time.Minute
	orphanSettle   = 30 * time.Second
)

// orphan is a reservation no task records any more, until it is released.
type orphan struct {
	deadline time.Time
	offered  bool // an offer carried (part of) it, and it was released
}

// trackOrphans notes the reservations that left the records since the last
// pass, forgets those recorded again, and gives up on those older than
// orphanPatience.
func (m *Manager) trackOrphans(now time.Time, reserved map[string]bool) {
	if m.orphans == nil {
		m.orphans = map[string]orphan{}
	}
	for id := range m.prevReserved {
		if !reserved[id] {
			if _, ok := m.orphans[id]; !ok {
				m.orphans[id] = orphan{deadline: now.Add(orphanPatience)}
			}
		}
	}
	m.prevReserved = reserved
	for id, o := range m.orphans {
		switch {
		case reserved[id]:
			delete(m.orphans, id)
		case now.After(o.deadline):
			if !o.offered {
				glog.Warningf("offermgr: reservation %s was not offered back within %v of being given up; not waiting for it any longer", id, orphanPatience)
			}
			delete(m.orphans, id)
		}
	}
}

// forgetOffered notes the orphans that offers carry (this pass releases
// what the offers hold of them): the rest of each may follow for
// orphanSettle more.
func (m *Manager) forgetOffered(now time.Time, offers []mesos.Offer, reserved map[string]bool) {
	if len(m.orphans) == 0 {
		return
	}
	for _, of := range offers {
		for i := range of.Resources {
			id, _, _, _, ok := ReservationOf(&of.Resources[i], m.cfg.Framework)
			if o, tracked := m.orphans[id]; ok && tracked && !reserved[id] {
				o.offered = true
				if settle := now.Add(orphanSettle); settle.Before(o.deadline) {
					o.deadline = settle
				}
				m.orphans[id] = o
			}
		}
	}
}

// releaseOrphans releases the reservations in offers that no task owns,
// with nothing else queued, and returns the offers it did not use.
func (m *Manager) releaseOrphans(ctx context.Context, now time.Time, offers []mesos.Offer, known map[string]bool) []mesos.Offer {
	plan := Place(m.cfg.Policy, offers, nil, State{Now: now, Seed: m.cfg.Seed + m.passes, Framework: m.cfg.Framework, Known: known})
	if len(plan.Launches) == 0 {
		return offers
	}
	used := map[string]bool{}
	for _, l := range plan.Launches {
		for _, id := range l.OfferIDs {
			used[id.Value] = true
		}
		if err := m.launcher.Launch(ctx, l); err != nil {
			glog.Errorf("offermgr: releasing reservations on agent %s failed, declining its offers: %v", l.AgentID.Value, err)
			m.decline(ctx, l.OfferIDs, m.cfg.DeclineRefuse)
		}
	}
	var rest []mesos.Offer
	for _, o := range offers {
		if !used[o.ID.Value] {
			rest = append(rest, o)
		}
	}
	return rest
}

// revive sends REVIVE unless one was sent less than ReviveInterval ago;
// then Start's timer brings the next pass when it is allowed.
func (m *Manager) revive(ctx context.Context, now time.Time, newWork int) {
	if !m.lastRevive.IsZero() && now.Sub(m.lastRevive) < m.cfg.ReviveInterval {
		glog.V(2).Infof("offermgr: REVIVE wanted, rate-limited until %s", m.lastRevive.Add(m.cfg.ReviveInterval).Format(time.TimeOnly))
		return
	}
	// A failed REVIVE also counts, so a broken connection is not hammered.
	m.lastRevive = now
	if err := m.caller.Revive(ctx); err != nil {
		glog.Errorf("offermgr: REVIVE failed (retrying after %v): %v", m.cfg.ReviveInterval, err)
		return
	}
	m.suppressed, m.idleFiltered, m.reviveWanted = false, false, false
	glog.V(1).Infof("offermgr: %d new tasks queued, offers revived", newWork)
}

func (m *Manager) decline(ctx context.Context, ids []mesos.OfferID, refuse time.Duration) {
	if err := m.caller.Decline(ctx, ids, refuse); err != nil {
		// The offers stay held at the master only while we are connected,
		// and a connection that fails calls is re-subscribed, which
		// discards them.
		glog.Errorf("offermgr: DECLINE of %d offers failed: %v", len(ids), err)
	}
}

func offerIDs(offers []mesos.Offer) []mesos.OfferID {
	ids := make([]mesos.OfferID, 0, len(offers))
	for _, o := range offers {
		if o.ID.Value != "" {
			ids = append(ids, o.ID)
		}
	}
	return ids
}

// explanations keeps the latest PlacementMetric per queued task, for the
// REST API and for logging changes once rather than every pass.
type explanations struct {
	mu    sync.RWMutex
	byKey map[Key]PlacementMetric
}

func (e *explanations) get(k Key) (PlacementMetric, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	m, ok := e.byKey[k]
	return m.clone(), ok
}

func (e *explanations) forInstance(instance string) map[int]PlacementMetric {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := map[int]PlacementMetric{}
	for k, m := range e.byKey {
		if k.Instance == instance {
			out[k.Ordinal] = m.clone()
		}
	}
	return out
}

// retain drops explanations of tasks that are no longer queued.
func (e *explanations) retain(queued map[Key]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.byKey {
		if !queued[k] {
			delete(e.byKey, k)
		}
	}
}

// waiting gives tasks that have not met an offer yet an explanation that
// says so, and leaves the others' last explanation in place.
func (e *explanations) waiting(pending []Demand, now time.Time) {
	queued := make(map[Key]bool, len(pending))
	e.mu.Lock()
	for _, d := range pending {
		queued[d.Key] = true
		if _, ok := e.byKey[d.Key]; !ok {
			e.byKey[d.Key] = PlacementMetric{At: now, Summary: "waiting for offers"}
		}
	}
	e.mu.Unlock()
	e.retain(queued)
}

// update records a pass: placed tasks lose their explanation, unplaced
// ones get the new one, logged when it changed.
func (e *explanations) update(plan Plan, queued map[Key]bool) {
	e.mu.Lock()
	for _, l := range plan.Launches {
		for _, p := range l.Placements {
			delete(e.byKey, p.Demand.Key)
		}
	}
	var changed []Unplaced
	for _, u := range plan.Unplaced {
		if old, ok := e.byKey[u.Demand.Key]; !ok || old.Summary != u.Metric.Summary {
			changed = append(changed, u)
		}
		e.byKey[u.Demand.Key] = u.Metric
	}
	e.mu.Unlock()
	e.retain(queued)
	if glog.V(1) {
		sort.Slice(changed, func(i, j int) bool { return changed[i].Demand.Key.String() < changed[j].Demand.Key.String() })
		for _, u := range changed {
			glog.Infof("offermgr: %s (%s) not placed: %s", u.Demand.Key, u.Demand.Role, u.Metric.Summary)
		}
	}
}
