package creator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/internal/reconcile"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// Acceptor sends ACCEPT calls to Mesos (mesoslib.Client).
type Acceptor interface {
	Accept(ctx context.Context, offerIDs []mesos.OfferID, ops []mesos.Offer_Operation, refuse time.Duration) error
}

// LaunchStore is the part of statemgr the launcher uses.
type LaunchStore interface {
	InstanceWithTasks(name string) (*stateful.Instance, error)
	Task(name string, ordinal int) (*stateful.Task, error)
	ApplyTaskUpdates(ctx context.Context, updates []statemgr.TaskUpdate) ([]statemgr.TaskResult, error)
}

// Default of LauncherConfig.
const (
	DefaultAcceptRefuse = 5 * time.Second
	// DefaultConfigWait bounds the wait for an instance whose reconcile
	// pass is running before its Config is called.
	DefaultConfigWait = 5 * time.Second
)

// LauncherConfig says how tasks are launched.
type LauncherConfig struct {
	// Framework is the framework's name, passed to the executor (it labels
	// containers with it).
	Framework string
	// Runtime is the executor runtime for every task: auto, docker or
	// process.
	Runtime string
	// VolumeRoot is the absolute directory on agents under which each
	// task gets its stable volume directory <instance>/<ordinal>.
	VolumeRoot string
	// Executor is how agents start the executor: this binary with the
	// "executor" argument, locally or fetched from a URI.
	Executor mesos.CommandInfo
	// Refuse is the refuse filter for what an ACCEPT leaves of its offers.
	Refuse time.Duration
	// CallbackTimeout bounds the workload's Config.
	CallbackTimeout time.Duration
	// ConfigWait bounds the wait for the instance's lock (held while a
	// reconcile pass of the instance runs) before Config is called; a
	// task whose instance stays busy waits for a later offer.
	ConfigWait time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Confirmed is Config.Confirmed: a slave of a master-slave instance
	// is launched only while its master is confirmed running. nil does
	// not check.
	Confirmed func(taskID string) bool
	// Ready, if set, is asked before each launch: while it returns an
	// error (the state store is unreachable, say) nothing is launched and
	// no callback is called; the offers are declined.
	Ready func() error
}

// Validate reports every setting that cannot work, by name.
func (c LauncherConfig) Validate() error {
	var errs []error
	if c.Framework == "" {
		errs = append(errs, errors.New("framework: must not be empty"))
	}
	switch c.Runtime {
	case protocol.RuntimeAuto, protocol.RuntimeDocker, protocol.RuntimeProcess:
	default:
		errs = append(errs, fmt.Errorf("runtime: %q is not auto, docker or process", c.Runtime))
	}
	if !filepath.IsAbs(c.VolumeRoot) {
		errs = append(errs, fmt.Errorf("volume root: %q is not an absolute path", c.VolumeRoot))
	}
	if c.Executor.GetValue() == "" {
		errs = append(errs, errors.New("executor: no command"))
	}
	if c.Refuse < 0 {
		errs = append(errs, fmt.Errorf("refuse: %v must not be negative", c.Refuse))
	}
	if c.CallbackTimeout <= 0 || c.ConfigWait <= 0 {
		errs = append(errs, fmt.Errorf("callback timeout %v and config wait %v must be positive", c.CallbackTimeout, c.ConfigWait))
	}
	return errors.Join(errs...)
}

// Launcher implements offermgr.Launcher: for each placed task it calls the
// workload's Config, builds the TaskInfo run by the toolkit's executor,
// records the attempt as TASK_STAGING, takes the task off the queue, and
// then sends one ACCEPT. Recording STAGING before the ACCEPT is what makes a
// crash harmless: a restarted scheduler reconciles the recorded attempt
// instead of launching the ordinal a second time.
type Launcher struct {
	cfg      LauncherConfig
	store    LaunchStore
	w        stateful.Workload
	queue    TaskQueue
	acceptor Acceptor
	locks    *reconcile.Locks
	enqueue  func(name string)
}

// NewLauncher returns a Launcher. locks are the instance locks the
// controller holds during reconcile passes.
func NewLauncher(cfg LauncherConfig, store LaunchStore, w stateful.Workload, queue TaskQueue, acceptor Acceptor, locks *reconcile.Locks, enqueue func(string)) (*Launcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("launcher: %w", err)
	}
	if store == nil || w == nil || queue == nil || acceptor == nil || locks == nil || enqueue == nil {
		return nil, errors.New("launcher: store, workload, queue, acceptor, locks and enqueue are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Launcher{cfg: cfg, store: store, w: w, queue: queue, acceptor: acceptor, locks: locks, enqueue: enqueue}, nil
}

// errNotQueued: the task is no longer waiting for this launch.
var errNotQueued = errors.New("task is no longer queued")

// prepared is one placement ready to launch.
type prepared struct {
	key     offermgr.Key
	task    *stateful.Task // the task as it will be recorded: STAGING on its agent
	prevAtt int            // the attempt the stored document must still have
	info    mesos.TaskInfo
}

// Launch implements offermgr.Launcher.
func (l *Launcher) Launch(ctx context.Context, launch offermgr.Launch) error {
	if l.cfg.Ready != nil {
		if err := l.cfg.Ready(); err != nil {
			return fmt.Errorf("not launching now: %w", err)
		}
	}
	var ready []prepared
	for _, p := range launch.Placements {
		prep, err := l.prepare(ctx, p)
		if err != nil {
			if errors.Is(err, errNotQueued) {
				l.queue.Remove(p.Demand.Key.String())
				glog.V(1).Infof("launcher: %s: %v", p.Demand.Key, err)
			} else {
				glog.Warningf("launcher: not launching %s on agent %s this time: %v", p.Demand.Key, p.AgentID.Value, err)
			}
			continue
		}
		ready = append(ready, prep)
	}
	if len(ready) == 0 {
		return errors.New("no placement could be prepared")
	}

	updates := make([]statemgr.TaskUpdate, len(ready))
	for i, r := range ready {
		updates[i] = statemgr.TaskUpdate{Instance: r.key.Instance, Ordinal: r.key.Ordinal, Mutate: func(t *stateful.Task) error {
			if !t.State.IsQueued() || t.Attempt != r.prevAtt {
				return errNotQueued
			}
			t.TaskID, t.Attempt = r.task.TaskID, r.task.Attempt
			t.State, t.Healthy = stateful.TaskStaging, false
			t.AgentID, t.Host, t.Ports = r.task.AgentID, r.task.Host, maps.Clone(r.task.Ports)
			t.Generation = r.task.Generation
			t.Message, t.Reason, t.Unplaced, t.Stats, t.Relaunch = "", "", "", nil, false
			return nil
		}}
	}
	results, err := l.store.ApplyTaskUpdates(ctx, updates)
	if err != nil {
		return fmt.Errorf("record STAGING: %w", err)
	}
	var infos []mesos.TaskInfo
	var launched []prepared
	for i, r := range results {
		key := ready[i].key.String()
		if r.Err != nil {
			l.queue.Remove(key)
			glog.V(1).Infof("launcher: %s not launched: %v", key, r.Err)
			continue
		}
		l.queue.Remove(key)
		infos = append(infos, ready[i].info)
		launched = append(launched, ready[i])
	}
	if len(infos) == 0 {
		return errors.New("no placed task is still queued")
	}
	op := mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: infos}}
	if err := l.acceptor.Accept(ctx, launch.OfferIDs, []mesos.Offer_Operation{op}, l.cfg.Refuse); err != nil {
		l.unlaunch(ctx, launched)
		return fmt.Errorf("ACCEPT on agent %s: %w", launch.AgentID.Value, err)
	}
	for _, r := range launched {
		glog.Infof("launcher: launched %s (%s) on agent %s (%s) ports %v", r.task.TaskID, r.task.Role, r.task.AgentID, r.task.Host, r.task.Ports)
	}
	return nil
}

// unlaunch puts tasks whose ACCEPT failed back in QUEUED, ready for their
// next attempt, and has their instances reconciled so they are queued
// again. Should the ACCEPT have reached Mesos after all, the updates of
// those attempts find their tasks QUEUED and the attempts are killed.
func (l *Launcher) unlaunch(ctx context.Context, tasks []prepared) {
	updates := make([]statemgr.TaskUpdate, len(tasks))
	for i, r := range tasks {
		updates[i] = statemgr.TaskUpdate{Instance: r.key.Instance, Ordinal: r.key.Ordinal, Mutate: func(t *stateful.Task) error {
			if t.TaskID != r.task.TaskID || t.State != stateful.TaskStaging {
				return errNotQueued
			}
			t.State = stateful.TaskQueued
			t.AgentID, t.Host, t.Ports = "", "", nil
			t.Message = "launch failed: the ACCEPT call did not go through"
			// StartMaster/StartSlave accepted a launch that never
			// happened: the next attempt needs no second call.
			t.PreparedAttempt = t.Attempt + 1
			return nil
		}}
	}
	if _, err := l.store.ApplyTaskUpdates(ctx, updates); err != nil {
		// They stay STAGING; reconciliation reports them unknown to Mesos
		// and they are relaunched through the lost-task path.
		glog.Errorf("launcher: putting tasks back in the queue after a failed ACCEPT: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range tasks {
		if !seen[r.key.Instance] {
			seen[r.key.Instance] = true
			l.enqueue(r.key.Instance)
		}
	}
}

// prepare checks that the placed task still waits for this launch, calls
// the workload's Config and builds its TaskInfo.
func (l *Launcher) prepare(ctx context.Context, p offermgr.Placement) (prepared, error) {
	key := p.Demand.Key
	// With its tasks: Config needs them (a slave's launch names its
	// master's address), and a restarted scheduler may launch before any
	// other callback has shown the workload the instance.
	inst, err := l.store.InstanceWithTasks(key.Instance)
	if err != nil {
		return prepared{}, fmt.Errorf("%w: %w", errNotQueued, err)
	}
	if inst.Status == stateful.StatusDeleting {
		return prepared{}, fmt.Errorf("%w: instance %s is being deleted", errNotQueued, inst.Name)
	}
	t, err := l.store.Task(key.Instance, key.Ordinal)
	if err != nil {
		return prepared{}, fmt.Errorf("%w: %w", errNotQueued, err)
	}
	if !t.State.IsQueued() || t.PreparedAttempt != t.Attempt+1 {
		return prepared{}, fmt.Errorf("%w (%s, attempt %d prepared for %d)", errNotQueued, t.State, t.Attempt, t.PreparedAttempt)
	}
	if !reconcile.IsMasterRole(t) && !reconcile.MasterConfirmed(inst, l.cfg.Confirmed) {
		// Queued while the master ran, which is no longer confirmed: the
		// creator's next pass takes it off the queue until it is.
		l.enqueue(inst.Name)
		return prepared{}, fmt.Errorf("%w: the master of %s is not confirmed running", errNotQueued, inst.Name)
	}
	prevAtt := t.Attempt
	t.TaskID, t.Attempt = t.NextTaskID()
	t.State = stateful.TaskStaging
	t.AgentID, t.Host = p.AgentID.Value, p.Hostname
	t.Ports = make(map[string]int, len(p.Ports))
	for name, port := range p.Ports {
		t.Ports[name] = int(port)
	}
	t.Generation = inst.Generation

	lc, err := l.config(ctx, inst, t)
	if err != nil {
		return prepared{}, err
	}
	data, err := l.taskData(inst, t, p, lc)
	if err != nil {
		return prepared{}, err
	}
	raw, err := protocol.EncodeTaskData(data)
	if err != nil {
		return prepared{}, fmt.Errorf("task data: %w", err)
	}
	info := mesos.TaskInfo{
		Name:      t.Name,
		TaskID:    mesos.TaskID{Value: t.TaskID},
		AgentID:   p.AgentID,
		Resources: p.Resources,
		Executor:  l.executorInfo(t, p),
		Data:      raw,
		Labels: &mesos.Labels{Labels: []mesos.Label{
			{Key: "stateful.instance", Value: &inst.Name},
			{Key: "stateful.role", Value: ptr(string(t.Role))},
		}},
	}
	return prepared{key: key, task: t, prevAtt: prevAtt, info: info}, nil
}

// config calls the workload's Config under the instance's lock, so it
// never runs beside another callback of the instance.
func (l *Launcher) config(ctx context.Context, inst *stateful.Instance, t *stateful.Task) (stateful.LaunchConfig, error) {
	wait, cancel := context.WithTimeout(ctx, l.cfg.ConfigWait)
	unlock, err := l.locks.Lock(wait, inst.Name)
	cancel()
	if err != nil {
		return stateful.LaunchConfig{}, fmt.Errorf("instance %s is busy: %w", inst.Name, err)
	}
	defer unlock()
	var lc stateful.LaunchConfig
	err = reconcile.Call(ctx, l.cfg.CallbackTimeout, "Config", t.Name, func(ctx context.Context) error {
		var err error
		lc, err = l.w.Config(ctx, inst.Clone(), t.Clone())
		return err
	})
	return lc, err
}

// taskData is what the executor runs for this launch.
func (l *Launcher) taskData(inst *stateful.Instance, t *stateful.Task, p offermgr.Placement, lc stateful.LaunchConfig) (protocol.TaskData, error) {
	spec := inst.Spec
	d := protocol.TaskData{
		Version:   protocol.TaskDataVersion,
		Framework: l.cfg.Framework,
		Instance:  inst.Name,
		Ordinal:   t.Ordinal,
		Role:      string(t.Role),
		Runtime:   l.cfg.Runtime,
		Image:     spec.Image,
		Network:   string(spec.Network),
		CPU:       spec.CPU,
		MemMB:     spec.Mem,
	}
	switch {
	case spec.Command != "" && len(lc.Args) > 0:
		d.Command = spec.Command + " " + shellJoin(lc.Args)
	case spec.Command != "":
		d.Command = spec.Command
	default:
		d.Args = lc.Args
	}
	if len(spec.Env) > 0 || len(lc.Env) > 0 {
		d.Env = maps.Clone(spec.Env)
		if d.Env == nil {
			d.Env = map[string]string{}
		}
		maps.Copy(d.Env, lc.Env)
	}
	if len(p.Ports) > 0 {
		d.Ports = maps.Clone(p.Ports)
	}
	if t.Role == stateful.RoleSlave {
		d.Master = masterPeer(inst)
	}
	if l.needsVolume(spec) {
		d.Volume = &protocol.Volume{
			HostPath:      filepath.Join(l.cfg.VolumeRoot, inst.Name, strconv.Itoa(t.Ordinal)),
			ContainerPath: spec.Volume,
		}
	}
	if h := spec.Health; h != nil {
		d.Health = &protocol.Health{
			Command:  h.Command,
			TCPPort:  h.TCP,
			Interval: protocol.Duration(h.Interval()),
			Grace:    protocol.Duration(h.Grace()),
			Timeout:  protocol.Duration(h.Timeout()),
		}
		if n := h.ConsecutiveFailures; n != nil {
			v := *n
			d.Health.ConsecutiveFailures = &v
		}
	}
	return d, d.Validate()
}

// needsVolume: a process task always gets its stable directory (it is its
// working directory); a container gets one when the spec names the path to
// mount it at.
func (l *Launcher) needsVolume(spec stateful.Spec) bool {
	if spec.Volume != "" {
		return true
	}
	switch l.cfg.Runtime {
	case protocol.RuntimeProcess:
		return true
	case protocol.RuntimeDocker:
		return false
	}
	// auto: the executor picks the process runtime for a task without
	// an image.
	return spec.Image == ""
}

// executorInfo is the task's own executor. Its ID is derived from the task
// ID, so it is new for every attempt, and the same ExecutorInfo is never
// sent twice with different content.
func (l *Launcher) executorInfo(t *stateful.Task, p offermgr.Placement) *mesos.ExecutorInfo {
	cmd := l.cfg.Executor
	cmd.URIs = append([]mesos.CommandInfo_URI(nil), cmd.URIs...)
	cmd.Arguments = append([]string(nil), cmd.Arguments...)
	return &mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: reconcile.ExecutorID(t.TaskID)},
		Name:       ptr("stateful executor of " + t.TaskID),
		Command:    &cmd,
		Resources:  p.ExecutorResources,
	}
}

func ptr[T any](v T) *T { return &v }

// shellJoin quotes args for /bin/sh so each stays one word.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%") == "" {
			quoted[i] = a
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

// masterPeer is where inst's master runs, for a slave's launch (a workload
// seeds a fresh volume from it); nil when it is not placed.
func masterPeer(inst *stateful.Instance) *protocol.Peer {
	for _, m := range inst.Tasks {
		if m.Role != stateful.RoleMaster || m.Ordinal != inst.MasterOrdinal || m.Host == "" || !m.State.IsLaunched() {
			continue
		}
		peer := &protocol.Peer{Name: m.Name, Host: m.Host}
		if len(m.Ports) > 0 {
			peer.Ports = make(map[string]uint32, len(m.Ports))
			for name, port := range m.Ports {
				peer.Ports[name] = uint32(port)
			}
		}
		return peer
	}
	return nil
}
