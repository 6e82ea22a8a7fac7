package framework

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/internal/reconcile"
)

// step is one reconcile step of an instance (creator, destroyer,
// maintainer).
type step interface {
	Reconcile(ctx context.Context, name string) (reconcile.Result, error)
}

// forgetter drops in-memory state of a deleted instance.
type forgetter interface {
	Forget(name string)
}

// instanceLister is what the controller reads from statemgr.
type instanceLister interface {
	Instance(name string) (*stateful.Instance, error)
	Instances() []*stateful.Instance
}

// controller is the level-triggered loop: workers take instance names from
// the work queue and reconcile each one, comparing its desired state with
// its tasks' observed state. Requests, status updates and timers only add
// names to the queue, which deduplicates them and never hands one name to
// two workers at once. Every instance is enqueued at start and every
// resync interval, so nothing depends on an event having been seen.
type controller struct {
	queue   *buffer.WorkQueue
	store   instanceLister
	locks   *reconcile.Locks
	workers int
	resync  time.Duration

	creator    step
	maintainer step
	destroyer  step
	forget     []forgetter

	// hold, while true, keeps instances from being reconciled: the state
	// store does not answer, so the cache may be stale and no callback
	// may act on it. Held instances are looked at again a moment later.
	hold func() bool
}

// holdRetry is how soon an instance held back (see controller.hold) is
// looked at again.
const holdRetry = 500 * time.Millisecond

// enqueueAll adds every stored instance to the queue.
func (c *controller) enqueueAll() {
	for _, inst := range c.store.Instances() {
		c.queue.Add(inst.Name)
	}
}

// Start runs the workers until ctx ends. It is a Runnable.
func (c *controller) Start(ctx context.Context) error {
	c.enqueueAll()
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
	ticker := time.NewTicker(c.resync)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			c.queue.ShutDown()
			wg.Wait()
			glog.Infof("controller: stopped")
			return nil
		case <-ticker.C:
			c.enqueueAll()
		}
	}
}

// processNext reconciles one instance; false once the queue is shut down.
func (c *controller) processNext(ctx context.Context) bool {
	name, ok := c.queue.Get(ctx)
	if !ok {
		return false
	}
	defer c.queue.Done(name)
	if c.hold != nil && c.hold() {
		c.queue.AddAfter(name, holdRetry)
		return true
	}
	res, err := c.reconcileLocked(ctx, name)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		var cbErr *reconcile.CallbackError
		if !errors.As(err, &cbErr) {
			glog.Warningf("controller: reconciling %s (retrying with backoff): %v", name, err)
		}
		c.queue.AddRateLimited(name)
	default:
		c.queue.Forget(name)
		if res.RequeueAfter > 0 {
			c.queue.AddAfter(name, res.RequeueAfter)
		}
	}
	return true
}

// reconcileLocked holds the instance's lock for the pass, so the launcher
// never calls Config while a callback of the same instance runs.
func (c *controller) reconcileLocked(ctx context.Context, name string) (res reconcile.Result, err error) {
	unlock, err := c.locks.Lock(ctx, name)
	if err != nil {
		return reconcile.Result{}, err
	}
	defer unlock()
	defer func() {
		if r := recover(); r != nil {
			glog.Errorf("controller: reconciling %s panicked: %v\n%s", name, r, debug.Stack())
			err = fmt.Errorf("reconcile %s panicked: %v", name, r)
		}
	}()
	return c.reconcile(ctx, name)
}

// reconcile is one pass over an instance: a DELETING one belongs to the
// destroyer; otherwise the maintainer acts on what Mesos reported (lost
// and running tasks, failover, status) and then the creator on what the
// instance should have (start, scale, queue).
func (c *controller) reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	inst, err := c.store.Instance(name)
	if errors.Is(err, stateful.ErrNotFound) {
		for _, f := range c.forget {
			f.Forget(name)
		}
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if inst.Status == stateful.StatusDeleting {
		return c.destroyer.Reconcile(ctx, name)
	}
	res, err := c.maintainer.Reconcile(ctx, name)
	if err != nil {
		return res, err
	}
	created, err := c.creator.Reconcile(ctx, name)
	return res.Merge(created), err
}
