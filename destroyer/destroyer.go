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
	"github.com/mesos-stateful/stateful/creator"
	"github.com/mesos-stateful/stateful/internal/reconcile"
	"github.com/mesos-stateful/stateful/offermgr"
)

// Store is the part of statemgr the destroyer uses.
type Store interface {
	UpdateInstance(ctx context.Context, name string, mutate func(*stateful.Instance) error) (*stateful.Instance, error)
	InstanceWithTasks(name string) (*stateful.Instance, error)
	DeleteInstance(ctx context.Context, name string, precondition func(*stateful.Instance) error) error
}

// TaskQueue is the queue of tasks waiting for offers, keyed by task name.
// A task whose reservation is to be released waits there for the offer
// that carries it.
type TaskQueue interface {
	Put(key string, d offermgr.Demand) bool
	Remove(key string) bool
}

// Operations asks Mesos again about an operation whose feedback has not
// been recorded (mesoslib.Client.ReconcileOperations).
type Operations interface {
	ReconcileOperations(ctx context.Context, ops map[string]string) error
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
	ops       Operations
	now       func() time.Time
}

// SetOperations lets the destroyer reconcile release operations whose
// feedback a crash may have lost; without it, it waits for the feedback.
func (d *Destroyer) SetOperations(ops Operations) { d.ops = ops }

// New returns a Destroyer. killRetry is how soon an instance with tasks
// still alive is reconciled (and its tasks killed) again.
func New(store Store, queue TaskQueue, killer Killer, enqueue func(string), killRetry time.Duration) (*Destroyer, error) {
	if store == nil || queue == nil || killer == nil || enqueue == nil {
		return nil, errors.New("destroyer: store, task queue, killer and enqueue are required")
	}
	if killRetry <= 0 {
		return nil, fmt.Errorf("destroyer: kill retry %v must be positive", killRetry)
	}
	return &Destroyer{store: store, queue: queue, killer: killer, enqueue: enqueue, killRetry: killRetry, now: time.Now}, nil
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

// releaseReconcileAfter, in kill retries, is how long the feedback of a
// release operation is waited for before Mesos is asked about it.
const releaseReconcileAfter = 5

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
	if held, err := d.release(ctx, inst); err != nil || held > 0 {
		return reconcile.After(d.killRetry), err
	}
	err = d.store.DeleteInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status != stateful.StatusDeleting {
			return fmt.Errorf("status is %s", w.Status)
		}
		for _, t := range w.Tasks {
			if !reconcile.Forgettable(t) {
				return fmt.Errorf("%w: %s is %s", errAlive, t.Name, t.State)
			}
			if t.Reservation != nil {
				return fmt.Errorf("%w: %s still holds reservation %s", errAlive, t.Name, t.Reservation.ResourceID)
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

// release frees the reservations of a DELETING instance whose tasks have
// all ended: each is marked releasing, then waits in the task queue for
// the offer that carries it (the launcher sends DESTROY and UNRESERVE),
// and is forgotten once Mesos confirms the UNRESERVE
// (ReservationReleased) or its agent is gone for good. It returns how many
// reservations are still held.
func (d *Destroyer) release(ctx context.Context, inst *stateful.Instance) (int, error) {
	held := 0
	mark := false
	for _, t := range inst.Tasks {
		if t.Reservation == nil {
			continue
		}
		if GoneForGood(t) || !t.Reservation.Confirmed {
			mark = true
			continue
		}
		held++
		if !t.Reservation.Releasing {
			mark = true
		}
	}
	if mark {
		var err error
		inst, err = d.store.UpdateInstance(ctx, inst.Name, func(w *stateful.Instance) error {
			for _, t := range w.Tasks {
				switch {
				case t.Reservation == nil:
				case GoneForGood(t):
					glog.Infof("destroyer: forgetting reservation %s of %s: agent %s is gone for good", t.Reservation.ResourceID, t.Name, t.Reservation.AgentID)
					t.Reservation = nil
				case !t.Reservation.Confirmed:
					// No attempt ran on it, so it holds no data, and it may
					// not exist at all (its ACCEPT failed or never left):
					// waiting for its offer could take forever. Should it
					// exist, it is released as a reservation nobody owns.
					glog.Infof("destroyer: forgetting unconfirmed reservation %s of %s", t.Reservation.ResourceID, t.Name)
					t.Reservation = nil
				case !t.Reservation.Releasing:
					t.Reservation.Releasing = true
				}
			}
			return nil
		})
		if err != nil {
			return held, fmt.Errorf("mark reservations of %s for release: %w", inst.Name, err)
		}
	}
	pending := map[string]string{}
	for _, t := range inst.Tasks {
		r := t.Reservation
		if r == nil {
			continue
		}
		if r.ReleaseOp != "" {
			// Its feedback normally comes within moments; one not come
			// after a while was lost (a crash between the ACCEPT and its
			// record), and Mesos is asked again. Asking sooner would race
			// the feedback of an operation still under way.
			if at, ok := creator.ReleaseOpSent(r.ReleaseOp); !ok || d.now().Sub(at) > d.killRetry*releaseReconcileAfter {
				pending[r.ReleaseOp] = r.AgentID
			}
			continue
		}
		d.queue.Put(t.Name, ReleaseDemand(t, d.now()))
	}
	if len(pending) > 0 && d.ops != nil {
		// Normally the feedback is here before this pass; when it is not
		// (a crash between the ACCEPT and its record), Mesos answers again.
		if err := d.ops.ReconcileOperations(ctx, pending); err != nil {
			glog.V(1).Infof("destroyer: reconcile release operations of %s: %v", inst.Name, err)
		}
	}
	if held > 0 {
		glog.V(1).Infof("destroyer: instance %s waits for the release of %d reservations", inst.Name, held)
	}
	return held, nil
}

// ReleaseDemand is what the task's reservation release waits for in the
// task queue: the offer carrying it.
func ReleaseDemand(t *stateful.Task, now time.Time) offermgr.Demand {
	return offermgr.Demand{
		Key:           offermgr.Key{Instance: t.Instance, Ordinal: t.Ordinal},
		Role:          string(t.Role),
		ReservationID: t.Reservation.ResourceID,
		Release:       true,
		// Released whole: an UNRESERVE of part of it would leave the
		// rest to the orphan collector after the instance is gone.
		ExecutorReserved: t.Reservation.ExecutorPart,
		PrevAgent:        t.Reservation.AgentID,
		QueuedSince:      now,
	}
}

// GoneForGood reports whether the agent holding the task's reservation
// will never come back, so the reservation went with it: Mesos said the
// task is gone (the agent was removed or marked gone by an operator).
func GoneForGood(t *stateful.Task) bool {
	if t.Reservation == nil || t.AgentID != t.Reservation.AgentID {
		return false
	}
	return t.State == stateful.TaskGone || t.State == stateful.TaskGoneByOperator
}
