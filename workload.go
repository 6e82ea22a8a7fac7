package stateful

import (
	"cmp"
	"context"
	"slices"
	"strconv"
)

// Workload is what a framework author implements: the workload's defaults
// and the callbacks the toolkit calls as an instance's tasks come and go.
// Embed BaseWorkload to implement only what the workload needs.
//
// Contract for every callback:
//   - Callbacks run in the scheduler, only while it is the leader and etcd
//     answers (never on a cache that may be stale), from the
//     toolkit's reconcile loops: at most one callback runs for a given
//     instance at a time; callbacks of different instances run concurrently.
//   - inst and task are copies of the stored state; changing them changes
//     nothing. Act through the Handle.
//   - ctx carries a deadline and is cancelled when the scheduler stops or
//     loses leadership; long work must watch it.
//   - An error or a panic is logged and the callback is called again later
//     with backoff, with the then-current state. Callbacks must therefore be
//     idempotent: calling one twice must do no more harm than calling it once.
//
// A C instance's peers use the master callbacks (StartMaster, MasterRunning,
// MasterLost).
type Workload interface {
	// Defaults returns what a create request leaves out: image, command,
	// ports, resources, health check... (see Spec.WithDefaults).
	Defaults() Spec

	// Config returns the arguments and environment for one launch of task,
	// just before the toolkit launches it. task carries the placement of this
	// launch (TaskID, Attempt, AgentID, Host, Ports); inst.Tasks holds the
	// instance's tasks as stored (e.g. the master's host and ports, which a
	// slave's launch needs). A slave of an MS instance is launched (and
	// Config called) only while its master is RUNNING as Mesos reported
	// during this scheduler's current leadership term, never on a stored
	// state that may predate a crash. An error skips this launch; the
	// task stays queued and is tried on a later offer.
	Config(ctx context.Context, inst *Instance, task *Task) (LaunchConfig, error)

	// Start is called once a new instance has been accepted and stored,
	// before its tasks are queued.
	Start(ctx context.Context, h Handle, inst *Instance) error
	// StartMaster is called each time a master (or peer) task is about to
	// be queued for launch: the first launch and every relaunch.
	StartMaster(ctx context.Context, h Handle, inst *Instance, task *Task) error
	// StartSlave is StartMaster for slave tasks.
	StartSlave(ctx context.Context, h Handle, inst *Instance, task *Task) error

	// MasterRunning is called once per attempt when a master (or peer)
	// reaches TASK_RUNNING and, if the spec has a health check, is healthy.
	MasterRunning(ctx context.Context, h Handle, inst *Instance, task *Task) error
	// SlaveRunning is MasterRunning for slave tasks; the usual place to point
	// the slave at the master. For an MS instance it waits, like a slave's
	// Config, until the master is confirmed running in the current term.
	SlaveRunning(ctx context.Context, h Handle, inst *Instance, task *Task) error

	// MasterLost is called when the current attempt of the master (or a
	// peer) has ended or become unreachable, unless the instance is being
	// deleted. It decides the failover, typically by promoting a slave
	// (see DefaultMasterLost). When it returns nil the toolkit queues a
	// replacement for the lost ordinal in whatever role it holds by then
	// (a slave after a promotion, still the master otherwise).
	MasterLost(ctx context.Context, h Handle, inst *Instance, task *Task) error
	// SlaveLost is MasterLost for slave tasks; when it returns nil the
	// toolkit queues the slave again.
	SlaveLost(ctx context.Context, h Handle, inst *Instance, task *Task) error
}

// LaunchConfig is what Config adds to one launch of a task.
type LaunchConfig struct {
	// Args are appended to the spec's command (or to the image's entrypoint
	// when the spec has no command).
	Args []string
	// Env is merged over the spec's Env for this launch.
	Env map[string]string
}

// ExecResult is the outcome of a command run inside a task.
type ExecResult struct {
	ExitCode int
	Stdout   string
	Stderr   string
}

// Handle is how callbacks act on the cluster. The toolkit implements it; its
// methods are safe for concurrent use.
type Handle interface {
	// Tasks returns copies of inst's tasks as currently stored, ordered by
	// ordinal. It reads the local cache and never blocks on the network.
	Tasks(inst *Instance) []*Task

	// Exec runs cmd (an argv, not a shell line) inside task's running
	// process: the scheduler sends it to the task's executor as a Mesos
	// framework message and waits for the reply until ctx ends. A non-zero
	// exit is reported in ExecResult, not as an error; an error means the
	// command could not be run or its reply was lost (the task is not
	// running, the executor did not answer in time). Exec is not retried:
	// after an error the command may or may not have run, so commands should
	// be idempotent.
	Exec(ctx context.Context, task *Task, cmd []string) (ExecResult, error)

	// Promote records that task now holds the master role of inst: task's
	// role becomes master, the previous master's becomes slave, and
	// inst.MasterOrdinal moves, all in one state write. It changes no
	// process; re-pointing replicas is the workload's job (Exec). Promoting
	// the current master is a no-op. It is durable when it returns nil;
	// a conflicting concurrent change makes it fail, and the callback is
	// retried.
	Promote(ctx context.Context, inst *Instance, task *Task) error

	// Relaunch kills task's current attempt (if any) and queues the same
	// ordinal again as a new attempt, sticky to the agent that holds its
	// volume. It returns once the request is stored, not when the new attempt
	// runs. Relaunching a task that is already queued is a no-op.
	Relaunch(ctx context.Context, task *Task) error
}

// ExecFunc runs cmd inside the workload of one task, in the executor. It is
// what the optional executor-side interfaces below receive.
type ExecFunc func(ctx context.Context, cmd []string) (ExecResult, error)

// StatsReporter is an optional interface of a Workload. The executor calls
// Stats on every health interval and reports the figures to the scheduler,
// which stores them in Task.Stats (and serves them in the REST API). The
// default failover policy reads StatReplicationOffset from them. Stats runs in
// the executor process, where task describes the executor's own task; exec
// runs a command inside it. An error is logged and the previous figures kept.
type StatsReporter interface {
	Stats(ctx context.Context, task *Task, exec ExecFunc) (map[string]string, error)
}

// InstanceValidator is an optional interface of a Workload: it checks that
// an instance is one the workload can run (e.g. Redis refuses type C), so
// that a create or update request it cannot run is refused with 400 instead
// of accepted and left queued. It is called with the instance as it would be
// stored (defaults applied, the toolkit's own validation passed) and must not
// block or change anything. Return a *ValidationError to name the field
// ("type", "spec.network"); any other error is reported without one.
type InstanceValidator interface {
	ValidateInstance(inst *Instance) error
}

// Redacted is what the REST API shows instead of each value of a spec's
// env to a read-only token: env is where workloads keep secrets.
const Redacted = "<redacted>"

// SpecPolicy is an optional interface of a Workload: it decides which spec
// fields an API request may set, e.g. refusing "command" (which runs any
// program on every agent) or allowing only known images. The REST API calls
// it on every create and PATCH request that gives spec fields, before
// anything is changed: given lists the spec fields the request sets, by
// JSON name ("image", "command", "env"...), and requested holds their
// values (other fields zero; a field reset with null is listed and zero).
// Return a *ValidationError naming the field ("spec.command"), answered
// 400; any other error is answered 400 naming "spec". It must not block.
// What the workload's own Defaults set is not checked: a workload may fix
// the command and image in Defaults and refuse them in requests.
type SpecPolicy interface {
	AllowSpec(given []string, requested Spec) error
}

// HealthChecker is an optional interface of a Workload: a check the executor
// runs on every health interval in addition to the spec's health check (or
// instead of it, when the spec has none). A nil error is healthy. It runs in
// the executor process like StatsReporter.Stats.
type HealthChecker interface {
	CheckHealth(ctx context.Context, task *Task, exec ExecFunc) error
}

// Initializer is an optional interface of a Workload: Init hands the
// workload the Handle once per leadership term, when the scheduler has
// assembled its parts and before it calls any other callback of that term.
// It is how Config (which receives no Handle) reads the stored tasks, e.g. a
// slave's master when inst.Tasks is empty. The Handle stays valid for the
// term; a later term calls Init again with its own. Init must not block.
type Initializer interface {
	Init(h Handle)
}

// Switchoverer is an optional interface of a Workload: a planned change of
// master (an operator's switchover, or the master's turn in a rolling spec
// change) without losing acknowledged writes. Switchover is called while
// from (the master) and to (a slave) both run and are healthy; it stops from
// taking writes, waits until to has replicated everything from acknowledged,
// makes to the master, and points from and the other running slaves at to.
// Once it returns nil the toolkit records the promotion (Handle.Promote) and
// tells the executors their new roles. Like every callback it must be
// idempotent: after an error or a scheduler restart it is called again with
// the same from and to, possibly after some steps were done.
//
// Without it, a spec change relaunches the master in place (its clients
// wait for it) and POST /v1/instances/{name}/switchover is refused.
type Switchoverer interface {
	Switchover(ctx context.Context, h Handle, inst *Instance, from, to *Task) error
}

// VolumeInitializer is an optional interface of a Workload: InitVolume
// prepares a task's volume once, before the task's process first starts on
// it, e.g. initialises a database directory, or clones the master's data
// into a new or replaced replica's volume. It runs in the executor, where
// the volume is: volume is its path on the agent; task describes the task
// (its role, host and ports); master is the instance's master as it was when
// this slave was launched (name, host, ports), nil for a master or peer or
// when the master was not placed yet. Exec is not available: the task's
// process has not started.
//
// Once InitVolume returns nil the toolkit marks the volume and never calls
// it again for it (relaunches on the same agent keep their data). An error
// fails the attempt (TASK_FAILED with the error) and the next attempt calls
// it again, so it must cope with what an interrupted call left behind. ctx
// ends when the task is killed. Without a volume in the spec it is not
// called.
type VolumeInitializer interface {
	InitVolume(ctx context.Context, task *Task, volume string, master *Task) error
}

// Well-known Task.Stats keys.
const (
	// StatRole is the role the workload itself reports (e.g. Redis' "role").
	StatRole = "role"
	// StatReplicationOffset is how far a replica has replicated (a decimal
	// integer, larger is more up to date); DefaultMasterLost prefers the
	// slave with the largest.
	StatReplicationOffset = "replication_offset"
)

// BaseWorkload implements Workload with harmless defaults; embed it and
// override what the workload needs. Its Defaults asks for small resources and
// names no image or command, so requests must give one unless Defaults is
// overridden.
type BaseWorkload struct{}

var _ Workload = BaseWorkload{}

// Defaults returns 0.1 CPU, 128 MB of memory and host networking.
func (BaseWorkload) Defaults() Spec {
	return Spec{CPU: 0.1, Mem: 128, Network: NetworkHost}
}

// Config adds nothing to the launch.
func (BaseWorkload) Config(context.Context, *Instance, *Task) (LaunchConfig, error) {
	return LaunchConfig{}, nil
}

// Start does nothing.
func (BaseWorkload) Start(context.Context, Handle, *Instance) error { return nil }

// StartMaster does nothing.
func (BaseWorkload) StartMaster(context.Context, Handle, *Instance, *Task) error { return nil }

// StartSlave does nothing.
func (BaseWorkload) StartSlave(context.Context, Handle, *Instance, *Task) error { return nil }

// MasterRunning does nothing.
func (BaseWorkload) MasterRunning(context.Context, Handle, *Instance, *Task) error { return nil }

// SlaveRunning does nothing.
func (BaseWorkload) SlaveRunning(context.Context, Handle, *Instance, *Task) error { return nil }

// MasterLost applies DefaultMasterLost.
func (BaseWorkload) MasterLost(ctx context.Context, h Handle, inst *Instance, task *Task) error {
	return DefaultMasterLost(ctx, h, inst, task)
}

// SlaveLost does nothing: the toolkit relaunches the slave.
func (BaseWorkload) SlaveLost(context.Context, Handle, *Instance, *Task) error { return nil }

// DefaultMasterLost is the default failover policy. For an MS instance it
// promotes the slave ChooseSuccessor picks from h.Tasks(inst). When no slave
// can take over (and for S and C instances) it promotes nothing and returns
// nil, so the lost master is relaunched in place, back on the agent holding
// its volume. It does not re-point the other slaves at the new master: that
// needs the workload's own command (e.g. Redis REPLICAOF), so a workload
// calls DefaultMasterLost from its MasterLost and then uses h.Exec.
func DefaultMasterLost(ctx context.Context, h Handle, inst *Instance, lost *Task) error {
	if inst.Type != TypeMasterSlave {
		return nil
	}
	tasks := h.Tasks(inst)
	// Callbacks are retried: if an earlier attempt already promoted a
	// running slave, promoting again would demote it for another one.
	for _, t := range tasks {
		if t.Role == RoleMaster && t.State.IsRunning() && (lost == nil || t.Ordinal != lost.Ordinal) {
			return nil
		}
	}
	next := ChooseSuccessor(tasks, lost)
	if next == nil {
		return nil
	}
	return h.Promote(ctx, inst, next)
}

// ChooseSuccessor picks the slave to promote when lost (the master) is gone:
// among running slaves other than lost, the healthy before the unhealthy,
// then the largest StatReplicationOffset (a missing or unparsable offset
// counts as least up to date), then the smallest ordinal. It returns nil when
// no slave is running.
func ChooseSuccessor(tasks []*Task, lost *Task) *Task {
	var candidates []*Task
	for _, t := range tasks {
		if t.Role != RoleSlave || !t.State.IsRunning() {
			continue
		}
		if lost != nil && t.Instance == lost.Instance && t.Ordinal == lost.Ordinal {
			continue
		}
		candidates = append(candidates, t)
	}
	if len(candidates) == 0 {
		return nil
	}
	return slices.MinFunc(candidates, func(a, b *Task) int {
		if a.Healthy != b.Healthy {
			if a.Healthy {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(replicationOffset(b), replicationOffset(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Ordinal, b.Ordinal)
	})
}

func replicationOffset(t *Task) int64 {
	n, err := strconv.ParseInt(t.Stats[StatReplicationOffset], 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
