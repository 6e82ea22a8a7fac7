// Package maintainer keeps running instances as they should be. It records
// every task status update from Mesos in statemgr (only then is the update
// acknowledged) and enqueues the instance; its reconcile step then calls
// MasterRunning/SlaveRunning once per attempt that reaches RUNNING (and
// healthy), calls MasterLost/SlaveLost for an attempt that ended or became
// unreachable and queues the ordinal again (the default failover promotes
// a slave first), kills attempts that are to be relaunched, rolls a spec
// change out one task at a time, and keeps the instance's status true.
//
// It also implements stateful.Handle, the callbacks' way to act: Tasks,
// Exec (a framework message to the task's executor, answered by an
// exec_result message), Promote and Relaunch.
//
// Update records one status at a time. Batcher records the statuses of the
// live event stream many to an etcd transaction (each is acknowledged once
// its batch is written): one transaction costs etcd a disk sync, which
// caps one-at-a-time recording at a few thousand updates a second.
//
// The figures executors report in stats messages are kept in memory only,
// and merged into the tasks Handle.Tasks and the REST API return: they
// change every few seconds per task, and writing them to etcd would cost a
// disk sync each. After a scheduler restart they reappear with the next
// report (one stats interval).
package maintainer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/internal/reconcile"
	"github.com/mesos-stateful/stateful/statemgr"
)

// Store is the part of statemgr the maintainer uses.
type Store interface {
	Instance(name string) (*stateful.Instance, error)
	InstanceWithTasks(name string) (*stateful.Instance, error)
	Task(name string, ordinal int) (*stateful.Task, error)
	Tasks(name string) []*stateful.Task
	UpdateInstance(ctx context.Context, name string, mutate func(*stateful.Instance) error) (*stateful.Instance, error)
	UpdateTask(ctx context.Context, name string, ordinal int, mutate func(*stateful.Task) error) (*stateful.Task, error)
	ApplyTaskUpdates(ctx context.Context, updates []statemgr.TaskUpdate) ([]statemgr.TaskResult, error)
}

// Killer kills one Mesos task; see creator.Killer.
type Killer interface {
	Kill(ctx context.Context, taskID, agentID string) error
}

// Messenger sends a framework message to an executor (mesoslib.Client's
// Message, with string IDs).
type Messenger interface {
	Message(ctx context.Context, agentID, executorID string, data []byte) error
}

// Defaults of Config.
const (
	DefaultKillRetry       = 10 * time.Second
	DefaultUnknownGrace    = 30 * time.Second
	DefaultCallbackTimeout = 30 * time.Second
)

// Config tunes the maintainer.
type Config struct {
	// KillRetry is how soon a task being killed for a relaunch is looked
	// at (and killed) again.
	KillRetry time.Duration
	// CallbackTimeout bounds each workload callback.
	CallbackTimeout time.Duration
	// UnknownGrace is how long a task Mesos calls TASK_UNKNOWN is left
	// alone when its ordinal holds a confirmed reservation. A restarted
	// master without a persistent registry (localmesos, Mesos with
	// --registry=in_memory) answers TASK_UNKNOWN for every task until
	// the agents re-register, and then reports them RUNNING: relaunching
	// would kill them, and the relaunch could only use the reservation on
	// that very agent anyway. 0 treats TASK_UNKNOWN as lost at once.
	UnknownGrace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewConfig returns the defaults.
func NewConfig() Config {
	return Config{KillRetry: DefaultKillRetry, CallbackTimeout: DefaultCallbackTimeout, UnknownGrace: DefaultUnknownGrace}
}

// Maintainer records status updates, runs the running/lost callbacks and
// failover, and implements stateful.Handle. Its methods are safe for
// concurrent use; Reconcile must not run concurrently for one instance.
type Maintainer struct {
	cfg       Config
	store     Store
	w         stateful.Workload
	killer    Killer
	messenger Messenger
	enqueue   func(name string)

	stats *statsCache
	execs *pendingExecs
	// running are the attempts this Maintainer recorded as TASK_RUNNING
	// (a status update or a reconciliation answer) and nothing else since:
	// what the scheduler has confirmed running in this term, as opposed
	// to what the store says, which may date from before a crash.
	confirmed *confirmedSet
}

// New returns a Maintainer. enqueue asks the controller to reconcile an
// instance.
func New(cfg Config, store Store, w stateful.Workload, killer Killer, messenger Messenger, enqueue func(string)) (*Maintainer, error) {
	if cfg.KillRetry <= 0 || cfg.CallbackTimeout <= 0 {
		return nil, fmt.Errorf("maintainer: kill retry %v and callback timeout %v must be positive", cfg.KillRetry, cfg.CallbackTimeout)
	}
	if store == nil || w == nil || killer == nil || messenger == nil || enqueue == nil {
		return nil, errors.New("maintainer: store, workload, killer, messenger and enqueue are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Maintainer{
		cfg: cfg, store: store, w: w, killer: killer, messenger: messenger, enqueue: enqueue,
		stats: newStatsCache(), execs: newPendingExecs(), confirmed: newConfirmedSet(),
	}, nil
}

// Handle returns the stateful.Handle callbacks get.
func (m *Maintainer) Handle() stateful.Handle { return handle{m} }

// Forget drops what the maintainer remembers of a deleted instance.
func (m *Maintainer) Forget(name string) {
	m.stats.forget(name)
	m.confirmed.forget(name)
}

// ConfirmedRunning reports whether this Maintainer recorded taskID as
// TASK_RUNNING, and nothing else since: Mesos confirmed the attempt runs
// during this scheduler's term.
func (m *Maintainer) ConfirmedRunning(taskID string) bool { return m.confirmed.has(taskID) }

// errSkip stops a mutate function without it being an error: the state
// moved on and the next pass looks again.
var errSkip = errors.New("state changed; skipped")

// Reconcile looks at every task of a (not DELETING) instance once:
//
//   - an attempt that ended or became unreachable is lost: unless it was
//     being relaunched on purpose, MasterLost or SlaveLost decides the
//     failover (masters first, so a promotion happens before the lost
//     master's ordinal is queued again as a slave); then the ordinal is
//     queued for a new attempt, sticky to its agent;
//   - an attempt marked for relaunch that still runs is killed;
//   - an attempt that is RUNNING and healthy gets MasterRunning or
//     SlaveRunning once (recorded as NotifiedAttempt);
//
// then it rolls a spec change one task further and updates the instance's
// status. A callback error stops the pass and is returned, so the
// controller retries the instance with backoff.
func (m *Maintainer) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	inst, err := m.store.InstanceWithTasks(name)
	if errors.Is(err, stateful.ErrNotFound) {
		m.Forget(name)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if inst.Status == stateful.StatusDeleting {
		return reconcile.Result{}, nil
	}
	surplus := reconcile.Surplus(inst)
	order := slices.Clone(inst.Tasks)
	slices.SortStableFunc(order, func(a, b *stateful.Task) int {
		return cmp.Compare(roleOrder(a), roleOrder(b))
	})
	var res reconcile.Result
	for _, snap := range order {
		if surplus[snap.Ordinal] {
			continue // the creator kills and removes it
		}
		// Re-read: a failover earlier in this pass may have changed roles.
		inst, err := m.store.InstanceWithTasks(name)
		if err != nil {
			return res, ignoreNotFound(err)
		}
		if inst.Status == stateful.StatusDeleting {
			return res, nil
		}
		t, err := m.store.Task(name, snap.Ordinal)
		if err != nil {
			continue
		}
		r, err := m.step(ctx, inst, t)
		res = res.Merge(r)
		if err != nil {
			return res, err
		}
	}
	r, err := m.roll(ctx, name)
	res = res.Merge(r)
	if err != nil {
		return res, err
	}
	return res, m.updateStatus(ctx, name)
}

func roleOrder(t *stateful.Task) int {
	if reconcile.IsMasterRole(t) {
		return 0
	}
	return 1
}

func ignoreNotFound(err error) error {
	if errors.Is(err, stateful.ErrNotFound) {
		return nil
	}
	return err
}

// waitUnknown is how much longer a TASK_UNKNOWN task is left alone.
func (m *Maintainer) waitUnknown(t *stateful.Task) time.Duration {
	return t.UpdatedAt.Add(m.cfg.UnknownGrace).Sub(m.cfg.Now())
}

// step takes the one action task t needs, if any.
func (m *Maintainer) step(ctx context.Context, inst *stateful.Instance, t *stateful.Task) (reconcile.Result, error) {
	switch {
	case t.State == stateful.TaskUnknown && t.Reservation != nil && t.Reservation.Confirmed && m.waitUnknown(t) > 0:
		glog.V(1).Infof("maintainer: %s is TASK_UNKNOWN; waiting %v for its agent to re-register", t.TaskID, m.waitUnknown(t).Round(time.Millisecond))
		return reconcile.After(m.waitUnknown(t)), nil
	case reconcile.Lost(t):
		return reconcile.Result{}, m.lost(ctx, inst, t)
	case t.Relaunch && t.State.IsLaunched():
		glog.V(1).Infof("maintainer: killing %s (%s) to relaunch it", t.TaskID, t.State)
		if err := m.killer.Kill(ctx, t.TaskID, t.AgentID); err != nil {
			glog.Warningf("maintainer: kill %s for its relaunch: %v", t.TaskID, err)
		}
		return reconcile.After(m.cfg.KillRetry), nil
	case t.State.IsRunning() && t.Healthy && t.NotifiedAttempt != t.Attempt:
		if !reconcile.IsMasterRole(t) && !reconcile.MasterConfirmed(inst, m.ConfirmedRunning) {
			// SlaveRunning points the slave at the master: wait until the
			// master is known to run (its update enqueues the instance).
			glog.V(1).Infof("maintainer: %s waits for its master to be confirmed running before SlaveRunning", t.TaskID)
			return reconcile.After(m.cfg.KillRetry), nil
		}
		return reconcile.Result{}, m.running(ctx, inst, t)
	}
	return reconcile.Result{}, nil
}

// lost handles an attempt that is gone: the Lost callback (unless the
// attempt was relaunched on purpose), then the ordinal goes back to QUEUED.
func (m *Maintainer) lost(ctx context.Context, inst *stateful.Instance, t *stateful.Task) error {
	if !t.Relaunch {
		callback, fn := "SlaveLost", m.w.SlaveLost
		if reconcile.IsMasterRole(t) {
			callback, fn = "MasterLost", m.w.MasterLost
		}
		glog.Infof("maintainer: %s %s is lost (%s: %s)", t.Role, t.TaskID, t.State, t.Message)
		err := reconcile.Call(ctx, m.cfg.CallbackTimeout, callback, t.Name, func(ctx context.Context) error {
			return fn(ctx, m.Handle(), inst.Clone(), m.withStats(t))
		})
		if err != nil {
			return err
		}
	}
	taskID := t.TaskID
	now := m.cfg.Now()
	queued, err := m.store.UpdateTask(ctx, inst.Name, t.Ordinal, func(x *stateful.Task) error {
		if x.TaskID != taskID || !reconcile.Lost(x) {
			return errSkip
		}
		msg := fmt.Sprintf("attempt %d ended: %s", x.Attempt, x.State)
		if x.Message != "" {
			msg += ": " + x.Message
		}
		x.Requeue(now)
		x.Message = msg
		return nil
	})
	if errors.Is(err, errSkip) || errors.Is(err, stateful.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.State == stateful.TaskUnreachable || t.State == stateful.TaskUnknown {
		// Should it come back, Mesos reports it under an attempt that is
		// no longer current and it is killed then; try now as well.
		if err := m.killer.Kill(ctx, taskID, t.AgentID); err != nil {
			glog.V(1).Infof("maintainer: kill unreachable %s: %v", taskID, err)
		}
	}
	m.stats.drop(inst.Name, t.Ordinal)
	glog.Infof("maintainer: %s queued again as %s (attempt %d next, sticky to agent %s)", queued.Name, queued.Role, queued.Attempt+1, queued.StickyAgentID)
	return nil
}

// running calls MasterRunning/SlaveRunning for the task's attempt and
// records that it did.
func (m *Maintainer) running(ctx context.Context, inst *stateful.Instance, t *stateful.Task) error {
	callback, fn := "SlaveRunning", m.w.SlaveRunning
	if reconcile.IsMasterRole(t) {
		callback, fn = "MasterRunning", m.w.MasterRunning
	}
	err := reconcile.Call(ctx, m.cfg.CallbackTimeout, callback, t.Name, func(ctx context.Context) error {
		return fn(ctx, m.Handle(), inst.Clone(), m.withStats(t))
	})
	if err != nil {
		return err
	}
	taskID := t.TaskID
	_, err = m.store.UpdateTask(ctx, inst.Name, t.Ordinal, func(x *stateful.Task) error {
		if x.TaskID != taskID {
			return errSkip
		}
		x.NotifiedAttempt = x.Attempt
		return nil
	})
	if errors.Is(err, errSkip) || errors.Is(err, stateful.ErrNotFound) {
		return nil
	}
	return err
}

// roll relaunches one task launched under an older generation of the spec,
// once every task of the instance runs and is healthy: slaves first (the
// highest ordinal first), the master last. The next task follows when the
// relaunched one is healthy again.
func (m *Maintainer) roll(ctx context.Context, name string) (reconcile.Result, error) {
	inst, err := m.store.InstanceWithTasks(name)
	if err != nil {
		return reconcile.Result{}, ignoreNotFound(err)
	}
	if inst.Status == stateful.StatusDeleting || !allHealthy(inst) {
		return reconcile.Result{}, nil
	}
	var stale []*stateful.Task
	for _, t := range inst.Tasks {
		if t.Generation < inst.Generation {
			stale = append(stale, t)
		}
	}
	if len(stale) == 0 {
		return reconcile.Result{}, nil
	}
	slices.SortFunc(stale, func(a, b *stateful.Task) int {
		if c := cmp.Compare(-roleOrder(a), -roleOrder(b)); c != 0 {
			return c
		}
		return cmp.Compare(b.Ordinal, a.Ordinal)
	})
	t := stale[0]
	glog.Infof("maintainer: rolling instance %s to generation %d: relaunching %s (generation %d)", name, inst.Generation, t.TaskID, t.Generation)
	if err := m.relaunch(ctx, t.Instance, t.Ordinal, t.TaskID); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.After(m.cfg.KillRetry), nil
}

// allHealthy reports whether the instance has exactly its expected tasks,
// each RUNNING and healthy, none being relaunched.
func allHealthy(inst *stateful.Instance) bool {
	if len(inst.Tasks) != inst.TaskCount() {
		return false
	}
	for _, t := range inst.Tasks {
		if !t.State.IsRunning() || !t.Healthy || t.Relaunch {
			return false
		}
	}
	return true
}

// relaunch marks the current attempt of a task for relaunch and kills it;
// once it has ended, Reconcile queues the ordinal again without a Lost
// callback. taskID, if not empty, is the attempt the caller saw: a newer
// attempt is left alone. A QUEUED task is left as it is.
func (m *Maintainer) relaunch(ctx context.Context, name string, ordinal int, taskID string) error {
	t, err := m.store.UpdateTask(ctx, name, ordinal, func(x *stateful.Task) error {
		if x.State.IsQueued() || (taskID != "" && x.TaskID != taskID) {
			return errSkip
		}
		x.Relaunch = true
		return nil
	})
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.State.IsLaunched() {
		if err := m.killer.Kill(ctx, t.TaskID, t.AgentID); err != nil {
			glog.Warningf("maintainer: kill %s for its relaunch (retried by the next pass): %v", t.TaskID, err)
		}
	}
	m.enqueue(name)
	return nil
}

// updateStatus derives the instance status from its tasks: RUNNING when
// every expected task is RUNNING and healthy; otherwise CREATING until the
// instance first got there, DEGRADED after. The message says what is
// missing.
func (m *Maintainer) updateStatus(ctx context.Context, name string) error {
	inst, err := m.store.InstanceWithTasks(name)
	if err != nil {
		return ignoreNotFound(err)
	}
	status, msg := deriveStatus(inst)
	if status == inst.Status && msg == inst.Message {
		return nil
	}
	_, err = m.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status == stateful.StatusDeleting {
			return errSkip
		}
		status, msg := deriveStatus(w)
		if status != w.Status {
			glog.Infof("maintainer: instance %s is %s (was %s) %s", name, status, w.Status, msg)
		}
		w.Status, w.Message = status, msg
		return nil
	})
	if errors.Is(err, errSkip) {
		return nil
	}
	return ignoreNotFound(err)
}

func deriveStatus(inst *stateful.Instance) (stateful.InstanceStatus, string) {
	want := inst.TaskCount()
	surplus := reconcile.Surplus(inst)
	ready := 0
	var notes []string
	for _, t := range inst.Tasks {
		if surplus[t.Ordinal] {
			continue
		}
		if t.State.IsRunning() && t.Healthy && !t.Relaunch {
			ready++
			continue
		}
		if len(notes) < 3 {
			note := t.Name + " " + string(t.State)
			switch {
			case t.State.IsRunning() && t.Relaunch:
				note += " (being relaunched)"
			case t.State.IsRunning():
				note += " (not healthy)"
			}
			notes = append(notes, note)
		}
	}
	if ready == want && len(surplus) == 0 {
		return stateful.StatusRunning, ""
	}
	msg := fmt.Sprintf("%d of %d tasks running", ready, want)
	if len(surplus) > 0 {
		msg += fmt.Sprintf(", %d being removed", len(surplus))
	}
	if len(notes) > 0 {
		msg += ": " + strings.Join(notes, ", ")
	}
	if inst.Status == stateful.StatusCreating {
		return stateful.StatusCreating, msg
	}
	return stateful.StatusDegraded, msg
}
