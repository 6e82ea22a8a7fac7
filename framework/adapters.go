package framework

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/creator"
	"github.com/mesos-stateful/stateful/maintainer"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// Small adapters between the parts' interfaces. Each part declares what it
// needs; these fit statemgr, buffer and mesoslib to those needs.

// frameworkIDs stores the Mesos framework ID in statemgr (mesoslib's
// FrameworkIDStore).
type frameworkIDs struct{ store *statemgr.Store }

func (f frameworkIDs) FrameworkID(context.Context) (string, error) { return f.store.FrameworkID(), nil }
func (f frameworkIDs) SetFrameworkID(ctx context.Context, id string) error {
	return f.store.SetFrameworkID(ctx, id)
}

// liveTasks lists the tasks to reconcile with Mesos: every attempt that was
// launched and is not known to have ended (mesoslib's TaskLister), and
// where they run (offermgr's RunningTasks).
type liveTasks struct{ store *statemgr.Store }

func (l liveTasks) LiveTasks(context.Context) ([]mesoslib.TaskRef, error) {
	var refs []mesoslib.TaskRef
	for _, t := range l.store.AllTasks() {
		if t.State.IsLaunched() && t.TaskID != "" {
			refs = append(refs, mesoslib.TaskRef{TaskID: mesos.TaskID{Value: t.TaskID}, AgentID: mesos.AgentID{Value: t.AgentID}})
		}
	}
	return refs, nil
}

func (l liveTasks) ByAgent() map[string][]offermgr.Key {
	out := map[string][]offermgr.Key{}
	for _, t := range l.store.AllTasks() {
		if t.State.IsLaunched() && t.AgentID != "" {
			out[t.AgentID] = append(out[t.AgentID], offermgr.Key{Instance: t.Instance, Ordinal: t.Ordinal})
		}
	}
	return out
}

// pendingTasks shows buffer's task queue to offermgr.
type pendingTasks struct {
	q *buffer.TaskQueue[offermgr.Demand]
}

func (p pendingTasks) Pending() []offermgr.Demand {
	entries := p.q.Snapshot()
	out := make([]offermgr.Demand, len(entries))
	for i, e := range entries {
		out[i] = e.Value
	}
	return out
}

func (p pendingTasks) Notify() <-chan struct{} { return p.q.Notify() }

// killer sends KILL through mesoslib, at most once per task per interval:
// the reconcile steps kill on every pass until a task is terminal, and
// Mesos needs a moment to act.
type killer struct {
	client *mesoslib.Client
	every  time.Duration

	mu   sync.Mutex
	sent map[string]time.Time
}

func newKiller(client *mesoslib.Client, every time.Duration) *killer {
	return &killer{client: client, every: every, sent: map[string]time.Time{}}
}

func (k *killer) Kill(ctx context.Context, taskID, agentID string) error {
	if taskID == "" {
		return nil
	}
	now := time.Now()
	k.mu.Lock()
	if at, ok := k.sent[taskID]; ok && now.Sub(at) < k.every {
		k.mu.Unlock()
		return nil
	}
	for id, at := range k.sent {
		if now.Sub(at) >= k.every {
			delete(k.sent, id)
		}
	}
	k.mu.Unlock()
	if err := k.client.Kill(ctx, mesos.TaskID{Value: taskID}, mesos.AgentID{Value: agentID}); err != nil {
		return err
	}
	glog.V(1).Infof("framework: KILL %s sent", taskID)
	k.mu.Lock()
	k.sent[taskID] = now
	k.mu.Unlock()
	return nil
}

// messenger sends framework messages through mesoslib.
type messenger struct{ client *mesoslib.Client }

func (m messenger) Message(ctx context.Context, agentID, executorID string, data []byte) error {
	return m.client.Message(ctx, mesos.AgentID{Value: agentID}, mesos.ExecutorID{Value: executorID}, data)
}

// events hands the subscription's events to the parts (mesoslib's
// Handler): offers to offermgr, status updates to the maintainer's batcher
// (mesoslib's AsyncUpdater: many updates to an etcd transaction), executor
// messages to the maintainer.
type events struct {
	offers     *offermgr.Manager
	maintainer *maintainer.Maintainer
	batcher    *maintainer.Batcher
	resync     func()
	reserved   reservations
}

func (e *events) OperationStatus(ctx context.Context, s mesos.OperationStatus) error {
	return e.reserved.OperationStatus(ctx, s)
}

var _ mesoslib.AsyncUpdater = (*events)(nil)

func (e *events) Subscribed(_ context.Context, s mesoslib.Subscription) {
	e.offers.Resubscribed()
	// Reconciliation answers will come; meanwhile make sure every
	// instance is looked at under the new subscription.
	e.resync()
}

func (e *events) Disconnected(_ context.Context, err error) {
	glog.Warningf("framework: disconnected from Mesos (re-subscribing): %v", err)
}

func (e *events) Offers(_ context.Context, offers []mesos.Offer) { e.offers.Offer(offers...) }
func (e *events) Rescind(_ context.Context, id mesos.OfferID)    { e.offers.Rescind(id) }

// Update is mesoslib's synchronous path; as events implements UpdateAsync,
// mesoslib does not use it.
func (e *events) Update(ctx context.Context, s mesos.TaskStatus) error {
	return e.maintainer.Update(ctx, s)
}

func (e *events) UpdateAsync(ctx context.Context, s mesos.TaskStatus, done func(error)) {
	e.batcher.UpdateAsync(ctx, s, done)
}

func (e *events) Message(ctx context.Context, agentID mesos.AgentID, executorID mesos.ExecutorID, data []byte) {
	e.maintainer.Message(ctx, agentID, executorID, data)
}

func (e *events) Failure(_ context.Context, f mesoslib.Failure) {
	// The tasks concerned get their own status updates (TASK_FAILED,
	// TASK_UNREACHABLE); this is for the log.
	if f.ExecutorID == nil {
		glog.Warningf("framework: Mesos reports agent %s lost", f.AgentID.GetValue())
		return
	}
	glog.V(1).Infof("framework: executor %s on agent %s ended", f.ExecutorID.GetValue(), f.AgentID.GetValue())
}

func (e *events) Error(_ context.Context, message string) {
	glog.Errorf("framework: Mesos sent an error: %s", message)
}

// KnownReservations lists the resource IDs of every reservation a task
// records (offermgr's Config.Known): any other reservation of the
// framework that an offer carries is released.
func (l liveTasks) KnownReservations() map[string]bool {
	out := map[string]bool{}
	for _, t := range l.store.AllTasks() {
		if t.Reservation != nil {
			out[t.Reservation.ResourceID] = true
		}
	}
	return out
}

// releaseOpInfix separates the reservation's resource ID from the rest in
// a release operation's ID (creator.ReleaseOpID).
const releaseOpInfix = creator.ReleaseOpInfix

// reservations records the feedback on reservation releases (mesoslib's
// OperationHandler, through events).
type reservations struct {
	store   *statemgr.Store
	enqueue func(string)
	crash   func(point string) // Config.CrashPoint
}

// OperationStatus records what Mesos says of an UNRESERVE the launcher
// sent with an ID: finished, the task's reservation is forgotten; failed
// or unknown to Mesos, the ID is cleared so the release is sent again the
// next time the reservation is offered.
func (r reservations) OperationStatus(ctx context.Context, s mesos.OperationStatus) error {
	id := s.GetOperationID().GetValue()
	var forget, retry bool
	switch s.GetState() {
	case mesos.OPERATION_FINISHED, mesos.OPERATION_GONE_BY_OPERATOR:
		forget = true
	case mesos.OPERATION_ERROR, mesos.OPERATION_FAILED, mesos.OPERATION_DROPPED, mesos.OPERATION_UNKNOWN:
		retry = true
	default: // pending, recovering, unreachable: the answer is still to come
		return nil
	}
	// A finished release frees the reservation whichever of its release
	// operations it was: an earlier one may finish after a later one was
	// recorded (a reconciliation answer came first).
	resID, _, _ := strings.Cut(id, releaseOpInfix)
	var owner *stateful.Task
	for _, t := range r.store.AllTasks() {
		if t.Reservation != nil && (t.Reservation.ReleaseOp == id || (forget && t.Reservation.Releasing && t.Reservation.ResourceID == resID)) {
			owner = t
			break
		}
	}
	if owner == nil || id == "" {
		glog.V(1).Infof("framework: feedback %s of operation %q that no task waits for", s.GetState(), id)
		return nil
	}
	if r.crash != nil {
		r.crash("release:before-record")
	}
	_, err := r.store.UpdateTask(ctx, owner.Instance, owner.Ordinal, func(t *stateful.Task) error {
		if t.Reservation == nil || (t.Reservation.ReleaseOp != id && !(forget && t.Reservation.ResourceID == resID)) {
			return nil
		}
		if forget {
			glog.Infof("framework: reservation %s of %s released (%s)", t.Reservation.ResourceID, t.Name, s.GetState())
			t.Reservation = nil
		} else if retry {
			glog.Warningf("framework: release of reservation %s of %s: %s %s; retrying when it is offered", t.Reservation.ResourceID, t.Name, s.GetState(), s.GetMessage())
			t.Reservation.ReleaseOp = ""
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record feedback %s of operation %s: %w", s.GetState(), id, err)
	}
	r.enqueue(owner.Instance)
	return nil
}
