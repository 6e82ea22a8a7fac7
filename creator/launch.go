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
	// Role and Principal are those the framework subscribes with; an
	// ordinal's reservation is made for them. An empty Role (or "*")
	// turns reservations off: every task then gets a host directory under
	// VolumeRoot.
	Role      string
	Principal string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CrashPoint, if not nil, is called at "launch:before-accept" (the
	// attempt and its reservation are recorded, the ACCEPT not sent),
	// "launch:after-accept", "release:before-accept" (the release
	// operation's ID is recorded) and "release:after-accept"; crash tests
	// kill the process there.
	CrashPoint func(point string)
	// Confirmed is Config.Confirmed: a slave of a master-slave instance
	// is launched only while its master is confirmed running. nil does
	// not check.
	Confirmed func(taskID string) bool
	// Ready, if set, is asked before each launch: while it returns an
	// error (the state store is unreachable, say) nothing is launched and
	// no callback is called; the offers are declined.
	Ready func() error
}

// VolumeContainerPath is where a task's persistent volume appears, relative
// to its executor's sandbox. It has no "/": Mesos links a volume with a
// relative path into the sandbox only when it is one name.
const VolumeContainerPath = "stateful-volume"

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
	// reserve and create are the operations a first launch makes its
	// reservation and volume with; release and orphan are placements
	// that only free a reservation.
	reserve, create mesos.Resources
	release         *offermgr.Placement
}

// Launch implements offermgr.Launcher.
func (l *Launcher) Launch(ctx context.Context, launch offermgr.Launch) error {
	if l.cfg.Ready != nil {
		if err := l.cfg.Ready(); err != nil {
			return fmt.Errorf("not launching now: %w", err)
		}
	}
	var ready []prepared
	var orphans []offermgr.Placement
	for _, p := range launch.Placements {
		if p.Release {
			if p.Orphan {
				orphans = append(orphans, p)
			} else {
				ready = append(ready, prepared{key: p.Demand.Key, release: &p})
			}
			continue
		}
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
	if len(ready) == 0 && len(orphans) == 0 {
		return errors.New("no placement could be prepared")
	}

	updates := make([]statemgr.TaskUpdate, len(ready))
	opIDs := make([]string, len(ready))
	for i, r := range ready {
		if r.release != nil {
			resID := r.release.Demand.ReservationID
			opIDs[i] = ReleaseOpID(resID, l.cfg.Now())
			updates[i] = statemgr.TaskUpdate{Instance: r.key.Instance, Ordinal: r.key.Ordinal, Mutate: func(t *stateful.Task) error {
				if t.Reservation == nil || t.Reservation.ResourceID != resID || !t.Reservation.Releasing {
					return errNotQueued
				}
				t.Reservation.ReleaseOp = opIDs[i]
				return nil
			}}
			continue
		}
		updates[i] = statemgr.TaskUpdate{Instance: r.key.Instance, Ordinal: r.key.Ordinal, Mutate: func(t *stateful.Task) error {
			if !t.State.IsQueued() || t.Attempt != r.prevAtt {
				return errNotQueued
			}
			t.TaskID, t.Attempt = r.task.TaskID, r.task.Attempt
			t.State, t.Healthy = stateful.TaskStaging, false
			t.AgentID, t.Host, t.Ports = r.task.AgentID, r.task.Host, maps.Clone(r.task.Ports)
			t.Generation = r.task.Generation
			t.Message, t.Reason, t.Unplaced, t.Stats, t.Relaunch = "", "", "", nil, false
			t.HostVolume, t.Replace = r.task.HostVolume, false
			if r.task.Reservation != nil {
				res := *r.task.Reservation
				t.Reservation = &res
			}
			return nil
		}}
	}
	var ops []mesos.Offer_Operation
	var launchOps []mesos.Offer_Operation
	var infos []mesos.TaskInfo
	var launched []prepared
	if len(updates) > 0 {
		results, err := l.store.ApplyTaskUpdates(ctx, updates)
		if err != nil {
			return fmt.Errorf("record STAGING: %w", err)
		}
		for i, r := range results {
			key := ready[i].key.String()
			l.queue.Remove(key)
			if r.Err != nil {
				glog.V(1).Infof("launcher: %s not launched: %v", key, r.Err)
				continue
			}
			if rel := ready[i].release; rel != nil {
				ops = append(ops, releaseOps(rel.Reserved, opIDs[i])...)
				continue
			}
			if len(ready[i].reserve) > 0 {
				launchOps = append(launchOps, mesos.Offer_Operation{Type: mesos.Offer_Operation_RESERVE, Reserve: &mesos.Offer_Operation_Reserve{Resources: ready[i].reserve}})
			}
			if len(ready[i].create) > 0 {
				launchOps = append(launchOps, mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, Create: &mesos.Offer_Operation_Create{Volumes: ready[i].create}})
			}
			infos = append(infos, ready[i].info)
			launched = append(launched, ready[i])
		}
	}
	for _, o := range orphans {
		glog.Infof("launcher: releasing reservation %s (%s-%d) on agent %s: no task owns it", o.Demand.ReservationID, o.Demand.Key.Instance, o.Demand.Key.Ordinal, o.AgentID.Value)
		ops = append(ops, releaseOps(o.Reserved, "")...)
	}
	// What ops holds so far are releases; the launches follow them.
	launches, releases := len(infos) > 0, len(ops) > 0
	ops = append(ops, launchOps...)
	if launches {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: infos}})
	}
	if len(ops) == 0 {
		return errors.New("no placed task is still queued")
	}
	l.crashPoint(launches, releases, "before-accept")
	if err := l.acceptor.Accept(ctx, launch.OfferIDs, ops, l.cfg.Refuse); err != nil {
		l.unlaunch(ctx, launched)
		return fmt.Errorf("ACCEPT on agent %s: %w", launch.AgentID.Value, err)
	}
	l.crashPoint(launches, releases, "after-accept")
	for _, r := range launched {
		how := "host volume"
		if res := r.task.Reservation; res != nil {
			how = "reservation " + res.ResourceID
			if len(r.reserve) > 0 {
				how = "new " + how + ", volume " + res.PersistenceID
			}
		}
		glog.Infof("launcher: launched %s (%s) on agent %s (%s) ports %v, %s", r.task.TaskID, r.task.Role, r.task.AgentID, r.task.Host, r.task.Ports, how)
	}
	return nil
}

// ReleaseOpInfix joins a reservation's resource ID and the time in the ID
// of an operation that releases it.
const ReleaseOpInfix = ".release."

// ReleaseOpID names one release (the UNRESERVE) of the reservation: its
// resource ID, then when it was sent.
func ReleaseOpID(resourceID string, at time.Time) string {
	return resourceID + ReleaseOpInfix + strconv.FormatInt(at.UnixNano(), 10)
}

// ReleaseOpSent is when the release operation id was sent; ok is false for
// an ID ReleaseOpID did not make.
func ReleaseOpSent(id string) (at time.Time, ok bool) {
	i := strings.LastIndex(id, ReleaseOpInfix)
	if i < 0 {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(id[i+len(ReleaseOpInfix):], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// crashPoint calls the crash hook for what the ACCEPT carries.
func (l *Launcher) crashPoint(launches, releases bool, when string) {
	if l.cfg.CrashPoint == nil {
		return
	}
	if launches {
		l.cfg.CrashPoint("launch:" + when)
	}
	if releases {
		l.cfg.CrashPoint("release:" + when)
	}
}

// releaseOps destroys the reservation's volume and unreserves all of it;
// opID (when set) asks Mesos for feedback on the UNRESERVE, which frees
// the last of it.
func releaseOps(r *offermgr.Reserved, opID string) []mesos.Offer_Operation {
	var ops []mesos.Offer_Operation
	all := r.All().Clone()
	if v := r.Volume(); v != nil {
		ops = append(ops, mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY, Destroy: &mesos.Offer_Operation_Destroy{Volumes: []mesos.Resource{*v}}})
		for i := range all {
			if all[i].GetDisk().GetPersistence() != nil {
				all[i].Disk = nil
			}
		}
	}
	un := mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, Unreserve: &mesos.Offer_Operation_Unreserve{Resources: all}}
	if opID != "" {
		un.ID = &mesos.OperationID{Value: opID}
	}
	return append(ops, un)
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

	prep := prepared{key: key, task: t, prevAtt: prevAtt}
	taskRes, execRes := p.Resources, p.ExecutorResources
	switch {
	case p.Reserved != nil:
		if t.Reservation == nil || t.Reservation.ResourceID != p.Reserved.ID || t.Reservation.Releasing {
			return prepared{}, fmt.Errorf("%w: the offered reservation %s is not the task's", errNotQueued, p.Reserved.ID)
		}
	case l.reserves(inst, t):
		if old := t.Reservation; old != nil {
			glog.Warningf("launcher: %s: its reservation %s on agent %s was not offered in time; placing it afresh (the old one is released if its agent comes back)", t.Name, old.ResourceID, old.AgentID)
		}
		var err error
		taskRes, execRes, prep.reserve, prep.create, err = l.newReservation(inst, t, p)
		if err != nil {
			return prepared{}, err
		}
	default:
		t.HostVolume = true
	}

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
	prep.info = mesos.TaskInfo{
		Name:      t.Name,
		TaskID:    mesos.TaskID{Value: t.TaskID},
		AgentID:   p.AgentID,
		Resources: taskRes,
		Executor:  l.executorInfo(t, execRes),
		Data:      raw,
		Labels: &mesos.Labels{Labels: []mesos.Label{
			{Key: "stateful.instance", Value: &inst.Name},
			{Key: "stateful.role", Value: ptr(string(t.Role))},
		}},
	}
	return prep, nil
}

// reserves says whether the task's launch makes a new reservation: every
// ordinal does, except when reservations are off, the spec has no disk
// for a volume, or the ordinal ran before reservations existed (it has an
// attempt, a sticky agent and no reservation: its data is in a host
// directory, which it keeps).
func (l *Launcher) reserves(inst *stateful.Instance, t *stateful.Task) bool {
	if l.cfg.Role == "" || l.cfg.Role == "*" || inst.Spec.Disk <= 0 {
		return false
	}
	if t.Replace {
		return true
	}
	if t.HostVolume {
		return false
	}
	if t.Reservation != nil {
		return true // never confirmed and not offered: reserve anew
	}
	return t.Attempt <= 1 || t.StickyAgentID == ""
}

// newReservation turns the placed (unreserved) resources into the
// ordinal's reservation: RESERVE of the task's and the executor's parts,
// CREATE of the volume on the task's disk, and the resources the task and
// its executor launch with. It records the reservation in t.
func (l *Launcher) newReservation(inst *stateful.Instance, t *stateful.Task, p offermgr.Placement) (taskRes, execRes, reserve, create mesos.Resources, err error) {
	id := fmt.Sprintf("%s-%d.%s", inst.Name, t.Ordinal, strconv.FormatInt(l.cfg.Now().UnixNano(), 36))
	labels := func(part string) *mesos.Labels {
		return &mesos.Labels{Labels: []mesos.Label{
			{Key: offermgr.LabelFramework, Value: ptr(l.cfg.Framework)},
			{Key: offermgr.LabelInstance, Value: ptr(inst.Name)},
			{Key: offermgr.LabelOrdinal, Value: ptr(strconv.Itoa(t.Ordinal))},
			{Key: offermgr.LabelResourceID, Value: ptr(id)},
			{Key: offermgr.LabelPart, Value: ptr(part)},
		}}
	}
	reserved := func(rs mesos.Resources, part string) mesos.Resources {
		out := rs.Clone()
		for i := range out {
			out[i].Role = ptr(l.cfg.Role)
			out[i].Reservations = nil
			ri := &mesos.Resource_ReservationInfo{Labels: labels(part)}
			if l.cfg.Principal != "" {
				ri.Principal = ptr(l.cfg.Principal)
			}
			out[i].Reservation = ri
		}
		return out
	}
	taskRes = reserved(p.Resources, offermgr.PartTask)
	execRes = reserved(p.ExecutorResources, offermgr.PartExecutor)
	reserve = append(append(mesos.Resources{}, taskRes...), execRes...)
	disk := -1
	for i := range taskRes {
		if taskRes[i].Name == "disk" {
			disk = i
		}
	}
	if disk < 0 {
		return nil, nil, nil, nil, errors.New("placement has no disk for the volume")
	}
	vol := taskRes[disk]
	vol.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id},
		Volume:      &mesos.Volume{ContainerPath: VolumeContainerPath, Mode: mesos.RW.Enum()},
	}
	if l.cfg.Principal != "" {
		vol.Disk.Persistence.Principal = ptr(l.cfg.Principal)
	}
	taskRes[disk] = vol
	create = mesos.Resources{vol}
	t.Reservation = &stateful.Reservation{
		ResourceID:    id,
		PersistenceID: id,
		AgentID:       p.AgentID.Value,
		Host:          p.Hostname,
		Role:          l.cfg.Role,
		Principal:     l.cfg.Principal,
		DiskMB:        vol.GetScalar().GetValue(),
		ContainerPath: VolumeContainerPath,
		ExecutorPart:  len(execRes) > 0,
	}
	return taskRes, execRes, reserve, create, nil
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
	if l.needsVolume(spec) && t.Reservation != nil {
		d.Volume = &protocol.Volume{SandboxPath: t.Reservation.ContainerPath, ContainerPath: spec.Volume}
	} else if l.needsVolume(spec) {
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
func (l *Launcher) executorInfo(t *stateful.Task, res mesos.Resources) *mesos.ExecutorInfo {
	cmd := l.cfg.Executor
	cmd.URIs = append([]mesos.CommandInfo_URI(nil), cmd.URIs...)
	cmd.Arguments = append([]string(nil), cmd.Arguments...)
	return &mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: reconcile.ExecutorID(t.TaskID)},
		Name:       ptr("stateful executor of " + t.TaskID),
		Command:    &cmd,
		Resources:  res,
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
