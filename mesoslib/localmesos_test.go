package mesoslib

// Tests against a real localmesos cluster: the master and agents speak the
// v1 HTTP APIs and run command tasks as real processes.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/mesos-stateful/stateful/localmesos"
)

const (
	testHeartbeat  = 200 * time.Millisecond
	testAllocation = 50 * time.Millisecond
	testRetry      = 300 * time.Millisecond // agents' status update retry
	waitLong       = 15 * time.Second
)

func startCluster(t *testing.T, agents int, change func(*localmesos.Config)) *localmesos.Cluster {
	t.Helper()
	cfg := localmesos.NewConfig()
	cfg.Port = 0
	cfg.Agents = agents
	cfg.WorkDir = t.TempDir()
	cfg.Resources = "cpus:2;mem:2048;disk:4096;ports:[31000-31099]"
	cfg.HeartbeatInterval = testHeartbeat
	cfg.AllocationInterval = testAllocation
	cfg.AgentPingTimeout = 500 * time.Millisecond
	cfg.StatusUpdateRetryInterval = testRetry
	cfg.ExecutorReregistrationTimeout = 500 * time.Millisecond
	cfg.ExecutorShutdownGracePeriod = time.Second
	if change != nil {
		change(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cluster, err := localmesos.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("start localmesos: %v", err)
	}
	t.Cleanup(func() {
		cluster.Close()
		cancel()
	})
	return cluster
}

// testScheduler is a running Client with in-memory consumer state.
type testScheduler struct {
	c     *Client
	rec   *recorder
	book  *taskBook
	store *memStore
	stop  context.CancelFunc
	done  chan error
}

func testConfig(master string) Config {
	cfg := NewConfig()
	cfg.Master = master
	cfg.Name = "mesoslib-test"
	cfg.SubscribeBackoff = 50 * time.Millisecond
	cfg.SubscribeMaxBackoff = 500 * time.Millisecond
	cfg.ReconcileBackoff = 100 * time.Millisecond
	cfg.ReconcileMaxBackoff = time.Second
	cfg.ReconcileInterval = time.Hour
	return cfg
}

func startScheduler(t *testing.T, cfg Config, store *memStore, book *taskBook) *testScheduler {
	t.Helper()
	s := &testScheduler{rec: newRecorder(book), book: book, store: store, done: make(chan error, 1)}
	c, err := New(cfg, store, book, s.rec)
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() { s.done <- c.Run(ctx) }()
	t.Cleanup(func() { s.shutdown(t) })
	return s
}

// shutdown stops Run and returns what it returned.
func (s *testScheduler) shutdown(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err, ok := <-s.done:
		if ok {
			close(s.done)
			return err
		}
		return nil
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return within 10s of its context ending")
		return nil
	}
}

func (s *testScheduler) waitSubscribed(t *testing.T, n int) {
	t.Helper()
	eventually(t, waitLong, fmt.Sprintf("subscription #%d", n), func() bool {
		return s.rec.count("subscribed ") >= n && s.c.Connected()
	})
}

// takeOffer waits for an offer received after the first skip offers.
func (s *testScheduler) takeOffer(t *testing.T, skip int) (mesos.Offer, int) {
	t.Helper()
	var offers []mesos.Offer
	eventually(t, waitLong, "an offer", func() bool {
		offers = s.rec.allOffers()
		return len(offers) > skip
	})
	return offers[skip], len(offers)
}

// launch starts a command task on the offer's agent and records it in the
// book first, as offermgr records STAGING before ACCEPT.
func (s *testScheduler) launch(t *testing.T, offer mesos.Offer, taskID, command string, remember bool) {
	t.Helper()
	if remember {
		s.book.add(taskID, offer.AgentID.Value, mesos.TASK_STAGING)
	}
	shell := true
	task := mesos.TaskInfo{
		Name:    taskID,
		TaskID:  mesos.TaskID{Value: taskID},
		AgentID: offer.AgentID,
		Command: &mesos.CommandInfo{Shell: &shell, Value: &command},
		Resources: []mesos.Resource{
			resources.NewCPUs(0.1).Resource,
			resources.NewMemory(32).Resource,
		},
	}
	err := s.c.Accept(context.Background(), []mesos.OfferID{offer.ID}, []mesos.Offer_Operation{calls.OpLaunch(task)}, 0)
	if err != nil {
		t.Fatalf("ACCEPT: %v", err)
	}
}

func (s *testScheduler) waitState(t *testing.T, taskID string, state mesos.TaskState) {
	t.Helper()
	eventually(t, waitLong, taskID+" "+state.String(), func() bool {
		got, _ := s.book.state(taskID)
		return got == state
	})
}

func (s *testScheduler) sawUpdate(taskID string, match func(mesos.TaskStatus) bool) bool {
	for _, u := range s.rec.updatesOf(taskID) {
		if match(u) {
			return true
		}
	}
	return false
}

func TestSubscribeStoresFrameworkID(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	store := &memStore{}
	s := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	s.waitSubscribed(t, 1)
	id := s.c.FrameworkID()
	if id == "" || store.get() != id {
		t.Fatalf("framework ID %q, stored %q", id, store.get())
	}
	if heard := time.Since(s.c.LastHeard()); heard > 5*testHeartbeat {
		t.Fatalf("last heard from the master %v ago", heard)
	}
	s.takeOffer(t, 0)

	// A restart re-subscribes under the stored ID and stores nothing new.
	if err := s.shutdown(t); err != nil {
		t.Fatalf("Run returned %v after its context ended, want nil", err)
	}
	if s.c.Connected() {
		t.Fatalf("still connected after Run returned")
	}
	s2 := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	s2.waitSubscribed(t, 1)
	if s2.c.FrameworkID() != id || len(store.sets) != 1 {
		t.Fatalf("after restart: framework ID %q (want %q), store written %d times", s2.c.FrameworkID(), id, len(store.sets))
	}
}

func TestJSONCodec(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	cfg := testConfig(cluster.MasterURL())
	cfg.Codec = CodecJSON
	s := startScheduler(t, cfg, &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	offer, _ := s.takeOffer(t, 0)
	s.launch(t, offer, "json-1", "true", true)
	s.waitState(t, "json-1", mesos.TASK_FINISHED)
}

func TestCommandTaskRunsToFinished(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	s := startScheduler(t, testConfig(cluster.MasterURL()), &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	offer, _ := s.takeOffer(t, 0)
	s.launch(t, offer, "task-1", "sleep 0.2", true)
	s.waitState(t, "task-1", mesos.TASK_FINISHED)
	// The agent sends a task's next update only once the previous one was
	// acknowledged, so reaching FINISHED through RUNNING proves the ACKs.
	var states []string
	for _, u := range s.rec.updatesOf("task-1") {
		states = append(states, u.GetState().String())
	}
	got := strings.Join(states, ",")
	if !strings.Contains(got, "TASK_RUNNING") || !strings.HasSuffix(got, "TASK_FINISHED") {
		t.Fatalf("updates %s, want TASK_RUNNING then TASK_FINISHED", got)
	}
}

func TestUpdateAcknowledgedOnlyOnceRecorded(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	book := newTaskBook()
	s := startScheduler(t, testConfig(cluster.MasterURL()), &memStore{}, book)
	var failures atomic.Int32
	s.rec.failWith(func(st mesos.TaskStatus) error {
		if st.GetState() == mesos.TASK_RUNNING && len(st.UUID) > 0 && failures.Load() < 2 {
			failures.Add(1)
			return errors.New("etcd unavailable")
		}
		return nil
	})
	s.waitSubscribed(t, 1)
	offer, _ := s.takeOffer(t, 0)
	s.launch(t, offer, "task-1", "sleep 0.2", true)
	s.waitState(t, "task-1", mesos.TASK_FINISHED)

	var running []mesos.TaskStatus
	sawFinished := false
	for _, u := range s.rec.updatesOf("task-1") {
		switch u.GetState() {
		case mesos.TASK_RUNNING:
			if len(u.UUID) > 0 {
				if sawFinished {
					t.Fatalf("TASK_RUNNING delivered after TASK_FINISHED")
				}
				running = append(running, u)
			}
		case mesos.TASK_FINISHED:
			// The agent holds FINISHED back until RUNNING is acknowledged.
			if len(running) < 3 {
				t.Fatalf("TASK_FINISHED after %d deliveries of TASK_RUNNING; the 2 refused ones must not have been acknowledged", len(running))
			}
			sawFinished = true
		}
	}
	for _, u := range running[1:] {
		if string(u.UUID) != string(running[0].UUID) {
			t.Fatalf("redelivered TASK_RUNNING has another uuid: not the same update")
		}
	}
}

func TestUnknownTaskIsKilled(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	store := &memStore{}
	first := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	first.waitSubscribed(t, 1)
	offer, _ := first.takeOffer(t, 0)
	first.launch(t, offer, "orphan", "sleep 600", true)
	first.waitState(t, "orphan", mesos.TASK_RUNNING)
	if err := first.shutdown(t); err != nil {
		t.Fatal(err)
	}

	// The next scheduler has lost its task records: implicit reconciliation
	// reveals the task, and it is killed.
	second := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	second.waitSubscribed(t, 1)
	eventually(t, waitLong, "the unknown task killed", func() bool {
		return second.sawUpdate("orphan", func(u mesos.TaskStatus) bool { return u.GetState() == mesos.TASK_KILLED })
	})
}

func TestDeclineSuppressReviveReachTheMaster(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	s := startScheduler(t, testConfig(cluster.MasterURL()), &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	ctx := context.Background()
	offer, seen := s.takeOffer(t, 0)

	// Declined without a filter, the resources come back at once.
	if err := s.c.Decline(ctx, []mesos.OfferID{offer.ID}, 0); err != nil {
		t.Fatal(err)
	}
	offer, seen = s.takeOffer(t, seen)

	// Declined for an hour, they stay away until REVIVE clears the filter.
	if err := s.c.Decline(ctx, []mesos.OfferID{offer.ID}, time.Hour); err != nil {
		t.Fatal(err)
	}
	assertNoOffers(t, s, seen, "after a one-hour DECLINE")
	if err := s.c.Revive(ctx); err != nil {
		t.Fatal(err)
	}
	offer, seen = s.takeOffer(t, seen)

	// Suppressed, even unfiltered resources stay away until REVIVE.
	if err := s.c.Suppress(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Decline(ctx, []mesos.OfferID{offer.ID}, 0); err != nil {
		t.Fatal(err)
	}
	assertNoOffers(t, s, seen, "while suppressed")
	if err := s.c.Revive(ctx, "*"); err != nil {
		t.Fatal(err)
	}
	s.takeOffer(t, seen)
}

// assertNoOffers checks that no offer arrives for 20 allocation intervals.
// Not synchronisation: an offer that is wrongly sent comes within one.
func assertNoOffers(t *testing.T, s *testScheduler, seen int, when string) {
	t.Helper()
	deadline := time.Now().Add(20 * testAllocation)
	for time.Now().Before(deadline) {
		if n := len(s.rec.allOffers()); n > seen {
			t.Fatalf("offer received %s", when)
		}
		time.Sleep(testAllocation / 2)
	}
}

func TestResubscribeAfterMasterFailoverKeepsIDAndReconciles(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	store := &memStore{}
	s := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	s.waitSubscribed(t, 1)
	id := s.c.FrameworkID()
	offer, _ := s.takeOffer(t, 0)
	s.launch(t, offer, "long-1", "sleep 600", true)
	s.waitState(t, "long-1", mesos.TASK_RUNNING)
	before := len(s.rec.updatesOf("long-1"))
	// A task we believe runs but Mesos never heard of: only an explicit
	// reconciliation asks about it (implicit covers what Mesos knows).
	s.book.add("ghost", offer.AgentID.Value, mesos.TASK_RUNNING)

	cluster.FailoverMaster()
	eventually(t, waitLong, "disconnection", func() bool { return s.rec.has("disconnected") })
	s.waitSubscribed(t, 2)
	if s.c.FrameworkID() != id || len(store.sets) != 1 {
		t.Fatalf("after failover: framework ID %q (want %q), store written %d times", s.c.FrameworkID(), id, len(store.sets))
	}
	eventually(t, waitLong, "reconciliation answer for long-1", func() bool {
		for _, u := range s.rec.updatesOf("long-1")[before:] {
			if u.GetReason() == mesos.REASON_RECONCILIATION && u.GetState() == mesos.TASK_RUNNING {
				return true
			}
		}
		return false
	})
	eventually(t, waitLong, "explicit reconciliation answer for the ghost task", func() bool {
		return s.sawUpdate("ghost", func(u mesos.TaskStatus) bool {
			return u.GetReason() == mesos.REASON_RECONCILIATION && u.GetState() == mesos.TASK_GONE
		})
	})
}

func TestHeartbeatWatchdogResubscribesASilentStream(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	proxy := newStreamProxy(t, cluster.MasterURL())
	s := startScheduler(t, testConfig(proxy.URL()), &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	id := s.c.FrameworkID()

	proxy.Silence()
	start := time.Now()
	eventually(t, waitLong, "disconnection", func() bool { return s.rec.has("disconnected") })
	if waited := time.Since(start); waited < 4*testHeartbeat {
		t.Fatalf("gave up on the stream after %v, before 5 heartbeat intervals of %v", waited, testHeartbeat)
	}
	s.waitSubscribed(t, 2)
	if s.c.FrameworkID() != id {
		t.Fatalf("re-subscribed as %s, want %s", s.c.FrameworkID(), id)
	}
}

func TestForbiddenCallResubscribes(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	proxy := newStreamProxy(t, cluster.MasterURL())
	cfg := testConfig(proxy.URL())
	cfg.MissedHeartbeats = 1000 // only the 403 may end this subscription
	s := startScheduler(t, cfg, &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)

	// The master loses the stream; the scheduler does not notice until a
	// call is refused with 403.
	proxy.Sever()
	eventually(t, waitLong, "a 403", func() bool {
		return errors.Is(s.c.Revive(context.Background()), ErrNotConnected)
	})
	s.waitSubscribed(t, 2)
	if err := s.c.Revive(context.Background()); err != nil {
		t.Fatalf("REVIVE after re-subscribing: %v", err)
	}
}

func TestAgentRemovalReportsUnreachableAndFailure(t *testing.T) {
	cluster := startCluster(t, 2, nil)
	s := startScheduler(t, testConfig(cluster.MasterURL()), &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	offer, _ := s.takeOffer(t, 0)
	s.launch(t, offer, "lost-1", "sleep 600", true)
	s.waitState(t, "lost-1", mesos.TASK_RUNNING)

	if err := cluster.RemoveAgent(offer.AgentID.Value); err != nil {
		t.Fatal(err)
	}
	s.waitState(t, "lost-1", mesos.TASK_UNREACHABLE)
	eventually(t, waitLong, "FAILURE of the agent", func() bool {
		return s.rec.agentFailed(offer.AgentID.Value)
	})
	for _, u := range s.rec.updatesOf("lost-1") {
		if u.GetState() == mesos.TASK_UNREACHABLE && u.GetReason() != mesos.REASON_AGENT_REMOVED {
			t.Fatalf("TASK_UNREACHABLE with reason %s, want REASON_AGENT_REMOVED", u.GetReason())
		}
	}
}

func TestRedirectFromNonLeadingMaster(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	leader, err := url.Parse(cluster.MasterURL())
	if err != nil {
		t.Fatal(err)
	}
	var redirected atomic.Int32
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		w.Header().Set("Location", "//"+leader.Host+schedulerPath)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	t.Cleanup(follower.Close)

	s := startScheduler(t, testConfig(follower.URL), &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	offer, seen := s.takeOffer(t, 0)
	// Calls go to the leader: a call to the follower would get a 307 and
	// cost the subscription.
	if err := s.c.Decline(context.Background(), []mesos.OfferID{offer.ID}, 0); err != nil {
		t.Fatal(err)
	}
	s.takeOffer(t, seen)
	if n := redirected.Load(); n != 1 || s.rec.count("subscribed ") != 1 {
		t.Fatalf("follower answered %d requests, %d subscriptions; want 1 and 1", n, s.rec.count("subscribed "))
	}
}

func TestTeardownEndsRunAndClearsTheID(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	store := &memStore{}
	s := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	s.waitSubscribed(t, 1)
	old := s.c.FrameworkID()
	if err := s.c.Teardown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		close(s.done)
		if !errors.Is(err, ErrTornDown) {
			t.Fatalf("Run returned %v, want ErrTornDown", err)
		}
	case <-time.After(waitLong):
		t.Fatalf("Run still running after TEARDOWN")
	}
	if store.get() != "" {
		t.Fatalf("stored framework ID %q after teardown, want none", store.get())
	}

	// The torn-down ID is refused for good.
	stale := &memStore{id: old}
	s2 := startScheduler(t, testConfig(cluster.MasterURL()), stale, newTaskBook())
	select {
	case err := <-s2.done:
		close(s2.done)
		if !errors.Is(err, ErrFrameworkRemoved) {
			t.Fatalf("Run with a torn-down ID returned %v, want ErrFrameworkRemoved", err)
		}
	case <-time.After(waitLong):
		t.Fatalf("Run with a torn-down ID did not stop")
	}

	// A fresh start registers a new framework.
	s3 := startScheduler(t, testConfig(cluster.MasterURL()), store, newTaskBook())
	s3.waitSubscribed(t, 1)
	if id := s3.c.FrameworkID(); id == "" || id == old {
		t.Fatalf("new framework ID %q, old %q", id, old)
	}
}

func TestAsyncUpdateAcknowledgedWhenDone(t *testing.T) {
	cluster := startCluster(t, 1, nil)
	book := newTaskBook()
	async := newAsyncRecorder(book)
	// Hold the task's RUNNING update (the one with a uuid); finish every
	// other update at once, from another goroutine.
	async.hold = func(s mesos.TaskStatus) bool {
		return s.TaskID.Value == "held-1" && s.GetState() == mesos.TASK_RUNNING && len(s.UUID) > 0
	}
	s := &testScheduler{rec: async.recorder, book: book, store: &memStore{}, done: make(chan error, 1)}
	c, err := New(testConfig(cluster.MasterURL()), s.store, book, async)
	if err != nil {
		t.Fatal(err)
	}
	s.c = c
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() { s.done <- c.Run(ctx) }()
	t.Cleanup(func() { s.shutdown(t) })

	s.waitSubscribed(t, 1)
	offer, _ := s.takeOffer(t, 0)
	s.launch(t, offer, "held-1", "sleep 0.2", true)

	// The agent sends RUNNING again (every testRetry) while it is not
	// acknowledged; each delivery reaching the handler while the first is
	// still pending shows that the stream was not held up and no ACK went
	// out. The agent holds FINISHED back until RUNNING is acknowledged.
	eventually(t, waitLong, "RUNNING delivered again while pending", func() bool { return len(async.held()) >= 2 })
	if s.sawUpdate("held-1", func(u mesos.TaskStatus) bool { return u.GetState() == mesos.TASK_FINISHED }) {
		t.Fatalf("TASK_FINISHED delivered while TASK_RUNNING was not acknowledged")
	}
	held := async.held()
	for _, h := range held[1:] {
		async.finish(h, errors.New("etcd unavailable"))
	}
	async.finish(held[0], nil)
	s.waitState(t, "held-1", mesos.TASK_FINISHED)

	lines := s.rec.lines()
	finished, done := -1, -1
	for i, l := range lines {
		switch {
		case l == "done held-1 <nil>" && done < 0:
			done = i
		case l == "update held-1 TASK_FINISHED" && finished < 0:
			finished = i
		}
	}
	if done < 0 || finished < done {
		t.Fatalf("TASK_FINISHED (line %d) did not follow done(nil) of TASK_RUNNING (line %d):\n%s", finished, done, strings.Join(lines, "\n"))
	}
}
