// Package creator brings instances up: it turns create and scale requests
// into desired state in statemgr, and its reconcile step turns desired state
// into tasks waiting for offers, calling the workload's Start, StartMaster
// and StartSlave on the way. Its Launcher is what offermgr calls to launch
// placed tasks with the toolkit's executor.
//
// Requests only write state and enqueue the instance; everything else
// happens in Reconcile, which compares what the instance should have with
// what its task documents say and takes the next steps. A restart or a
// missed event is therefore repaired by the next pass.
package creator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/internal/reconcile"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// Store is the part of statemgr the creator uses.
type Store interface {
	CreateInstance(ctx context.Context, inst *stateful.Instance, tasks []*stateful.Task) error
	UpdateInstance(ctx context.Context, name string, mutate func(*stateful.Instance) error) (*stateful.Instance, error)
	ApplyTaskUpdates(ctx context.Context, updates []statemgr.TaskUpdate) ([]statemgr.TaskResult, error)
	InstanceWithTasks(name string) (*stateful.Instance, error)
}

// TaskQueue is the queue of tasks waiting for offers (buffer.TaskQueue of
// offermgr.Demand), keyed by task name.
type TaskQueue interface {
	Put(key string, d offermgr.Demand) bool
	Remove(key string) bool
}

// Killer kills one Mesos task. Implementations may drop repeated kills of a
// task made within a short while, so callers simply kill on every pass
// until the task is terminal.
type Killer interface {
	Kill(ctx context.Context, taskID, agentID string) error
}

// Defaults of Config.
const (
	DefaultStickyWait         = 2 * time.Minute
	DefaultRelaunchBackoff    = time.Second
	DefaultRelaunchMaxBackoff = time.Minute
	DefaultKillRetry          = 10 * time.Second
	DefaultCallbackTimeout    = 30 * time.Second
	DefaultExecutorCPU        = 0.1
	DefaultExecutorMem        = 32
)

// Config tunes the creator.
type Config struct {
	// StickyWait is how long a relaunched task waits for the agent that
	// holds its volume before it may go elsewhere (counted from QueuedAt).
	StickyWait time.Duration
	// RelaunchBackoff and RelaunchMaxBackoff space the attempts of a task
	// that keeps failing before it ever runs: the n-th consecutive failure
	// waits RelaunchBackoff·2^(n-1), at most RelaunchMaxBackoff. A task
	// lost after it ran is relaunched at once.
	RelaunchBackoff    time.Duration
	RelaunchMaxBackoff time.Duration
	// KillRetry is how soon a surplus task that is still alive is looked
	// at (and killed) again.
	KillRetry time.Duration
	// CallbackTimeout bounds each workload callback.
	CallbackTimeout time.Duration
	// ExecutorCPU and ExecutorMem are what each task's executor needs on
	// top of the task.
	ExecutorCPU, ExecutorMem float64
	// Runtime is the executors' runtime (auto, docker, process): a spec it
	// cannot run is refused when it is created or changed.
	Runtime string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Confirmed reports whether Mesos confirmed, in this scheduler's term,
	// that an attempt runs (maintainer.ConfirmedRunning). A slave of a
	// master-slave instance is queued only once its master is confirmed:
	// its launch is configured with the master's address. nil does not
	// wait (slaves are queued with their master).
	Confirmed func(taskID string) bool
}

// NewConfig returns the defaults.
func NewConfig() Config {
	return Config{
		StickyWait:         DefaultStickyWait,
		RelaunchBackoff:    DefaultRelaunchBackoff,
		RelaunchMaxBackoff: DefaultRelaunchMaxBackoff,
		KillRetry:          DefaultKillRetry,
		CallbackTimeout:    DefaultCallbackTimeout,
		ExecutorCPU:        DefaultExecutorCPU,
		ExecutorMem:        DefaultExecutorMem,
	}
}

// Validate reports every setting that cannot work, by name.
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"sticky wait", c.StickyWait},
		{"relaunch backoff", c.RelaunchBackoff},
		{"relaunch max backoff", c.RelaunchMaxBackoff},
		{"kill retry", c.KillRetry},
		{"callback timeout", c.CallbackTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", d.name, d.v))
		}
	}
	if c.RelaunchMaxBackoff < c.RelaunchBackoff {
		errs = append(errs, fmt.Errorf("relaunch max backoff: %v is less than the relaunch backoff %v", c.RelaunchMaxBackoff, c.RelaunchBackoff))
	}
	if c.ExecutorCPU < 0 || c.ExecutorMem < 0 {
		errs = append(errs, fmt.Errorf("executor resources: cpu %g and mem %g must not be negative", c.ExecutorCPU, c.ExecutorMem))
	}
	return errors.Join(errs...)
}

// Creator implements the create and scale requests and the reconcile step
// that brings an instance's tasks up. Its methods are safe for concurrent
// use; Reconcile must not run concurrently for one instance (the
// controller's work queue guarantees it).
type Creator struct {
	cfg     Config
	store   Store
	w       stateful.Workload
	h       stateful.Handle
	queue   TaskQueue
	killer  Killer
	enqueue func(name string)

	mu sync.Mutex
	// started remembers the instances whose Start returned nil in this
	// process, so a failing StartMaster does not call Start again. Across
	// restarts Start is called again only for an instance that never got
	// as far as preparing a task (see needsStart).
	started map[string]bool
}

// New returns a Creator. enqueue asks the controller to reconcile an
// instance.
func New(cfg Config, store Store, w stateful.Workload, h stateful.Handle, queue TaskQueue, killer Killer, enqueue func(name string)) (*Creator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("creator: %w", err)
	}
	if store == nil || w == nil || h == nil || queue == nil || killer == nil || enqueue == nil {
		return nil, errors.New("creator: store, workload, handle, task queue, killer and enqueue are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Creator{cfg: cfg, store: store, w: w, h: h, queue: queue, killer: killer, enqueue: enqueue, started: map[string]bool{}}, nil
}

// Create stores a new instance with its tasks QUEUED, in one transaction
// that fails with stateful.ErrExists if the name is taken, and enqueues it.
// It returns once the instance is durable. inst is not modified.
func (c *Creator) Create(ctx context.Context, inst *stateful.Instance) (*stateful.Instance, error) {
	if inst == nil {
		return nil, errors.New("create: no instance")
	}
	doc := &stateful.Instance{
		Name:       inst.Name,
		Type:       inst.Type,
		Masters:    inst.Masters,
		Slaves:     inst.Slaves,
		Status:     stateful.StatusCreating,
		Generation: 1,
		Spec:       inst.Spec.WithDefaults(c.w.Defaults()),
	}
	if err := doc.Validate(); err != nil {
		return nil, fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	if err := c.runnable(doc.Spec); err != nil {
		return nil, fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	if err := c.workloadAccepts(doc); err != nil {
		return nil, fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	if err := c.store.CreateInstance(ctx, doc, doc.InitialTasks(c.cfg.Now())); err != nil {
		return nil, err
	}
	glog.Infof("creator: instance %s (%s, %d masters, %d slaves) accepted", doc.Name, doc.Type, doc.Masters, doc.Slaves)
	c.enqueue(doc.Name)
	return c.store.InstanceWithTasks(doc.Name)
}

// Update applies a validated change to an instance: a new number of slaves
// (scale) and/or a new spec (rolled out one task at a time by the
// maintainer), and bumps its generation. It fails with ErrDeleting,
// ErrNotFound, or ErrConflict when the stored generation is no longer
// generation. nil slaves or spec leaves that part unchanged.
func (c *Creator) Update(ctx context.Context, name string, generation int64, slaves *int, spec *stateful.Spec) (*stateful.Instance, error) {
	if slaves == nil && spec == nil {
		return nil, fmt.Errorf("update instance %q: %w", name, &stateful.ValidationError{Msg: "nothing to change"})
	}
	var newSpec *stateful.Spec
	if spec != nil {
		s := spec.WithDefaults(c.w.Defaults())
		if err := c.runnable(s); err != nil {
			return nil, fmt.Errorf("update instance %q: %w", name, err)
		}
		newSpec = &s
	}
	inst, err := c.store.UpdateInstance(ctx, name, func(w *stateful.Instance) error {
		if w.Status == stateful.StatusDeleting {
			return stateful.ErrDeleting
		}
		if w.Generation != generation {
			return fmt.Errorf("%w: the instance is at generation %d, the change was made from %d", stateful.ErrConflict, w.Generation, generation)
		}
		if slaves != nil {
			if w.Type != stateful.TypeMasterSlave && *slaves != w.Slaves {
				return &stateful.ValidationError{Field: "slaves", Msg: fmt.Sprintf("type %s has no slaves to scale", w.Type)}
			}
			w.Slaves = *slaves
		}
		old := w.Generation
		w.Generation++
		if newSpec != nil {
			// Kept so that the rollout can be aborted.
			prev := w.Spec.Clone()
			w.PreviousSpec, w.SpecGeneration = &prev, w.Generation
			w.Spec = newSpec.Clone()
			return c.workloadAccepts(w)
		}
		if err := c.workloadAccepts(w); err != nil {
			return err
		}
		// Only the counts changed: the tasks run the current spec, so
		// they are of the new generation too and nothing is rolled.
		for _, t := range w.Tasks {
			if t.Generation == old {
				t.Generation = w.Generation
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	glog.Infof("creator: instance %s changed to generation %d (%d slaves, spec changed: %t)", name, inst.Generation, inst.Slaves, spec != nil)
	c.enqueue(name)
	return inst, nil
}

// workloadAccepts asks a workload that implements
// stateful.InstanceValidator whether it can run inst, so that a request it
// cannot run is refused (400) instead of accepted and left queued forever.
func (c *Creator) workloadAccepts(inst *stateful.Instance) (err error) {
	v, ok := c.w.(stateful.InstanceValidator)
	if !ok {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			glog.Errorf("creator: ValidateInstance(%s) panicked: %v", inst.Name, p)
			err = fmt.Errorf("the workload's validation failed: %v", p)
		}
	}()
	if err := v.ValidateInstance(inst.Clone()); err != nil {
		var ve *stateful.ValidationError
		if errors.As(err, &ve) {
			return err
		}
		return &stateful.ValidationError{Msg: err.Error()}
	}
	return nil
}

// runnable refuses a spec the configured runtime cannot run.
func (c *Creator) runnable(spec stateful.Spec) error {
	switch {
	case c.cfg.Runtime == "process" && spec.Command == "":
		return &stateful.ValidationError{Field: "spec.command", Msg: "required: this framework runs tasks as processes (--runtime=process)"}
	case c.cfg.Runtime == "docker" && spec.Image == "":
		return &stateful.ValidationError{Field: "spec.image", Msg: "required: this framework runs tasks in Docker containers (--runtime=docker)"}
	case c.cfg.Runtime != "docker" && spec.Network == stateful.NetworkBridge && spec.Image == "":
		return &stateful.ValidationError{Field: "spec.network", Msg: "bridge networking needs an image (the Docker runtime)"}
	}
	return nil
}

// Forget drops what the creator remembers of a deleted instance.
func (c *Creator) Forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.started, name)
}

// Reconcile brings the named instance's tasks towards its desired state:
// it calls Start for a new instance, adds tasks a scale-up asks for, kills
// and then deletes the tasks a scale-down removes, and hands every QUEUED
// task to the task queue once StartMaster/StartSlave has accepted it (and
// its relaunch backoff, if any, has passed). Deleting instances are the
// destroyer's.
func (c *Creator) Reconcile(ctx context.Context, name string) (reconcile.Result, error) {
	inst, err := c.store.InstanceWithTasks(name)
	if errors.Is(err, stateful.ErrNotFound) {
		c.Forget(name)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if inst.Status == stateful.StatusDeleting {
		return reconcile.Result{}, nil
	}
	if err := c.start(ctx, inst); err != nil {
		return reconcile.Result{}, err
	}
	res, err := c.scale(ctx, inst)
	if err != nil {
		return res, err
	}
	inst, err = c.store.InstanceWithTasks(name)
	if err != nil {
		return res, ignoreNotFound(err)
	}
	if inst.Status == stateful.StatusDeleting {
		return res, nil
	}
	queued, err := c.queueTasks(ctx, inst)
	return res.Merge(queued), err
}

func ignoreNotFound(err error) error {
	if errors.Is(err, stateful.ErrNotFound) {
		return nil
	}
	return err
}

// needsStart reports whether Start is still due: it runs before any task of
// the instance is prepared, and never again once one was (the stored
// PreparedAttempt says so even after a restart).
func (c *Creator) needsStart(inst *stateful.Instance) bool {
	c.mu.Lock()
	done := c.started[inst.Name]
	c.mu.Unlock()
	if done {
		return false
	}
	for _, t := range inst.Tasks {
		if t.Attempt > 0 || t.PreparedAttempt > 0 {
			return false
		}
	}
	return true
}

func (c *Creator) start(ctx context.Context, inst *stateful.Instance) error {
	if !c.needsStart(inst) {
		return nil
	}
	err := reconcile.Call(ctx, c.cfg.CallbackTimeout, "Start", inst.Name, func(ctx context.Context) error {
		return c.w.Start(ctx, c.h, inst.Clone())
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.started[inst.Name] = true
	c.mu.Unlock()
	return nil
}

// errSkip stops a mutate function without it being an error: the state
// moved on and the next pass looks again.
var errSkip = errors.New("state changed; skipped")

// scale adds the tasks the instance lacks and removes its surplus ones:
// surplus tasks that still run are killed, those that do not are deleted.
func (c *Creator) scale(ctx context.Context, inst *stateful.Instance) (reconcile.Result, error) {
	if len(inst.Tasks) < inst.TaskCount() {
		now := c.cfg.Now()
		_, err := c.store.UpdateInstance(ctx, inst.Name, func(w *stateful.Instance) error {
			if w.Status == stateful.StatusDeleting {
				return errSkip
			}
			used := map[int]bool{}
			for _, t := range w.Tasks {
				used[t.Ordinal] = true
			}
			for ord := 0; len(w.Tasks) < w.TaskCount() && ord <= stateful.MaxOrdinal; ord++ {
				if used[ord] {
					continue
				}
				w.Tasks = append(w.Tasks, stateful.NewTask(w, ord, newRole(w, ord), now))
				glog.Infof("creator: instance %s scales up: new task %s", w.Name, stateful.TaskName(w.Name, ord))
			}
			return nil
		})
		if err != nil && !errors.Is(err, errSkip) {
			return reconcile.Result{}, ignoreNotFound(err)
		}
		return reconcile.Result{}, nil
	}

	surplus := reconcile.Surplus(inst)
	if len(surplus) == 0 {
		return reconcile.Result{}, nil
	}
	var res reconcile.Result
	forget := false
	for _, t := range inst.Tasks {
		if !surplus[t.Ordinal] {
			continue
		}
		c.queue.Remove(t.Name)
		if reconcile.Forgettable(t) {
			forget = true
			continue
		}
		glog.V(1).Infof("creator: instance %s scales down: killing %s (%s)", inst.Name, t.TaskID, t.State)
		if err := c.killer.Kill(ctx, t.TaskID, t.AgentID); err != nil {
			glog.Warningf("creator: kill surplus task %s: %v", t.TaskID, err)
		}
		res = res.Merge(reconcile.After(c.cfg.KillRetry))
	}
	if !forget {
		return res, nil
	}
	_, err := c.store.UpdateInstance(ctx, inst.Name, func(w *stateful.Instance) error {
		if w.Status == stateful.StatusDeleting {
			return errSkip
		}
		gone := reconcile.Surplus(w)
		w.Tasks = slices.DeleteFunc(w.Tasks, func(t *stateful.Task) bool {
			drop := gone[t.Ordinal] && reconcile.Forgettable(t)
			if drop {
				glog.Infof("creator: instance %s scales down: task %s removed", w.Name, t.Name)
			}
			return drop
		})
		return nil
	})
	if err != nil && !errors.Is(err, errSkip) {
		return res, ignoreNotFound(err)
	}
	return res, nil
}

// newRole is the role of a task a scale-up (or a repair) adds: the master's
// ordinal of S and MS instances, when its task is missing, gets the master
// role; other MS tasks are slaves; C tasks are peers.
func newRole(inst *stateful.Instance, ordinal int) stateful.Role {
	switch inst.Type {
	case stateful.TypeCluster:
		return stateful.RolePeer
	case stateful.TypeSingle:
		return stateful.RoleMaster
	}
	if ordinal == inst.MasterOrdinal {
		for _, t := range inst.Tasks {
			if t.Role == stateful.RoleMaster {
				return stateful.RoleSlave
			}
		}
		return stateful.RoleMaster
	}
	return stateful.RoleSlave
}

// queueTasks hands QUEUED tasks to the task queue: each is first prepared
// (StartMaster or StartSlave, recorded as PreparedAttempt so that a restart
// does not call it again), then put in the queue once its relaunch backoff
// has passed. The tasks of one pass are recorded in one write and queued
// together, so the offer manager places them in one pass (and spreads them)
// rather than one by one. Tasks that are no longer QUEUED are taken out of
// the queue.
func (c *Creator) queueTasks(ctx context.Context, inst *stateful.Instance) (reconcile.Result, error) {
	surplus := reconcile.Surplus(inst)
	now := c.cfg.Now()
	var res reconcile.Result
	var ready, fresh []*stateful.Task
	var failed error
	masterUp := reconcile.MasterConfirmed(inst, c.cfg.Confirmed)
	for _, t := range inst.Tasks {
		if surplus[t.Ordinal] {
			continue
		}
		if !t.State.IsQueued() {
			c.queue.Remove(t.Name)
			continue
		}
		if !reconcile.IsMasterRole(t) && !masterUp {
			// Its launch would name a master that may not run (a stale
			// placement after a crash, or one not up yet). The master's
			// RUNNING update enqueues the instance again.
			if c.queue.Remove(t.Name) {
				glog.V(1).Infof("creator: slave %s waits until its master is confirmed running", t.Name)
			}
			continue
		}
		if wait := c.backoffLeft(t, now); wait > 0 {
			glog.V(1).Infof("creator: task %s waits %v before its attempt %d (relaunch backoff)", t.Name, wait.Round(time.Millisecond), t.Attempt+1)
			res = res.Merge(reconcile.After(wait))
			continue
		}
		if t.PreparedAttempt == t.Attempt+1 {
			ready = append(ready, t)
			continue
		}
		if failed != nil {
			continue
		}
		// A failed callback stops the preparations, but what was prepared
		// before it is still recorded and queued.
		if err := c.prepare(ctx, inst, t); err != nil {
			failed = err
			continue
		}
		fresh = append(fresh, t)
	}
	prepared, err := c.recordPrepared(ctx, inst.Name, fresh)
	if err != nil {
		return res, err
	}
	for _, t := range append(ready, prepared...) {
		if c.queue.Put(t.Name, c.demand(inst, t)) {
			glog.V(1).Infof("creator: task %s (%s) queued for attempt %d", t.Name, t.Role, t.Attempt+1)
		}
	}
	return res, failed
}

// prepare calls StartMaster or StartSlave for the task's next attempt.
func (c *Creator) prepare(ctx context.Context, inst *stateful.Instance, t *stateful.Task) error {
	callback, fn := "StartSlave", c.w.StartSlave
	if reconcile.IsMasterRole(t) {
		callback, fn = "StartMaster", c.w.StartMaster
	}
	return reconcile.Call(ctx, c.cfg.CallbackTimeout, callback, t.Name, func(ctx context.Context) error {
		return fn(ctx, c.h, inst.Clone(), t.Clone())
	})
}

// recordPrepared records, in one write, that the tasks' next attempts were
// prepared, and returns the tasks as stored (those that moved on meanwhile
// are left out).
func (c *Creator) recordPrepared(ctx context.Context, name string, tasks []*stateful.Task) ([]*stateful.Task, error) {
	if len(tasks) == 0 {
		return nil, nil
	}
	updates := make([]statemgr.TaskUpdate, len(tasks))
	for i, t := range tasks {
		attempt := t.Attempt
		updates[i] = statemgr.TaskUpdate{Instance: name, Ordinal: t.Ordinal, Mutate: func(x *stateful.Task) error {
			if !x.State.IsQueued() || x.Attempt != attempt {
				return errSkip
			}
			x.PreparedAttempt = x.Attempt + 1
			return nil
		}}
	}
	results, err := c.store.ApplyTaskUpdates(ctx, updates)
	if err != nil {
		return nil, err
	}
	var out []*stateful.Task
	for _, r := range results {
		if r.Err == nil {
			out = append(out, r.Task)
		}
	}
	return out, nil
}

// backoffLeft is how long a QUEUED task still waits before its next
// attempt. The consecutive failures are the attempts since the last one
// that ran (NotifiedAttempt), so the count survives a restart.
func (c *Creator) backoffLeft(t *stateful.Task, now time.Time) time.Duration {
	failures := t.Attempt - t.NotifiedAttempt
	if failures <= 0 || t.QueuedAt.IsZero() {
		return 0
	}
	d := c.cfg.RelaunchBackoff
	for i := 1; i < failures && d < c.cfg.RelaunchMaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.RelaunchMaxBackoff)
	return t.QueuedAt.Add(d).Sub(now)
}

// demand is what the task asks of an offer.
func (c *Creator) demand(inst *stateful.Instance, t *stateful.Task) offermgr.Demand {
	next, _ := t.NextTaskID()
	d := offermgr.Demand{
		Key:         offermgr.Key{Instance: inst.Name, Ordinal: t.Ordinal},
		Role:        string(t.Role),
		CPU:         inst.Spec.CPU,
		Mem:         inst.Spec.Mem,
		Disk:        inst.Spec.Disk,
		Ports:       slices.Clone(inst.Spec.Ports),
		Executor:    offermgr.ExecutorDemand{ID: reconcile.ExecutorID(next), CPU: c.cfg.ExecutorCPU, Mem: c.cfg.ExecutorMem},
		PrevAgent:   t.StickyAgentID,
		QueuedSince: t.QueuedAt,
	}
	if d.PrevAgent != "" {
		d.StickyUntil = t.QueuedAt.Add(c.cfg.StickyWait)
	}
	return d
}
