package stateful

import "fmt"

// InstanceType is the shape of an instance.
type InstanceType string

const (
	// TypeSingle is one master and no slaves.
	TypeSingle InstanceType = "S"
	// TypeMasterSlave is one master and zero or more slaves replicating it.
	TypeMasterSlave InstanceType = "MS"
	// TypeCluster is Masters equal peers and no slaves.
	TypeCluster InstanceType = "C"
)

// Valid reports whether t is one of the known types.
func (t InstanceType) Valid() bool {
	switch t {
	case TypeSingle, TypeMasterSlave, TypeCluster:
		return true
	}
	return false
}

// InstanceStatus is an instance's lifecycle status.
type InstanceStatus string

const (
	// StatusCreating: accepted, not every task has reached RUNNING yet.
	StatusCreating InstanceStatus = "CREATING"
	// StatusRunning: every expected task is RUNNING (and healthy).
	StatusRunning InstanceStatus = "RUNNING"
	// StatusDegraded: a task is missing or unhealthy by a fault (it ended,
	// its agent was lost, it failed its health check) and is being
	// replaced.
	StatusDegraded InstanceStatus = "DEGRADED"
	// StatusUpdating: planned work is under way and nothing else is amiss:
	// a spec change is being rolled out, a switchover or a relaunch a
	// callback asked for.
	StatusUpdating InstanceStatus = "UPDATING"
	// StatusScaling: tasks are being added or removed after a scale
	// change, and nothing else is amiss.
	StatusScaling InstanceStatus = "SCALING"
	// StatusDeleting: a destroy was accepted; tasks are being killed.
	StatusDeleting InstanceStatus = "DELETING"
)

// Valid reports whether s is one of the known statuses.
func (s InstanceStatus) Valid() bool {
	switch s {
	case StatusCreating, StatusRunning, StatusDegraded, StatusUpdating, StatusScaling, StatusDeleting:
		return true
	}
	return false
}

// Role is a task's role within its instance.
type Role string

const (
	RoleMaster Role = "master"
	RoleSlave  Role = "slave"
	RolePeer   Role = "peer"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleMaster, RoleSlave, RolePeer:
		return true
	}
	return false
}

// TaskState is a task's state: Mesos' TaskState names, plus QUEUED for a
// task that waits for an offer.
type TaskState string

const (
	// TaskQueued is ours: the task should run and waits to be placed.
	TaskQueued TaskState = "QUEUED"

	TaskStaging        TaskState = "TASK_STAGING"
	TaskStarting       TaskState = "TASK_STARTING"
	TaskRunning        TaskState = "TASK_RUNNING"
	TaskKilling        TaskState = "TASK_KILLING"
	TaskFinished       TaskState = "TASK_FINISHED"
	TaskFailed         TaskState = "TASK_FAILED"
	TaskKilled         TaskState = "TASK_KILLED"
	TaskError          TaskState = "TASK_ERROR"
	TaskLost           TaskState = "TASK_LOST"
	TaskDropped        TaskState = "TASK_DROPPED"
	TaskUnreachable    TaskState = "TASK_UNREACHABLE"
	TaskGone           TaskState = "TASK_GONE"
	TaskGoneByOperator TaskState = "TASK_GONE_BY_OPERATOR"
	TaskUnknown        TaskState = "TASK_UNKNOWN"
)

// taskStates lists every known state, in lifecycle order.
var taskStates = [...]TaskState{
	TaskQueued, TaskStaging, TaskStarting, TaskRunning, TaskKilling,
	TaskFinished, TaskFailed, TaskKilled, TaskError, TaskLost, TaskDropped,
	TaskUnreachable, TaskGone, TaskGoneByOperator, TaskUnknown,
}

// ParseTaskState returns the TaskState named s, or an error for a name that
// is neither a Mesos task state nor QUEUED.
func ParseTaskState(s string) (TaskState, error) {
	for _, st := range taskStates {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown task state %q", s)
}

// Valid reports whether s is a known state.
func (s TaskState) Valid() bool {
	_, err := ParseTaskState(string(s))
	return err == nil
}

// IsTerminal reports whether Mesos will send no further update for this
// attempt (Mesos' own definition: FINISHED, FAILED, KILLED, ERROR, LOST,
// DROPPED, GONE, GONE_BY_OPERATOR). UNREACHABLE and UNKNOWN are not terminal:
// the task may come back.
func (s TaskState) IsTerminal() bool {
	switch s {
	case TaskFinished, TaskFailed, TaskKilled, TaskError, TaskLost,
		TaskDropped, TaskGone, TaskGoneByOperator:
		return true
	}
	return false
}

// IsLaunched reports whether an attempt was handed to Mesos and has not
// ended: STAGING, STARTING, RUNNING, KILLING, UNREACHABLE or UNKNOWN. Such a
// task holds (or may still hold) resources on its agent and must be killed or
// reconciled before its ordinal is launched again.
func (s TaskState) IsLaunched() bool {
	switch s {
	case TaskStaging, TaskStarting, TaskRunning, TaskKilling,
		TaskUnreachable, TaskUnknown:
		return true
	}
	return false
}

// IsRunning reports whether the task is TASK_RUNNING.
func (s TaskState) IsRunning() bool { return s == TaskRunning }

// IsQueued reports whether the task waits for an offer.
func (s TaskState) IsQueued() bool { return s == TaskQueued }
