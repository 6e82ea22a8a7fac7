// Package reconcile holds the rules the scheduler's reconcile steps
// (creator, destroyer, maintainer) share: what one step returns, how a
// workload callback is invoked, and which of an instance's tasks are wanted,
// lost or safe to forget. Keeping them in one place keeps the three steps
// agreeing on them.
package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
)

// Result is what a reconcile step asks of the controller besides its error:
// RequeueAfter > 0 brings the instance back after that long even if nothing
// happens meanwhile (e.g. "the task's relaunch backoff ends in 4 s").
// A returned error is retried with the queue's backoff instead.
type Result struct {
	RequeueAfter time.Duration
}

// Merge returns the result that comes back soonest.
func (r Result) Merge(o Result) Result {
	switch {
	case r.RequeueAfter <= 0:
		return o
	case o.RequeueAfter <= 0:
		return r
	}
	return Result{RequeueAfter: min(r.RequeueAfter, o.RequeueAfter)}
}

// After returns a Result that requeues after d (none if d <= 0).
func After(d time.Duration) Result {
	if d <= 0 {
		return Result{}
	}
	return Result{RequeueAfter: d}
}

// CallbackError is a workload callback that failed or panicked. The step
// that called it returns it, so the controller retries the instance with
// backoff.
type CallbackError struct {
	Callback string
	Subject  string // instance or task name
	Err      error
	Panicked bool
}

func (e *CallbackError) Error() string {
	if e.Panicked {
		return fmt.Sprintf("%s(%s) panicked: %v", e.Callback, e.Subject, e.Err)
	}
	return fmt.Sprintf("%s(%s): %v", e.Callback, e.Subject, e.Err)
}

func (e *CallbackError) Unwrap() error { return e.Err }

// Call runs one workload callback with a deadline of timeout. An error or a
// panic is logged and returned as a *CallbackError; it never propagates a
// panic, because a workload's bug must not take the scheduler down.
func Call(ctx context.Context, timeout time.Duration, callback, subject string, fn func(context.Context) error) (err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			glog.Errorf("callback %s(%s) panicked (will retry with backoff): %v\n%s", callback, subject, r, debug.Stack())
			err = &CallbackError{Callback: callback, Subject: subject, Err: fmt.Errorf("%v", r), Panicked: true}
		}
	}()
	glog.V(1).Infof("callback %s(%s)", callback, subject)
	if err := fn(ctx); err != nil {
		glog.Warningf("callback %s(%s) failed (will retry with backoff): %v", callback, subject, err)
		return &CallbackError{Callback: callback, Subject: subject, Err: err}
	}
	return nil
}

// Lost reports whether the task's current attempt has ended or can no
// longer be counted on: a terminal state, or UNREACHABLE/UNKNOWN (the agent
// is gone; should the attempt come back, it is killed as an unknown task).
func Lost(t *stateful.Task) bool {
	return t.State.IsTerminal() || t.State == stateful.TaskUnreachable || t.State == stateful.TaskUnknown
}

// Forgettable reports whether the task's document can be deleted: nothing
// of it runs that a KILL could still stop. A QUEUED task was never launched
// (or its last attempt ended); an UNREACHABLE or UNKNOWN one cannot be
// killed now and is killed as an unknown task if it ever reports again.
func Forgettable(t *stateful.Task) bool {
	return t.State.IsQueued() || Lost(t)
}

// Surplus returns the ordinals a scale-down removes from inst (which must
// carry its Tasks): when the instance has more tasks than it should, the
// highest-ordinal slaves go first, then (for types without slaves) the
// highest-ordinal tasks other than the master.
func Surplus(inst *stateful.Instance) map[int]bool {
	extra := len(inst.Tasks) - inst.TaskCount()
	if extra <= 0 {
		return nil
	}
	tasks := slices.Clone(inst.Tasks)
	rank := func(t *stateful.Task) int {
		switch {
		case t.Role == stateful.RoleSlave:
			return 0
		case inst.Type != stateful.TypeCluster && t.Ordinal == inst.MasterOrdinal:
			return 2
		}
		return 1
	}
	slices.SortFunc(tasks, func(a, b *stateful.Task) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		return cmp.Compare(b.Ordinal, a.Ordinal)
	})
	out := make(map[int]bool, extra)
	for _, t := range tasks[:extra] {
		out[t.Ordinal] = true
	}
	return out
}

// IsMasterRole reports whether the task takes the master callbacks (a master
// or a peer).
func IsMasterRole(t *stateful.Task) bool { return t.Role != stateful.RoleSlave }

// ExecutorID is the ID of the executor that runs the Mesos task taskID. Every
// attempt of every task gets an executor of its own, so one workload's crash
// or kill never takes another down, and the scheduler can address a task's
// executor (for Exec) knowing only the task.
func ExecutorID(taskID string) string { return taskID }

// MasterConfirmed reports whether a slave of inst may be configured
// against (launched or pointed at) the instance's master now: inst is a
// master-slave instance whose master task is RUNNING and whose current
// attempt confirmed reports running in this scheduler's term. A stored
// RUNNING state alone is not enough: after a crash or a lost leadership it
// may describe an attempt that has since died, whose host:port another
// task may hold by now. Instances of other types have no such dependency.
// A nil confirmed checks nothing (a part used without the maintainer).
func MasterConfirmed(inst *stateful.Instance, confirmed func(taskID string) bool) bool {
	if inst.Type != stateful.TypeMasterSlave || confirmed == nil {
		return true
	}
	var master *stateful.Task
	for _, t := range inst.Tasks {
		if t.Role == stateful.RoleMaster && (master == nil || t.Ordinal == inst.MasterOrdinal) {
			master = t
		}
	}
	if master == nil || !master.State.IsRunning() {
		return false
	}
	return confirmed(master.TaskID)
}
