// Package destroyer takes instances down: a destroy request marks the
// instance DELETING in statemgr, and the reconcile step kills every task
// that still runs and, once none does, removes the instance and its tasks
// from statemgr. Both steps are idempotent, so a scheduler that crashes in
// the middle finishes the job after its restart.
package destroyer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/internal/reconcile"
)

// Store is the part of statemgr the destroyer uses.
type Store interface {
	UpdateInstance(ctx context.Context, name string, mutate func(*stateful.Instance) error) (*stateful.Instance, error)
	InstanceWithTasks(name string) (*stateful.Instance, error)
	DeleteInstance(ctx context.Context, name string, precondition func(*stateful.Instance) error) error
}

// TaskQueue is the queue of tasks waiting for offers, keyed by task name.
type TaskQueue interface {
	Remove(key string) bool
}

// Killer kills one Mesos task; see creator.Killer.
type Killer interface {
	Kill(ctx context.Context, taskID, agentID string) error
}

// DefaultKillRetry is how soon an instance whose tasks are still dying is
// looked at again.
const DefaultKillRetry = 5 * time.Second

// Destroyer implements the destroy request and the reconcile step of
// DELETING instances.
type Destroyer struct {
	store     Store
	queue     TaskQueue
	killer    Killer
	enqueue   func(name string)
	killRetry time.Duration
}

// New returns a Destroyer. killRetry is how soon an instance with tasks
// still alive is reconciled (and its tasks killed) again.
func New(store Store, queue TaskQueue, killer Killer, enqueue func(string), killRetry time.Duration) (*Destroyer, error) {
	if store == nil || queue == nil || killer == nil || enqueue == nil {
		return nil, errors.New("destroyer: store, task queue, killer and enqueue are required")
	}
	if killRetry <= 0 {
		return nil, fmt.Errorf("destroyer: kill retry %v must be positive", killRetry)
	}
	return &Destroyer{store: store, queue: queue, killer: killer, enqueue: enqueue, killRetry: killRetry}, nil
}

// Destroy marks the instance DELETING (durably) and enqueues it. Destroying
// an instance that is already DELETING changes nothing. It fails with
// stateful.ErrNotFound.
func (d *Destroyer) Destroy(ctx context.Context, name string) (*stateful.Instance, error) {
	inst, err := d.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status != stateful.StatusDeleting {
			w.Status = stateful.StatusDeleting
			w.Message = "destroy requested: killing every task"
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	glog.Infof("destroyer: instance %s is DELETING", name)
	d.enqueue(name)
	return inst, nil
}

// errAlive refuses the deletion while a task may still run.
var errAlive = errors.New("a task is still alive")

// Reconcile takes a DELETING instance one step further: its tasks leave the
// task queue, every task that may still run is killed (again, every
// killRetry, until Mesos reports it ended), and once none is left the
// instance and its tasks are deleted, after which the instance is 404.
// Instances that are not DELETING are left alone.
func (d *Destroyer) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	inst, err := d.store.InstanceWithTasks(name)
	if errors.Is(err, stateful.ErrNotFound) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if inst.Status != stateful.StatusDeleting {
		return reconcile.Result{}, nil
	}
	alive := 0
	for _, t := range inst.Tasks {
		d.queue.Remove(t.Name)
		if reconcile.Forgettable(t) {
			continue
		}
		alive++
		glog.V(1).Infof("destroyer: killing %s (%s) of instance %s", t.TaskID, t.State, name)
		if err := d.killer.Kill(ctx, t.TaskID, t.AgentID); err != nil {
			glog.Warningf("destroyer: kill %s: %v", t.TaskID, err)
		}
	}
	if alive > 0 {
		return reconcile.After(d.killRetry), nil
	}
	err = d.store.DeleteInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status != stateful.StatusDeleting {
			return fmt.Errorf("status is %s", w.Status)
		}
		for _, t := range w.Tasks {
			if !reconcile.Forgettable(t) {
				return fmt.Errorf("%w: %s is %s", errAlive, t.Name, t.State)
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errAlive):
		// A launch got in between; kill it on the next pass.
		d.enqueue(name)
		return reconcile.Result{}, nil
	case errors.Is(err, stateful.ErrNotFound):
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, err
	}
	glog.Infof("destroyer: instance %s and its %d tasks removed", name, len(inst.Tasks))
	return reconcile.Result{}, nil
}
