package maintainer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/statemgr"
)

// errStale marks an update about an attempt that is not the task's
// current one (or that was already given up): there is nothing to record.
var errStale = errors.New("not the current attempt")

// Update records one task status (mesoslib.Handler.Update). It returns nil
// once the status is persisted, so mesoslib acknowledges it only then, and
// enqueues the task's instance. An update about a task the scheduler has no
// record of, or about an attempt that is no longer current, returns an
// error wrapping mesoslib.ErrUnknownTask: mesoslib then acknowledges it and
// kills the attempt if it still runs. Duplicates are harmless.
func (m *Maintainer) Update(ctx context.Context, status mesos.TaskStatus) error {
	return m.RecordBatch(ctx, []mesos.TaskStatus{status})[0]
}

// RecordBatch records several statuses in as few etcd transactions as
// possible (statemgr.ApplyTaskUpdates: one per 100 tasks), for the
// statuses that arrive together. errs[i] is the outcome of statuses[i], as
// Update would report it.
func (m *Maintainer) RecordBatch(ctx context.Context, statuses []mesos.TaskStatus) (errs []error) {
	errs = make([]error, len(statuses))
	updates := make([]statemgr.TaskUpdate, 0, len(statuses))
	index := make([]int, 0, len(statuses)) // updates[j] is statuses[index[j]]
	for i, s := range statuses {
		u, err := m.taskUpdate(s)
		if err != nil {
			errs[i] = err
			continue
		}
		updates = append(updates, u)
		index = append(index, i)
	}
	if len(updates) == 0 {
		return errs
	}
	results, err := m.store.ApplyTaskUpdates(ctx, updates)
	enqueued := map[string]bool{}
	for j, r := range results {
		i := index[j]
		s := statuses[i]
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("record %s of %s: %w", s.GetState(), s.TaskID.Value, err)
		case errors.Is(r.Err, errStale), errors.Is(r.Err, stateful.ErrNotFound):
			errs[i] = fmt.Errorf("%w: %s (%s): %w", mesoslib.ErrUnknownTask, s.TaskID.Value, s.GetState(), r.Err)
		case r.Err != nil:
			errs[i] = fmt.Errorf("record %s of %s: %w", s.GetState(), s.TaskID.Value, r.Err)
		default:
			glog.V(2).Infof("maintainer: recorded %s %s (healthy %t): %s", s.TaskID.Value, r.Task.State, r.Task.Healthy, r.Task.Message)
			m.confirmed.set(r.Task.TaskID, r.Task.State.IsRunning())
			if name := r.Task.Instance; !enqueued[name] {
				enqueued[name] = true
				m.enqueue(name)
			}
		}
	}
	return errs
}

// taskUpdate turns a status into the change of its task document.
func (m *Maintainer) taskUpdate(s mesos.TaskStatus) (statemgr.TaskUpdate, error) {
	id := s.TaskID.Value
	tid, err := stateful.ParseTaskID(id)
	if err != nil {
		return statemgr.TaskUpdate{}, fmt.Errorf("%w: %w", mesoslib.ErrUnknownTask, err)
	}
	state, err := stateful.ParseTaskState(s.GetState().String())
	if err != nil || state == stateful.TaskQueued {
		return statemgr.TaskUpdate{}, fmt.Errorf("task %s: state %s: %w", id, s.GetState(), err)
	}
	hasHealthCheck := false
	if inst, err := m.store.Instance(tid.Instance); err == nil {
		hasHealthCheck = inst.Spec.Health != nil
	}
	return statemgr.TaskUpdate{Instance: tid.Instance, Ordinal: tid.Ordinal, Mutate: func(t *stateful.Task) error {
		if t.TaskID != id || t.State.IsQueued() {
			return errStale
		}
		// A reconciliation answer that confirms the recorded state keeps
		// the message of the update that brought it (and writes nothing).
		if s.GetReason() != mesos.REASON_RECONCILIATION || state != t.State {
			t.State = state
			t.Message = s.GetMessage()
			t.Reason = ""
			if s.Reason != nil {
				t.Reason = s.GetReason().String()
			}
		}
		switch {
		case s.Healthy != nil:
			t.Healthy = *s.Healthy
			t.HealthMessage = ""
			if !t.Healthy {
				t.HealthMessage = s.GetMessage()
			}
		case state == stateful.TaskUnknown || state == stateful.TaskUnreachable:
			// The master says it cannot see the task, not how the task
			// is: keep the executor's last report. When the agent comes
			// back, Mesos' TASK_RUNNING ("Unknown agent reregistered")
			// carries no health and the executor reports health only when
			// it changes, so clearing it here left a healthy task
			// unhealthy, and its instance DEGRADED, for good.
		case state != stateful.TaskRunning:
			t.Healthy = false
		case !hasHealthCheck:
			// Without a health check, running is healthy.
			t.Healthy = true
		}
		if r := t.Reservation; r != nil && !r.Confirmed && (state == stateful.TaskStarting || state == stateful.TaskRunning) {
			// The task started on it, so Mesos made it: from now on the
			// ordinal waits for it, however long.
			r.Confirmed = true
		}
		return nil
	}}, nil
}

// confirmedSet is a set of task IDs, safe for concurrent use.
type confirmedSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func newConfirmedSet() *confirmedSet { return &confirmedSet{ids: map[string]bool{}} }

func (c *confirmedSet) set(taskID string, in bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in {
		c.ids[taskID] = true
	} else {
		delete(c.ids, taskID)
	}
}

func (c *confirmedSet) has(taskID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[taskID]
}

// forget drops the attempts of a deleted instance.
func (c *confirmedSet) forget(instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.ids {
		if tid, err := stateful.ParseTaskID(id); err == nil && tid.Instance == instance {
			delete(c.ids, id)
		}
	}
}
