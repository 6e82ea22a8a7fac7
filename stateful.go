// Package stateful is the public vocabulary of the toolkit: instances, tasks,
// their specs and states, and the Workload callback interface a framework
// author implements.
//
// It is a leaf package: it imports only the standard library, so every other
// part of the toolkit (and every framework built on it) can depend on it
// without cycles.
//
// The JSON field names of Instance, Spec and Task are a contract: the REST API
// serves these documents, statemgr stores them in etcd, and scripts read them.
// Fields may be added; existing names never change.
package stateful

import (
	"maps"
	"slices"
	"time"
)

// Instance is a named deployment of the workload: the desired state (type,
// counts, spec) plus the instance-level status the toolkit derives from its
// tasks.
type Instance struct {
	// Name is a DNS label (1-63 chars of [a-z0-9-], no leading or trailing
	// '-'); it names the instance's tasks and keys in etcd.
	Name string `json:"name"`
	// Type is S (one master), MS (one master, 0+ slaves) or C (peers).
	Type InstanceType `json:"type"`
	// Masters is the expected number of masters (S, MS: 1) or peers (C).
	Masters int `json:"masters"`
	// Slaves is the expected number of slaves (MS only).
	Slaves int `json:"slaves"`
	// Status is the instance's lifecycle status; empty in a create request.
	Status InstanceStatus `json:"status,omitempty"`
	// Generation is bumped on every spec or scale change, so a task launched
	// under an older generation can be recognised and rolled.
	Generation int64 `json:"generation"`
	// Spec is what each task of the instance needs.
	Spec Spec `json:"spec"`
	// MasterOrdinal is the ordinal of the task holding the master role (S and
	// MS). It moves on failover; the task documents' roles agree with it.
	// Unused for C, whose peers are all masters.
	MasterOrdinal int `json:"master_ordinal"`
	// Switchover is a planned change of master that was asked for
	// (POST /v1/instances/{name}/switchover) or that a rolling spec change
	// started for the master's turn; nil when none is pending. It is
	// stored, so a scheduler restart carries it on.
	Switchover *Switchover `json:"switchover,omitempty"`
	// RolloutPaused holds a rolling spec change where it is: no further
	// task is relaunched until it is resumed.
	RolloutPaused bool `json:"rollout_paused,omitempty"`
	// PreviousSpec is the spec before the last spec change, and
	// SpecGeneration the generation that change made: tasks of an older
	// generation still run PreviousSpec, which aborting the rollout
	// restores.
	PreviousSpec   *Spec `json:"previous_spec,omitempty"`
	SpecGeneration int64 `json:"spec_generation,omitempty"`
	// Message explains the status, e.g. why the instance is DEGRADED.
	Message   string    `json:"message,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`

	// Tasks is filled when the instance is served with its tasks (REST GET);
	// statemgr stores tasks under their own keys and never in the instance
	// document.
	Tasks []*Task `json:"tasks,omitempty"`
}

// Switchover is a pending planned change of master.
type Switchover struct {
	// To is the ordinal to promote; -1 lets the toolkit pick the healthy
	// slave that has replicated the most.
	To int `json:"to"`
	// Reason is "requested" (an operator asked) or "update" (the master's
	// turn in a rolling spec change).
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requested_at,omitzero"`
}

// Reasons of a Switchover.
const (
	SwitchoverRequested = "requested"
	SwitchoverUpdate    = "update"
)

// TaskCount returns how many tasks the instance should have.
func (inst *Instance) TaskCount() int { return inst.Masters + inst.Slaves }

// RoleFor returns the role the given ordinal holds when the instance is
// created: for S and MS ordinal 0 is the master and the rest are slaves; for C
// every ordinal is a peer. After a failover the roles stored on the tasks are
// the truth, not this function.
func (inst *Instance) RoleFor(ordinal int) Role {
	if inst.Type == TypeCluster {
		return RolePeer
	}
	if ordinal < inst.Masters {
		return RoleMaster
	}
	return RoleSlave
}

// InitialTasks returns the task documents of a newly accepted instance, all
// QUEUED: ordinals 0..TaskCount()-1 with the roles RoleFor gives.
func (inst *Instance) InitialTasks(now time.Time) []*Task {
	tasks := make([]*Task, 0, inst.TaskCount())
	for n := range inst.TaskCount() {
		tasks = append(tasks, NewTask(inst, n, inst.RoleFor(n), now))
	}
	return tasks
}

// Clone returns a deep copy: no map, slice or pointer is shared with inst.
func (inst *Instance) Clone() *Instance {
	if inst == nil {
		return nil
	}
	c := *inst
	c.Spec = inst.Spec.Clone()
	if inst.Switchover != nil {
		so := *inst.Switchover
		c.Switchover = &so
	}
	if inst.PreviousSpec != nil {
		ps := inst.PreviousSpec.Clone()
		c.PreviousSpec = &ps
	}
	if inst.Tasks != nil {
		c.Tasks = make([]*Task, len(inst.Tasks))
		for i, t := range inst.Tasks {
			c.Tasks[i] = t.Clone()
		}
	}
	return &c
}

// Network is how a task's ports reach the outside.
type Network string

const (
	// NetworkHost shares the agent's network namespace; ports come from the
	// agent's port resources and the workload binds them directly.
	NetworkHost Network = "host"
	// NetworkBridge runs the container on a Docker bridge; agent ports are
	// mapped to the container's ports.
	NetworkBridge Network = "bridge"
)

// Spec is what each task of an instance needs. Zero values mean "not given"
// and are filled by WithDefaults from the workload's defaults.
type Spec struct {
	// CPU in cores (Mesos "cpus").
	CPU float64 `json:"cpu"`
	// Mem in MB (Mesos "mem").
	Mem float64 `json:"mem"`
	// Disk in MB (Mesos "disk"); the volume lives in it.
	Disk float64 `json:"disk"`
	// Image is the Docker image (Docker runtime).
	Image string `json:"image,omitempty"`
	// Command is a shell command line: the process to run (process runtime)
	// or the command run in the image (Docker runtime).
	Command string `json:"command,omitempty"`
	// Network is host or bridge.
	Network Network `json:"network,omitempty"`
	// Ports names the ports the task needs, e.g. ["redis"]; numbers are
	// assigned at placement and reported in Task.Ports.
	Ports []string `json:"ports,omitempty"`
	// Env is added to the task's environment.
	Env map[string]string `json:"env,omitempty"`
	// Volume is the path inside the task that must survive restarts.
	Volume string `json:"volume,omitempty"`
	// Health is the task's health check; nil means running is healthy.
	Health *HealthCheck `json:"health,omitempty"`
}

// HealthCheck is a command or TCP check the executor runs against a task.
// Exactly one of Command and TCP is set.
type HealthCheck struct {
	// Command is a shell command run inside the task; exit 0 is healthy.
	Command string `json:"command,omitempty"`
	// TCP names one of the spec's ports; a successful connect is healthy.
	TCP string `json:"tcp,omitempty"`
	// IntervalS is the time between checks, in seconds.
	IntervalS float64 `json:"interval_s,omitempty"`
	// GraceS is the time after start during which failures do not count.
	GraceS float64 `json:"grace_s,omitempty"`
	// TimeoutS bounds one check; it must not exceed IntervalS.
	TimeoutS float64 `json:"timeout_s,omitempty"`
	// ConsecutiveFailures is how many failed checks in a row make the
	// executor kill a task that was running, so that it is replaced. Unset
	// means DefaultHealthConsecutiveFailures; 0 means never kill (failures
	// are only reported). Set it high or to 0 for a check that fails for
	// reasons a replacement would not fix, e.g. a replica whose master is
	// gone.
	ConsecutiveFailures *int `json:"consecutive_failures,omitempty"`
}

// Defaults applied by WithDefaults when neither the request nor the
// workload's defaults say otherwise.
const (
	DefaultNetwork         = NetworkHost
	DefaultHealthIntervalS = 10.0
	DefaultHealthGraceS    = 30.0
	DefaultHealthTimeoutS  = 5.0
	// DefaultHealthConsecutiveFailures is Mesos' own default.
	DefaultHealthConsecutiveFailures = 3
)

// Interval returns IntervalS as a duration.
func (h *HealthCheck) Interval() time.Duration { return seconds(h.IntervalS) }

// Grace returns GraceS as a duration.
func (h *HealthCheck) Grace() time.Duration { return seconds(h.GraceS) }

// Timeout returns TimeoutS as a duration.
func (h *HealthCheck) Timeout() time.Duration { return seconds(h.TimeoutS) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// WithDefaults returns a copy of s in which every field the request left out
// (zero value) is taken from defaults, and then from the package defaults
// (network host; health interval, grace and timeout). Env maps are merged,
// the request's values winning. Ports are taken whole from defaults when the
// request names none. A health check given by the request keeps its own
// command/tcp but borrows missing timings from the defaults' check.
// The result still has to pass Validate.
func (s Spec) WithDefaults(defaults Spec) Spec {
	out := s.Clone()
	d := defaults.Clone()
	if out.CPU == 0 {
		out.CPU = d.CPU
	}
	if out.Mem == 0 {
		out.Mem = d.Mem
	}
	if out.Disk == 0 {
		out.Disk = d.Disk
	}
	if out.Image == "" {
		out.Image = d.Image
	}
	if out.Command == "" {
		out.Command = d.Command
	}
	if out.Network == "" {
		out.Network = d.Network
	}
	if out.Network == "" {
		out.Network = DefaultNetwork
	}
	if out.Ports == nil {
		out.Ports = d.Ports
	}
	if len(d.Env) > 0 {
		env := d.Env
		maps.Copy(env, out.Env)
		out.Env = env
	}
	if out.Volume == "" {
		out.Volume = d.Volume
	}
	switch {
	case out.Health == nil:
		out.Health = d.Health
	case d.Health != nil:
		if out.Health.IntervalS == 0 {
			out.Health.IntervalS = d.Health.IntervalS
		}
		if out.Health.GraceS == 0 {
			out.Health.GraceS = d.Health.GraceS
		}
		if out.Health.TimeoutS == 0 {
			out.Health.TimeoutS = d.Health.TimeoutS
		}
		if out.Health.ConsecutiveFailures == nil && d.Health.ConsecutiveFailures != nil {
			n := *d.Health.ConsecutiveFailures
			out.Health.ConsecutiveFailures = &n
		}
	}
	if h := out.Health; h != nil {
		if h.IntervalS == 0 {
			h.IntervalS = DefaultHealthIntervalS
		}
		if h.GraceS == 0 {
			h.GraceS = DefaultHealthGraceS
		}
		if h.TimeoutS == 0 {
			h.TimeoutS = min(DefaultHealthTimeoutS, h.IntervalS)
		}
	}
	return out
}

// Clone returns a deep copy of s.
func (s Spec) Clone() Spec {
	c := s
	c.Ports = slices.Clone(s.Ports)
	c.Env = maps.Clone(s.Env)
	if s.Health != nil {
		h := *s.Health
		if h.ConsecutiveFailures != nil {
			n := *h.ConsecutiveFailures
			h.ConsecutiveFailures = &n
		}
		c.Health = &h
	}
	return c
}

// HasPort reports whether the spec names the port.
func (s Spec) HasPort(name string) bool { return slices.Contains(s.Ports, name) }

// Task is one process of an instance. Its identity (Instance, Ordinal, Name)
// is stable across relaunches; TaskID and Attempt change with every launch.
type Task struct {
	// Instance is the name of the instance the task belongs to.
	Instance string `json:"instance"`
	// Ordinal is the task's stable number within the instance, from 0.
	Ordinal int `json:"ordinal"`
	// Name is <instance>-<ordinal>.
	Name string `json:"name"`
	// Role is master, slave or peer; it changes on failover.
	Role Role `json:"role"`
	// State is the last state Mesos reported, or QUEUED before a launch.
	State TaskState `json:"state"`
	// Healthy is the last health verdict of the executor (false until the
	// first passing check).
	Healthy bool `json:"healthy"`
	// HealthMessage is why the last health verdict was unhealthy (the
	// failing check's error); empty while healthy.
	HealthMessage string `json:"health_message,omitempty"`
	// TaskID is the Mesos task ID of the current attempt,
	// <instance>-<ordinal>.<attempt>; empty before the first launch.
	TaskID string `json:"task_id"`
	// Attempt counts launches of this ordinal, from 1; 0 before the first.
	Attempt int `json:"attempt"`
	// AgentID and Host are where the current attempt was placed.
	AgentID string `json:"agent_id"`
	Host    string `json:"host"`
	// Ports maps the spec's port names to the numbers assigned at placement.
	Ports map[string]int `json:"ports"`
	// Stats holds the latest figures the executor collected (workload
	// specific, e.g. {"role": "master", "replication_offset": "1234"}).
	Stats map[string]string `json:"stats"`
	// Message is the last human-readable message (Mesos status message or
	// the toolkit's note).
	Message string `json:"message"`
	// Reason is the Mesos reason of the last status update, if any.
	Reason string `json:"reason,omitempty"`
	// Generation is the instance generation this attempt was launched with.
	Generation int64 `json:"generation"`

	// StickyAgentID and StickyHost are the agent that holds the task's
	// volume: a relaunch goes back there when it is offered and falls back to
	// another agent only after a configurable wait counted from QueuedAt.
	StickyAgentID string `json:"sticky_agent_id,omitempty"`
	StickyHost    string `json:"sticky_host,omitempty"`
	// QueuedAt is when the task last entered QUEUED.
	QueuedAt time.Time `json:"queued_at,omitzero"`
	// Unplaced says why the last offers could not take a queued task
	// (e.g. "mem exhausted on 3 agents"), for operators.
	Unplaced string `json:"unplaced,omitempty"`
	// UpdatedAt is when the document last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`

	// Bookkeeping of the scheduler's reconcile loops, stored with the task
	// so that a restarted scheduler neither repeats nor skips a callback.
	//
	// PreparedAttempt is the launch attempt StartMaster/StartSlave last
	// returned nil for: a QUEUED task is offered for placement once it is
	// Attempt+1.
	PreparedAttempt int `json:"prepared_attempt,omitempty"`
	// NotifiedAttempt is the attempt MasterRunning/SlaveRunning last
	// returned nil for.
	NotifiedAttempt int `json:"notified_attempt,omitempty"`
	// Relaunch is set while the current attempt is being killed so that
	// the ordinal can be launched again (Handle.Relaunch, a spec change):
	// once the attempt has ended the task is queued again without
	// MasterLost/SlaveLost.
	Relaunch bool `json:"relaunch,omitempty"`
	// Planned is set while an attempt relaunched on purpose (Relaunch) is
	// on its way back, until it is RUNNING and healthy: its absence is
	// planned work (status UPDATING), not a fault (DEGRADED).
	Planned bool `json:"planned,omitempty"`
}

// NewTask returns a QUEUED task of inst with the given ordinal and role.
func NewTask(inst *Instance, ordinal int, role Role, now time.Time) *Task {
	return &Task{
		Instance:   inst.Name,
		Ordinal:    ordinal,
		Name:       TaskName(inst.Name, ordinal),
		Role:       role,
		State:      TaskQueued,
		Generation: inst.Generation,
		QueuedAt:   now,
		UpdatedAt:  now,
	}
}

// Requeue puts the task back in QUEUED for a new attempt: the agent it ran on
// becomes its sticky agent (it holds the volume), and everything about the
// old attempt except TaskID and Attempt (which NextTaskID continues from) is
// cleared.
func (t *Task) Requeue(now time.Time) {
	if t.AgentID != "" {
		t.StickyAgentID, t.StickyHost = t.AgentID, t.Host
	}
	t.State = TaskQueued
	t.Healthy = false
	t.HealthMessage = ""
	t.AgentID, t.Host = "", ""
	t.Ports = nil
	t.Stats = nil
	t.Reason = ""
	t.Unplaced = ""
	t.Relaunch = false
	t.QueuedAt = now
	t.UpdatedAt = now
}

// NextTaskID returns the Mesos task ID and attempt number for the task's next
// launch. It does not modify t; the launcher records both once it decides to
// launch.
func (t *Task) NextTaskID() (string, int) {
	next := t.Attempt + 1
	return FormatTaskID(t.Instance, t.Ordinal, next), next
}

// Clone returns a deep copy of t.
func (t *Task) Clone() *Task {
	if t == nil {
		return nil
	}
	c := *t
	c.Ports = maps.Clone(t.Ports)
	c.Stats = maps.Clone(t.Stats)
	return &c
}
