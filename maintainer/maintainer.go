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
	cameBack := false
	queued, err := m.store.UpdateTask(ctx, inst.Name, t.Ordinal, func(x *stateful.Task) error {
		if x.TaskID != taskID {
			return errSkip
		}
		if !reconcile.Lost(x) {
			if t.Relaunch || !x.State.IsRunning() {
				return errSkip
			}
			// The attempt came back (its agent re-registered after a
			// partition) while the Lost callback ran. What the callback
			// decided stands (a promotion elsewhere): the attempt is
			// notified again under the role it has now, and its Running
			// callback re-points it (a Redis master turns slave of the
			// new master), so it is never left as a second master.
			x.NotifiedAttempt = 0
			cameBack = true
			return nil
		}
		msg := fmt.Sprintf("attempt %d ended: %s", x.Attempt, x.State)
		if x.Message != "" {
			msg += ": " + x.Message
		}
		planned := x.Relaunch
		x.Requeue(now)
		x.Planned = planned
		x.Message = msg
		return nil
	})
	if errors.Is(err, errSkip) || errors.Is(err, stateful.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cameBack {
		glog.Infof("maintainer: %s came back as %s while it was handled as lost; notifying it again", queued.TaskID, queued.Role)
		return nil
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
		x.Planned = false
		return nil
	})
	if errors.Is(err, errSkip) || errors.Is(err, stateful.ErrNotFound) {
		return nil
	}
	return err
}

// roll carries planned work one step further, once every task of the
// instance runs and is healthy: a pending switchover first; then a spec
// change, one task launched under an older generation at a time, slaves
// first (the highest ordinal first). The master's turn is a switchover to
// the most up-to-date slave when the workload can do one
// (stateful.Switchoverer), so that it is then relaunched as a slave;
// otherwise the master is relaunched in place. The next task follows when
// the relaunched one is healthy again. A paused rollout relaunches nothing.
func (m *Maintainer) roll(ctx context.Context, name string) (reconcile.Result, error) {
	inst, err := m.store.InstanceWithTasks(name)
	if err != nil {
		return reconcile.Result{}, ignoreNotFound(err)
	}
	if inst.Status == stateful.StatusDeleting || !allHealthy(inst) {
		return reconcile.Result{}, nil
	}
	if inst.Switchover != nil {
		return reconcile.Result{}, m.switchover(ctx, inst)
	}
	var stale []*stateful.Task
	for _, t := range inst.Tasks {
		if t.Generation < inst.Generation {
			stale = append(stale, t)
		}
	}
	if len(stale) == 0 || inst.RolloutPaused {
		return reconcile.Result{}, nil
	}
	slices.SortFunc(stale, func(a, b *stateful.Task) int {
		if c := cmp.Compare(-roleOrder(a), -roleOrder(b)); c != 0 {
			return c
		}
		return cmp.Compare(b.Ordinal, a.Ordinal)
	})
	t := stale[0]
	if _, ok := m.w.(stateful.Switchoverer); ok && inst.Type == stateful.TypeMasterSlave && t.Role == stateful.RoleMaster {
		if to := stateful.ChooseSuccessor(m.WithStats(inst.Tasks), t); to != nil && to.Healthy {
			glog.Infof("maintainer: rolling instance %s to generation %d: switching the master over from %s to %s first", name, inst.Generation, t.Name, to.Name)
			_, err := m.requestSwitchover(ctx, name, to.Ordinal, stateful.SwitchoverUpdate, nil)
			return reconcile.Result{}, err
		}
	}
	glog.Infof("maintainer: rolling instance %s to generation %d: relaunching %s (generation %d)", name, inst.Generation, t.TaskID, t.Generation)
	if err := m.relaunch(ctx, t.Instance, t.Ordinal, t.TaskID); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.After(m.cfg.KillRetry), nil
}

// requestSwitchover stores a switchover to ordinal to (-1: the best
// slave), if check (when given) accepts the instance as stored, and
// enqueues the instance, which carries it out.
func (m *Maintainer) requestSwitchover(ctx context.Context, name string, to int, reason string, check func(*stateful.Instance) error) (*stateful.Instance, error) {
	now := m.cfg.Now()
	inst, err := m.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status == stateful.StatusDeleting {
			return stateful.ErrDeleting
		}
		if check != nil {
			if err := check(w); err != nil {
				return err
			}
		}
		w.Switchover = &stateful.Switchover{To: to, Reason: reason, RequestedAt: now}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.enqueue(name)
	return inst, nil
}

// switchover carries out inst's pending switchover: the workload's
// Switchover, then the promotion is recorded and the request cleared. A
// request that cannot be carried out (no such slave, the workload cannot
// switch over) is dropped with a note in the instance's message.
func (m *Maintainer) switchover(ctx context.Context, inst *stateful.Instance) error {
	req := *inst.Switchover
	tasks := m.WithStats(inst.Tasks)
	var from, to *stateful.Task
	for _, t := range tasks {
		if t.Role == stateful.RoleMaster && t.Ordinal == inst.MasterOrdinal {
			from = t
		}
		if t.Ordinal == req.To {
			to = t
		}
	}
	if req.To < 0 && from != nil {
		to = stateful.ChooseSuccessor(tasks, from)
	}
	so, ok := m.w.(stateful.Switchoverer)
	var why string
	switch {
	case !ok:
		why = "the workload cannot switch over"
	case from == nil:
		why = "the instance has no master"
	case to == nil:
		why = "no running slave to switch over to"
	case to.Ordinal == from.Ordinal:
		why = to.Name + " is already the master"
	case to.Role != stateful.RoleSlave:
		why = to.Name + " is not a slave"
	}
	if why != "" {
		glog.Infof("maintainer: instance %s: switchover dropped: %s", inst.Name, why)
		return m.clearSwitchover(ctx, inst.Name, req, "switchover not done: "+why)
	}
	if req.To < 0 {
		// Fix the choice first, so that a retry or a restart carries on
		// with the same slave.
		_, err := m.store.UpdateInstance(ctx, inst.Name, func(w *stateful.Instance) error {
			if w.Switchover == nil || *w.Switchover != req {
				return errSkip
			}
			w.Switchover.To = to.Ordinal
			return nil
		})
		if err != nil && !errors.Is(err, errSkip) {
			return err
		}
		m.enqueue(inst.Name)
		return nil
	}
	glog.Infof("maintainer: instance %s: switching over from %s to %s (%s)", inst.Name, from.Name, to.Name, req.Reason)
	err := reconcile.Call(ctx, m.cfg.CallbackTimeout, "Switchover", inst.Name, func(ctx context.Context) error {
		return so.Switchover(ctx, m.Handle(), inst.Clone(), from.Clone(), to.Clone())
	})
	if err != nil {
		return err
	}
	if err := m.Handle().Promote(ctx, inst, to); err != nil {
		return fmt.Errorf("switchover of %s: record %s as master: %w", inst.Name, to.Name, err)
	}
	glog.Infof("maintainer: instance %s: switched over from %s to %s", inst.Name, from.Name, to.Name)
	return m.clearSwitchover(ctx, inst.Name, req, "")
}

func (m *Maintainer) clearSwitchover(ctx context.Context, name string, req stateful.Switchover, note string) error {
	_, err := m.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Switchover == nil || *w.Switchover != req {
			return errSkip
		}
		w.Switchover = nil
		if note != "" {
			w.Message = note
		}
		return nil
	})
	if errors.Is(err, errSkip) {
		err = nil
	}
	m.enqueue(name)
	return ignoreNotFound(err)
}

// RequestSwitchover asks for a switchover of the named MS instance's master
// to ordinal to, or to the best slave when to is nil; the maintainer carries
// it out once every task is healthy. It is refused (a ValidationError) for
// an instance that is not MS, a workload without Switchover, and an ordinal
// that is not a slave's.
func (m *Maintainer) RequestSwitchover(ctx context.Context, name string, to *int) (*stateful.Instance, error) {
	if _, ok := m.w.(stateful.Switchoverer); !ok {
		return nil, &stateful.ValidationError{Msg: "this framework's workload cannot switch over (it does not implement stateful.Switchoverer)"}
	}
	target := -1
	if to != nil {
		target = *to
	}
	return m.requestSwitchover(ctx, name, target, stateful.SwitchoverRequested, func(w *stateful.Instance) error {
		if w.Type != stateful.TypeMasterSlave {
			return &stateful.ValidationError{Field: "type", Msg: fmt.Sprintf("only an MS instance switches over, %s is %s", name, w.Type)}
		}
		if target >= 0 {
			var found *stateful.Task
			for _, t := range w.Tasks {
				if t.Ordinal == target {
					found = t
				}
			}
			if found == nil || found.Role != stateful.RoleSlave {
				return &stateful.ValidationError{Field: "to", Msg: fmt.Sprintf("ordinal %d is not a slave of %s", target, name)}
			}
		}
		return nil
	})
}

// AbortRollout stops the named instance's rolling spec change and goes back
// to the spec before it: the tasks not updated yet are left as they are
// (they run that spec), the ones already updated are rolled back the same
// way, one at a time. It is refused (a ValidationError) when no rollout is
// under way.
func (m *Maintainer) AbortRollout(ctx context.Context, name string) (*stateful.Instance, error) {
	inst, err := m.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status == stateful.StatusDeleting {
			return stateful.ErrDeleting
		}
		rolling := false
		for _, t := range w.Tasks {
			rolling = rolling || t.Generation < w.Generation
		}
		if !rolling || w.PreviousSpec == nil {
			return &stateful.ValidationError{Msg: fmt.Sprintf("instance %s has no rolling spec change to abort", name)}
		}
		next := w.Generation + 1
		for _, t := range w.Tasks {
			if t.Generation < w.SpecGeneration {
				t.Generation = next
			}
		}
		w.Spec = w.PreviousSpec.Clone()
		w.PreviousSpec = nil
		w.Generation, w.SpecGeneration = next, next
		w.RolloutPaused = false
		if w.Switchover != nil && w.Switchover.Reason == stateful.SwitchoverUpdate {
			w.Switchover = nil
		}
		return nil
	})
	if err == nil {
		glog.Infof("maintainer: instance %s: rollout aborted; back to the previous spec (generation %d)", name, inst.Generation)
		m.enqueue(name)
	}
	return inst, err
}

// SetRolloutPaused pauses or resumes the rolling spec change of the named
// instance.
func (m *Maintainer) SetRolloutPaused(ctx context.Context, name string, paused bool) (*stateful.Instance, error) {
	inst, err := m.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status == stateful.StatusDeleting {
			return stateful.ErrDeleting
		}
		w.RolloutPaused = paused
		return nil
	})
	if err == nil {
		m.enqueue(name)
	}
	return inst, err
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

// newOrdinal reports whether t has never been up and its first attempt
// has not failed: an ordinal a scale change added.
func newOrdinal(t *stateful.Task) bool {
	if t.NotifiedAttempt > 0 {
		return false
	}
	switch t.State {
	case stateful.TaskQueued:
		return t.Attempt == 0
	case stateful.TaskStaging, stateful.TaskStarting, stateful.TaskRunning:
		return t.Attempt == 1
	}
	return false
}

func deriveStatus(inst *stateful.Instance) (stateful.InstanceStatus, string) {
	want := inst.TaskCount()
	surplus := reconcile.Surplus(inst)
	ready := 0
	var notes []string
	// Why tasks are missing decides between UPDATING, SCALING and
	// DEGRADED: any fault makes the instance DEGRADED.
	updating, fault := false, false
	for _, t := range inst.Tasks {
		if surplus[t.Ordinal] {
			continue
		}
		if t.State.IsRunning() && t.Healthy && !t.Relaunch {
			ready++
			continue
		}
		switch {
		case t.Relaunch || t.Planned:
			updating = true
		case newOrdinal(t):
			// added by a scale change, on its way up
		default:
			fault = true
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
	stale := 0
	for _, t := range inst.Tasks {
		if !surplus[t.Ordinal] && t.Generation < inst.Generation {
			stale++
		}
	}
	var plan string
	switch {
	case inst.Switchover != nil:
		plan = "switchover pending"
		if inst.Switchover.To >= 0 {
			plan = "switching over to " + stateful.TaskName(inst.Name, inst.Switchover.To)
		}
	case stale > 0 && inst.RolloutPaused:
		plan = fmt.Sprintf("rollout of generation %d paused: %d of %d tasks updated", inst.Generation, want-stale, want)
	case stale > 0:
		plan = fmt.Sprintf("rolling out generation %d: %d of %d tasks updated", inst.Generation, want-stale, want)
	}
	if ready == want && len(surplus) == 0 {
		if plan != "" {
			return stateful.StatusUpdating, plan
		}
		return stateful.StatusRunning, ""
	}
	if plan != "" {
		updating = true
		notes = append([]string{plan}, notes...)
	}
	msg := fmt.Sprintf("%d of %d tasks running", ready, want)
	if len(surplus) > 0 {
		msg += fmt.Sprintf(", %d being removed", len(surplus))
	}
	if len(notes) > 0 {
		msg += ": " + strings.Join(notes, ", ")
	}
	switch {
	case inst.Status == stateful.StatusCreating:
		return stateful.StatusCreating, msg
	case fault:
		return stateful.StatusDegraded, msg
	case updating:
		return stateful.StatusUpdating, msg
	case ready < want || len(surplus) > 0:
		return stateful.StatusScaling, msg
	}
	return stateful.StatusDegraded, msg
}
