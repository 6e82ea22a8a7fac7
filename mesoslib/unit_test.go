package mesoslib

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// recordingCaller records every call in the recorder's log (so tests see
// calls and handler invocations in one order) and in a list.
type recordingCaller struct {
	rec *recorder

	mu    sync.Mutex
	calls []*scheduler.Call
	fail  func(*scheduler.Call) error
}

func (r *recordingCaller) Call(_ context.Context, c *scheduler.Call) (mesos.Response, error) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	fail := r.fail
	r.mu.Unlock()
	r.rec.note("call %s", c.Type)
	if fail != nil {
		return nil, fail(c)
	}
	return nil, nil
}

// made counts the calls made, leaving out the reconciler's RECONCILEs.
func (r *recordingCaller) made() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.Type != scheduler.Call_RECONCILE {
			n++
		}
	}
	return n
}

func (r *recordingCaller) ofType(t scheduler.Call_Type) []*scheduler.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*scheduler.Call
	for _, c := range r.calls {
		if c.Type == t {
			out = append(out, c)
		}
	}
	return out
}

type unit struct {
	c       *Client
	rec     *recorder
	book    *taskBook
	store   *memStore
	caller  *recordingCaller
	ctx     context.Context
	stop    context.CancelCauseFunc // what ending Run does
	settled chan struct{}           // closed when the settle goroutine has returned
}

func (u *unit) handle(t *testing.T, e *scheduler.Event) error {
	t.Helper()
	return u.c.eventHandler().HandleEvent(u.ctx, e)
}

func newUnit(t *testing.T, storedID string) *unit {
	t.Helper()
	return newUnitWith(t, storedID, func(r *recorder) Handler { return r })
}

// newUnitWith is newUnit with the handler handler returns around the
// recorder.
func newUnitWith(t *testing.T, storedID string, handler func(*recorder) Handler) *unit {
	t.Helper()
	cfg := NewConfig()
	cfg.ReconcileBackoff = 20 * time.Millisecond
	cfg.ReconcileMaxBackoff = 40 * time.Millisecond
	cfg.ReconcileInterval = time.Hour
	cfg.SubscribeBackoff = 10 * time.Millisecond
	book := newTaskBook()
	rec := newRecorder(book)
	store := &memStore{id: storedID}
	caller := &recordingCaller{rec: rec}
	c := newClient(cfg, store, book, handler(rec), caller)
	ctx, stop := context.WithCancelCause(context.Background())
	c.stop, c.runCtx, c.frameworkID = stop, ctx, storedID
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		c.runSettle(ctx)
	}()
	t.Cleanup(func() {
		stop(nil)
		c.subs.Wait()
		<-settled
	})
	return &unit{c: c, rec: rec, book: book, store: store, caller: caller, ctx: ctx, stop: stop, settled: settled}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"two masters", func(c *Config) { c.Master = "http://a:5050, https://b:5050/prefix/" }, ""},
		{"hierarchical role", func(c *Config) { c.Role = "eng/db" }, ""},
		{"no master", func(c *Config) { c.Master = "" }, "master"},
		{"master without scheme", func(c *Config) { c.Master = "mesos:5050" }, "master"},
		{"master with query", func(c *Config) { c.Master = "http://m:5050/?x=1" }, "master"},
		{"empty name", func(c *Config) { c.Name = " " }, "name"},
		{"empty user", func(c *Config) { c.User = "" }, "user"},
		{"empty role", func(c *Config) { c.Role = "" }, "role"},
		{"role with space", func(c *Config) { c.Role = "a b" }, "role"},
		{"role dotdot", func(c *Config) { c.Role = ".." }, "role"},
		{"role leading dash", func(c *Config) { c.Role = "-x" }, "role"},
		{"role empty segment", func(c *Config) { c.Role = "a//b" }, "role"},
		{"web UI not absolute", func(c *Config) { c.WebUIURL = "/ui" }, "web UI URL"},
		{"zero failover", func(c *Config) { c.FailoverTimeout = 0 }, "failover timeout"},
		{"bad codec", func(c *Config) { c.Codec = "xml" }, "codec"},
		{"one missed heartbeat", func(c *Config) { c.MissedHeartbeats = 1 }, "missed heartbeats"},
		{"zero subscribe backoff", func(c *Config) { c.SubscribeBackoff = 0 }, "subscribe backoff"},
		{"max below min", func(c *Config) { c.SubscribeMaxBackoff = time.Millisecond }, "subscribe max backoff"},
		{"zero reconcile interval", func(c *Config) { c.ReconcileInterval = 0 }, "reconcile interval"},
		{"reconcile max below min", func(c *Config) { c.ReconcileMaxBackoff = time.Millisecond }, "reconcile max backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %q", err, tc.want)
			}
			if _, nerr := New(cfg, &memStore{}, newTaskBook(), newRecorder(newTaskBook())); nerr == nil {
				t.Fatalf("New accepted the invalid config")
			}
		})
	}
}

func TestConfigEndpointsAndFrameworkInfo(t *testing.T) {
	cfg := NewConfig()
	cfg.Master = "http://a:5050, https://b:5050/prefix/"
	cfg.Principal = "p"
	got, err := cfg.endpoints()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://a:5050/api/v1/scheduler", "https://b:5050/prefix/api/v1/scheduler"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("endpoints = %v, want %v", got, want)
	}
	fi := cfg.frameworkInfo()
	if fi.GetFailoverTimeout() != (7*24*time.Hour).Seconds() || !fi.GetCheckpoint() || fi.GetRole() != "*" || fi.GetPrincipal() != "p" {
		t.Fatalf("framework info = %+v", fi)
	}
	var caps []string
	for _, c := range fi.Capabilities {
		caps = append(caps, c.Type.String())
	}
	if strings.Join(caps, ",") != "PARTITION_AWARE,TASK_KILLING_STATE" {
		t.Fatalf("capabilities = %v", caps)
	}
}

func TestSubscribedStoresNewFrameworkIDBeforeAnythingElse(t *testing.T) {
	u := newUnit(t, "")
	var storedAtSubscribed string
	u.rec.onSubscribe = func(Subscription) { storedAtSubscribed = u.store.get() }
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	if storedAtSubscribed != "fw-1" {
		t.Fatalf("store held %q when the handler heard of the subscription, want fw-1", storedAtSubscribed)
	}
	if u.c.FrameworkID() != "fw-1" || !u.c.Connected() {
		t.Fatalf("FrameworkID() = %q, Connected() = %v", u.c.FrameworkID(), u.c.Connected())
	}
	// A re-subscription with the same ID stores nothing again.
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	if len(u.store.sets) != 1 {
		t.Fatalf("store written %d times, want once", len(u.store.sets))
	}
}

func TestSubscribedWithChangedFrameworkIDIsFatal(t *testing.T) {
	u := newUnit(t, "fw-old")
	err := u.handle(t, subscribedEvent("fw-new", 15))
	if !errors.Is(err, ErrFrameworkIDChanged) {
		t.Fatalf("handling SUBSCRIBED = %v, want ErrFrameworkIDChanged", err)
	}
	if !errors.Is(context.Cause(u.ctx), ErrFrameworkIDChanged) {
		t.Fatalf("Run not stopped: cause %v", context.Cause(u.ctx))
	}
	if u.rec.has("subscribed") || u.c.Connected() || u.store.get() != "fw-old" {
		t.Fatalf("changed ID was acted on: log %v, connected %v, stored %q", u.rec.lines(), u.c.Connected(), u.store.get())
	}
}

func TestFrameworkIDStoreFailureIsFatal(t *testing.T) {
	u := newUnit(t, "")
	u.store.setErr = errors.New("etcd down")
	err := u.handle(t, subscribedEvent("fw-1", 15))
	if err == nil || !strings.Contains(err.Error(), "etcd down") {
		t.Fatalf("handling SUBSCRIBED = %v, want the store's error", err)
	}
	if u.rec.has("subscribed") || u.c.Connected() || context.Cause(u.ctx) == nil {
		t.Fatalf("subscription went ahead without a stored ID")
	}
}

func TestUpdatesAreAcknowledgedOnlyOnceRecorded(t *testing.T) {
	uuid := []byte("0123456789abcdef")
	persistErr := errors.New("persist failed")
	for _, tc := range []struct {
		name      string
		known     bool
		fail      error
		state     mesos.TaskState
		uuid      []byte
		wantAck   bool
		wantKill  bool
		wantState mesos.TaskState // recorded state of a known task
	}{
		{name: "recorded", known: true, state: mesos.TASK_RUNNING, uuid: uuid, wantAck: true, wantState: mesos.TASK_RUNNING},
		{name: "not recorded", known: true, fail: persistErr, state: mesos.TASK_RUNNING, uuid: uuid, wantState: mesos.TASK_STAGING},
		{name: "no uuid", known: true, state: mesos.TASK_RUNNING, wantState: mesos.TASK_RUNNING},
		{name: "unknown running", state: mesos.TASK_RUNNING, uuid: uuid, wantAck: true, wantKill: true},
		{name: "unknown reconciled running", state: mesos.TASK_RUNNING, wantKill: true},
		{name: "unknown starting", state: mesos.TASK_STARTING, uuid: uuid, wantAck: true, wantKill: true},
		{name: "unknown finished", state: mesos.TASK_FINISHED, uuid: uuid, wantAck: true},
		{name: "unknown unreachable", state: mesos.TASK_UNREACHABLE},
		{name: "unknown killing", state: mesos.TASK_KILLING, uuid: uuid, wantAck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnit(t, "fw-1")
			if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
				t.Fatal(err)
			}
			if tc.known {
				u.book.add("t1", "a1", mesos.TASK_STAGING)
			}
			if tc.fail != nil {
				u.rec.failWith(func(mesos.TaskStatus) error { return tc.fail })
			}
			if err := u.handle(t, updateEvent("t1", "a1", tc.state, tc.uuid)); err != nil {
				t.Fatalf("an update must never end the subscription: %v", err)
			}
			acks := u.caller.ofType(scheduler.Call_ACKNOWLEDGE)
			if got := len(acks) == 1; got != tc.wantAck {
				t.Fatalf("acknowledged = %v (%d ACKs), want %v", got, len(acks), tc.wantAck)
			}
			if tc.wantAck {
				a := acks[0]
				if a.Acknowledge.TaskID.Value != "t1" || a.Acknowledge.AgentID.Value != "a1" || !bytes.Equal(a.Acknowledge.UUID, uuid) || a.FrameworkID.GetValue() != "fw-1" {
					t.Fatalf("ACK = %+v, want task t1, agent a1, the update's uuid, framework fw-1", a)
				}
				lines := strings.Join(u.rec.lines(), "\n")
				if strings.Index(lines, "update t1") > strings.Index(lines, "call ACKNOWLEDGE") {
					t.Fatalf("ACK sent before the handler saw the update:\n%s", lines)
				}
			}
			kills := u.caller.ofType(scheduler.Call_KILL)
			if got := len(kills) == 1; got != tc.wantKill {
				t.Fatalf("killed = %v (%d KILLs), want %v", got, len(kills), tc.wantKill)
			}
			if tc.wantKill && (kills[0].Kill.TaskID.Value != "t1" || kills[0].Kill.AgentID.GetValue() != "a1") {
				t.Fatalf("KILL = %+v, want task t1 on a1", kills[0].Kill)
			}
			if tc.known {
				if s, _ := u.book.state("t1"); s != tc.wantState {
					t.Fatalf("recorded state %s, want %s", s, tc.wantState)
				}
			}
		})
	}
}

func TestUnknownTaskKilledOncePerInterval(t *testing.T) {
	u := newUnit(t, "fw-1")
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // a duplicate and a reconciliation answer follow the first
		if err := u.handle(t, updateEvent("stray", "a1", mesos.TASK_RUNNING, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(u.caller.ofType(scheduler.Call_KILL)); n != 1 {
		t.Fatalf("%d KILLs for one unknown task, want 1", n)
	}
	k := newKillLog()
	now := time.Now()
	if !k.due("x", now) || k.due("x", now.Add(rekillAfter/2)) || !k.due("x", now.Add(rekillAfter)) {
		t.Fatalf("kill log does not allow exactly one KILL per %v", rekillAfter)
	}
}

func TestErrorEvents(t *testing.T) {
	for _, tc := range []struct {
		msg   string
		fatal error // nil: re-subscribe
	}{
		{"Framework has been removed", ErrFrameworkRemoved},
		{"Framework failed over", ErrFailedOver},
		{"Role 'x' is not present in the master's --roles", nil},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			u := newUnit(t, "fw-1")
			err := u.handle(t, &scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: tc.msg}})
			if err == nil {
				t.Fatalf("ERROR event handled as %v; it must end the subscription", err)
			}
			if !u.rec.has("error " + tc.msg) {
				t.Fatalf("handler did not hear of the ERROR")
			}
			cause := context.Cause(u.ctx)
			if tc.fatal == nil && cause != nil {
				t.Fatalf("Run stopped (%v); want a re-subscription", cause)
			}
			if tc.fatal != nil && !errors.Is(cause, tc.fatal) {
				t.Fatalf("Run stopped with %v, want %v", cause, tc.fatal)
			}
		})
	}
}

func TestCallsFailFastWhileDisconnected(t *testing.T) {
	u := newUnit(t, "fw-1")
	ctx := context.Background()
	offer := []mesos.OfferID{{Value: "o1"}}
	for name, call := range map[string]func() error{
		"accept":    func() error { return u.c.Accept(ctx, offer, []mesos.Offer_Operation{launchOp("t1", "a1")}, 0) },
		"decline":   func() error { return u.c.Decline(ctx, offer, time.Second) },
		"revive":    func() error { return u.c.Revive(ctx) },
		"suppress":  func() error { return u.c.Suppress(ctx) },
		"kill":      func() error { return u.c.Kill(ctx, mesos.TaskID{Value: "t"}, mesos.AgentID{}) },
		"shutdown":  func() error { return u.c.Shutdown(ctx, mesos.ExecutorID{Value: "e"}, mesos.AgentID{Value: "a"}) },
		"reconcile": func() error { return u.c.Reconcile(ctx, nil) },
		"message":   func() error { return u.c.Message(ctx, mesos.AgentID{Value: "a"}, mesos.ExecutorID{Value: "e"}, nil) },
		"teardown":  func() error { return u.c.Teardown(ctx) },
	} {
		if err := call(); !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s while disconnected = %v, want ErrNotConnected", name, err)
		}
	}
	if n := u.caller.made(); n != 0 {
		t.Fatalf("%d calls reached Mesos while disconnected", n)
	}
}

func TestCallsRejectBadInput(t *testing.T) {
	u := newUnit(t, "fw-1")
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	before := u.caller.made()
	ctx := context.Background()
	offer := []mesos.OfferID{{Value: "o1"}}
	noAgent := launchOp("t1", "")
	for name, call := range map[string]func() error{
		"accept without offers": func() error { return u.c.Accept(ctx, nil, []mesos.Offer_Operation{launchOp("t1", "a1")}, 0) },
		"accept with empty offer": func() error {
			return u.c.Accept(ctx, []mesos.OfferID{{}}, []mesos.Offer_Operation{launchOp("t1", "a1")}, 0)
		},
		"accept without operations": func() error { return u.c.Accept(ctx, offer, nil, 0) },
		"accept task without agent": func() error { return u.c.Accept(ctx, offer, []mesos.Offer_Operation{noAgent}, 0) },
		"accept negative refuse": func() error {
			return u.c.Accept(ctx, offer, []mesos.Offer_Operation{launchOp("t1", "a1")}, -time.Second)
		},
		"decline without offers":   func() error { return u.c.Decline(ctx, nil, 0) },
		"revive bad role":          func() error { return u.c.Revive(ctx, "a b") },
		"kill empty task":          func() error { return u.c.Kill(ctx, mesos.TaskID{}, mesos.AgentID{}) },
		"shutdown without agent":   func() error { return u.c.Shutdown(ctx, mesos.ExecutorID{Value: "e"}, mesos.AgentID{}) },
		"reconcile empty task":     func() error { return u.c.Reconcile(ctx, []TaskRef{{}}) },
		"message without executor": func() error { return u.c.Message(ctx, mesos.AgentID{Value: "a"}, mesos.ExecutorID{}, nil) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := u.caller.made() - before; n != 0 {
		t.Fatalf("%d invalid calls reached Mesos", n)
	}
}

func TestCallsCarryFrameworkIDAndFilters(t *testing.T) {
	u := newUnit(t, "fw-1")
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := u.c.Decline(ctx, []mesos.OfferID{{Value: "o1"}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := u.c.Accept(ctx, []mesos.OfferID{{Value: "o2"}}, []mesos.Offer_Operation{launchOp("t1", "a1")}, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := u.c.Suppress(ctx, "*"); err != nil {
		t.Fatal(err)
	}
	d := u.caller.ofType(scheduler.Call_DECLINE)[0]
	if d.FrameworkID.GetValue() != "fw-1" || d.Decline.Filters == nil || d.Decline.Filters.RefuseSeconds == nil || *d.Decline.Filters.RefuseSeconds != 0 {
		t.Fatalf("DECLINE = %+v, want framework fw-1 and an explicit refuse_seconds 0", d)
	}
	a := u.caller.ofType(scheduler.Call_ACCEPT)[0]
	if a.FrameworkID.GetValue() != "fw-1" || a.Accept.Filters.GetRefuseSeconds() != 3 || a.Accept.OfferIDs[0].Value != "o2" ||
		a.Accept.Operations[0].Launch.TaskInfos[0].TaskID.Value != "t1" {
		t.Fatalf("ACCEPT = %+v", a)
	}
	s := u.caller.ofType(scheduler.Call_SUPPRESS)[0]
	if strings.Join(s.Suppress.Roles, ",") != "*" {
		t.Fatalf("SUPPRESS roles = %v", s.Suppress.Roles)
	}
}

func TestForbiddenMeansNotConnected(t *testing.T) {
	u := newUnit(t, "fw-1")
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	u.caller.fail = func(*scheduler.Call) error {
		return apierrors.CodeUnsubscribed.Error("Framework is not subscribed")
	}
	if err := u.c.Revive(context.Background()); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Revive after a 403 = %v, want ErrNotConnected", err)
	}
}

func TestExplicitReconciliationRetriesUntilEveryTaskAnswered(t *testing.T) {
	u := newUnit(t, "fw-1")
	u.book.add("t1", "a1", mesos.TASK_RUNNING)
	u.book.add("t2", "a2", mesos.TASK_RUNNING)
	u.book.add("done", "a1", mesos.TASK_FINISHED)
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "first RECONCILE", func() bool { return len(u.caller.ofType(scheduler.Call_RECONCILE)) >= 1 })
	first := u.caller.ofType(scheduler.Call_RECONCILE)[0]
	if got := reconciled(first); got != "t1@a1,t2@a2" {
		t.Fatalf("first RECONCILE asked about %s, want t1@a1,t2@a2", got)
	}
	// t1 answers; t2's agent has not re-registered, so Mesos stays silent.
	if err := u.handle(t, updateEvent("t1", "a1", mesos.TASK_RUNNING, nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "a RECONCILE of t2 alone", func() bool {
		rs := u.caller.ofType(scheduler.Call_RECONCILE)
		return reconciled(rs[len(rs)-1]) == "t2@a2"
	})
	if err := u.handle(t, updateEvent("t2", "a2", mesos.TASK_RUNNING, nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "implicit RECONCILE", func() bool {
		rs := u.caller.ofType(scheduler.Call_RECONCILE)
		return len(rs[len(rs)-1].Reconcile.Tasks) == 0
	})
	for _, r := range u.caller.ofType(scheduler.Call_RECONCILE) {
		if strings.Contains(reconciled(r), "done") {
			t.Fatalf("terminal task reconciled: %s", reconciled(r))
		}
	}
}

func reconciled(c *scheduler.Call) string {
	var out []string
	for _, t := range c.Reconcile.Tasks {
		out = append(out, t.TaskID.Value+"@"+t.AgentID.GetValue())
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

type closeCounter struct {
	mu sync.Mutex
	n  int
}

func (c *closeCounter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return nil
}

func (c *closeCounter) closed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestWatchdogClosesASilentStream(t *testing.T) {
	w := newWatchdog(3, 20*time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	s := &closeCounter{}
	start := time.Now()
	w.watch(s)
	eventually(t, 2*time.Second, "the silent stream to be closed", func() bool { return s.closed() == 1 })
	if waited := time.Since(start); waited < 60*time.Millisecond {
		t.Fatalf("closed after %v, before 3 heartbeat intervals of 20ms", waited)
	}
}

func TestWatchdogSparesAStreamWhileAnEventIsHandled(t *testing.T) {
	w := newWatchdog(3, time.Second, nil)
	s := &closeCounter{}
	w.watch(s)
	w.handling(true)
	w.mu.Lock()
	w.last = time.Now().Add(-time.Hour)
	w.mu.Unlock()
	w.check()
	if s.closed() != 0 {
		t.Fatalf("stream closed while an event was being handled")
	}
	w.handling(false)
	w.mu.Lock()
	w.last = time.Now().Add(-4 * time.Second)
	w.mu.Unlock()
	w.check()
	if s.closed() != 1 {
		t.Fatalf("stream silent for 4 intervals (limit 3) not closed")
	}
	w.watch(s)
	w.mu.Lock()
	w.last = time.Now().Add(-2 * time.Second)
	w.mu.Unlock()
	if wait := w.check(); s.closed() != 1 || wait <= 0 || wait > time.Second {
		t.Fatalf("stream silent for 2 of 3 intervals: closed %d times, next check in %v", s.closed(), wait)
	}
}

func TestMastersFollowTheSubscription(t *testing.T) {
	var mu sync.Mutex
	hits := map[string][]string{} // server name -> "SUBSCRIBE" or "CALL"
	note := func(name string, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		kind := "CALL"
		if r.Header.Get("Mesos-Stream-Id") == "" {
			kind = "SUBSCRIBE"
		}
		hits[name] = append(hits[name], kind)
	}
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note("leader", r)
		w.WriteHeader(http.StatusOK)
	}))
	defer leader.Close()
	leaderURL, _ := url.Parse(leader.URL)
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note("follower", r)
		w.Header().Set("Location", "//"+leaderURL.Host+schedulerPath)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	cfg := NewConfig()
	cfg.Master = dead.URL + "," + follower.URL
	endpoints, err := cfg.endpoints()
	if err != nil {
		t.Fatal(err)
	}
	m := newMasters(endpoints)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := m.wrap(noFollow.Do)
	send := func(target string, streamID string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", target, nil)
		if streamID != "" {
			req.Header.Set("Mesos-Stream-Id", streamID)
		}
		res, err := do(req)
		if err != nil {
			return nil
		}
		res.Body.Close()
		return res
	}
	// The first master is down: the attempt fails and the turn passes on.
	if res := send(endpoints[0], ""); res != nil {
		t.Fatalf("SUBSCRIBE to a dead master answered %d", res.StatusCode)
	}
	// The follower redirects; httpsched then sends the SUBSCRIBE to the
	// leader, which accepts it.
	if res := send(endpoints[0], ""); res == nil || res.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("SUBSCRIBE to the follower: %v", res)
	}
	if res := send("http://"+leaderURL.Host+schedulerPath, ""); res == nil || res.StatusCode != http.StatusOK {
		t.Fatalf("redirected SUBSCRIBE: %v", res)
	}
	// Later calls go to the leader although httpcli addresses the first master.
	if res := send(endpoints[0], "stream-1"); res == nil || res.StatusCode != http.StatusOK {
		t.Fatalf("call after subscription: %v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(hits["follower"], ","); got != "SUBSCRIBE" {
		t.Fatalf("follower saw %s, want one SUBSCRIBE", got)
	}
	if got := strings.Join(hits["leader"], ","); got != "SUBSCRIBE,CALL" {
		t.Fatalf("leader saw %s, want SUBSCRIBE,CALL", got)
	}
}

func launchOp(taskID, agentID string) mesos.Offer_Operation {
	shell := true
	cmd := "true"
	return calls.OpLaunch(mesos.TaskInfo{
		Name:    taskID,
		TaskID:  mesos.TaskID{Value: taskID},
		AgentID: mesos.AgentID{Value: agentID},
		Command: &mesos.CommandInfo{Shell: &shell, Value: &cmd},
	})
}
