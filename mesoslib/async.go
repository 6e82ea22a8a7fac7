package mesoslib

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// AsyncUpdater may be implemented by a Handler that persists status updates
// in the background, typically to write many of them in one transaction.
// mesoslib then calls UpdateAsync instead of Update and goes back to the
// event stream at once, so the next updates reach the handler while the
// earlier ones are still being written.
//
// UpdateAsync must not block for long (briefly, to push back when the
// handler is behind, is fine: the heartbeat watchdog is paused meanwhile)
// and must return once ctx, which ends with the subscription, has ended.
// It must arrange for done to be called exactly once, from any goroutine,
// with the outcome Update would have returned: nil once the status is
// persisted (the update is then acknowledged), ErrUnknownTask (possibly
// wrapped) for a task with no record (acknowledged, and killed if alive),
// any other error if it was not persisted (not acknowledged: Mesos sends
// it again). done does not block; it may be called before UpdateAsync
// returns. Updates reach UpdateAsync in the order Mesos sent them; the
// handler must persist updates of one task in that order.
type AsyncUpdater interface {
	UpdateAsync(ctx context.Context, status mesos.TaskStatus, done func(error))
}

// An outcome is what a handler reported about one update, waiting for its
// acknowledgement or kill to be sent.
type outcome struct {
	status mesos.TaskStatus
	err    error
}

// settleQueue holds the outcomes of asynchronous updates until Run's settle
// goroutine sends what they call for. It does not block its producers (the
// handler's done calls); it holds at most one outcome per update the
// handler has in hand.
type settleQueue struct {
	mu     sync.Mutex
	items  []outcome
	closed bool          // Run has stopped: outcomes are dropped
	wake   chan struct{} // capacity 1: there are items
}

func newSettleQueue() *settleQueue { return &settleQueue{wake: make(chan struct{}, 1)} }

// push queues o; false once the queue is closed.
func (q *settleQueue) push(o outcome) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.items = append(q.items, o)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued outcome, oldest first.
func (q *settleQueue) take() []outcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// close drops what is queued and refuses what comes; it returns how many
// outcomes were dropped.
func (q *settleQueue) close() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	q.items, q.closed = nil, true
	return n
}

// runSettle sends the acknowledgements and kills that asynchronous updates
// call for, in the order the handler reported them, until ctx (Run's)
// ends. What is left then is dropped: not acknowledged, so Mesos sends it
// again to the next scheduler.
//
// The calls go out on whatever subscription is current when they are
// sent, which need not be the one that delivered the update: a handler may
// finish persisting an update after a re-subscription. That is correct
// Mesos usage. An ACKNOWLEDGE names agent, task and uuid and says only
// "this update is persisted", which stays true; each call is built when it
// is sent, so it carries the current framework ID and the current
// subscription's Mesos-Stream-Id (added by httpsched), never the ended
// subscription's. While no subscription is active, call fails with
// ErrNotConnected and nothing is sent. Mesos resends unacknowledged
// updates after every re-subscription, so the same update may have been
// delivered (and acknowledged) again meanwhile: the master forwards an
// ACKNOWLEDGE to the agent, whose status update manager ignores one whose
// uuid is not the head of the task's pending updates (a duplicate or an
// already acknowledged one), and removes a task on a terminal ACKNOWLEDGE
// only if the uuid is that of its latest update. A framework ID never
// changes under a running Client (a change, a removal or a failover to
// another scheduler ends Run), so an ACKNOWLEDGE never reaches another
// framework's tasks.
func (c *Client) runSettle(ctx context.Context) {
	defer func() {
		if n := c.settle.close(); n > 0 {
			glog.V(1).Infof("mesoslib: stopping with %d updates recorded but not yet acknowledged (Mesos will resend them)", n)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.settle.wake:
		}
		items := c.settle.take()
		for i, o := range items {
			if ctx.Err() != nil {
				glog.V(1).Infof("mesoslib: stopping with %d updates recorded but not yet acknowledged (Mesos will resend them)", len(items)-i)
				return
			}
			c.conclude(ctx, o.status, o.err)
		}
	}
}

// doneFunc returns the done callback for an asynchronous update of s.
func (c *Client) doneFunc(s mesos.TaskStatus) func(error) {
	var called atomic.Bool
	return func(err error) {
		if !called.CompareAndSwap(false, true) {
			glog.Errorf("mesoslib: the handler reported update %s of task %s twice; ignoring the second outcome (%v)", s.GetState(), s.TaskID.Value, err)
			return
		}
		if err != nil && !errors.Is(err, ErrUnknownTask) {
			glog.V(1).Infof("mesoslib: update %s of task %s not recorded, not acknowledging (Mesos will resend): %v", s.GetState(), s.TaskID.Value, err)
			return
		}
		if err == nil && len(s.UUID) == 0 {
			return // nothing to acknowledge
		}
		if !c.settle.push(outcome{status: s, err: err}) {
			glog.V(1).Infof("mesoslib: update %s of task %s reported after Run stopped; not acknowledged (Mesos will resend)", s.GetState(), s.TaskID.Value)
		}
	}
}
