// Package wire is the contract between the localmesos master and its agents.
//
// On a real cluster the Mesos master and agents exchange libprocess messages
// (RunTaskMessage, StatusUpdateMessage, ExitedExecutorMessage, ...). Here both
// live in one process, so those messages become method calls on the two
// interfaces below. The semantics follow the messages they stand for:
//
//   - Every method is a one-way message. It must return quickly, must not
//     block on the sender, and must never call back into the sender before
//     returning. Implementations put the message on their own Mailbox and act
//     on it from their own goroutine, which also gives Mesos' per-pair
//     ordering (messages from one sender to one receiver arrive in order).
//   - Delivery is best effort, as on the network: a message to a stopped
//     agent or to a master that failed over is dropped. Reliability comes from
//     the same places as on Mesos: the agent's status update manager retries
//     until acknowledged, and agents re-register with their full state.
package wire

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Master is what an agent sends to the master.
type Master interface {
	// RegisterAgent is sent when an agent starts, and again after it
	// restarts (agent recovery) or after the master failed over. A
	// re-registration carries everything the agent still runs.
	RegisterAgent(reg Registration)

	// StatusUpdate forwards the head of one task's status update stream.
	// The master passes it to the framework (dropping it while the framework
	// is disconnected; the agent retries) and uses LatestState to release the
	// task's resources as soon as the agent knows the task is terminal.
	StatusUpdate(agentID mesos.AgentID, u StatusUpdate)

	// ExecutorExited reports that an executor process ended. Status is the
	// raw waitpid status (-1 if unknown). Command executors are reported too;
	// the master sends FAILURE only for custom executors.
	ExecutorExited(agentID mesos.AgentID, frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, status int32)

	// ExecutorMessage carries a MESSAGE call of an executor to its framework.
	ExecutorMessage(agentID mesos.AgentID, frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, data []byte)

	// OperationStatus is the agent's answer to an ApplyOperation that has
	// an operation ID: OPERATION_FINISHED (with a uuid) once the agent has
	// checkpointed the result.
	OperationStatus(agentID mesos.AgentID, u OperationUpdate)
}

// Agent is what the master sends to an agent.
type Agent interface {
	// RunTask launches a task. Executor is nil for a command task
	// (TaskInfo.command set), which the agent runs under its built-in command
	// executor with executor ID = task ID. Resources already carry
	// allocation_info where the master injects it.
	RunTask(framework mesos.FrameworkInfo, executor *mesos.ExecutorInfo, task mesos.TaskInfo)

	// RunTaskGroup launches a task group on one executor, atomically.
	RunTaskGroup(framework mesos.FrameworkInfo, executor mesos.ExecutorInfo, group mesos.TaskGroupInfo)

	// KillTask asks the task's executor to kill it. A task not yet delivered
	// to its executor ends TASK_KILLED with REASON_TASK_KILLED_DURING_LAUNCH.
	// A task unknown to the agent is answered with a TASK_LOST/TASK_GONE
	// status update as a real agent does.
	KillTask(frameworkID mesos.FrameworkID, taskID mesos.TaskID, policy *mesos.KillPolicy)

	// ShutdownExecutor sends SHUTDOWN to one executor and destroys it after
	// the shutdown grace period.
	ShutdownExecutor(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID)

	// ShutdownFramework removes a framework (teardown or failover timeout):
	// SHUTDOWN to each of its executors, destroy after the grace period, and
	// drop its status updates (no more updates are sent for it).
	ShutdownFramework(frameworkID mesos.FrameworkID)

	// FrameworkMessage delivers a scheduler MESSAGE call to an executor.
	FrameworkMessage(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, data []byte)

	// Acknowledge is a scheduler's ACKNOWLEDGE of the update with this uuid.
	// The agent pops the head of that task's stream and forwards the next.
	Acknowledge(frameworkID mesos.FrameworkID, taskID mesos.TaskID, uuid []byte)

	// UpdateFramework tells the agent that the framework (re-)subscribed, so
	// the agent resends the head of every pending update stream at once.
	UpdateFramework(framework mesos.FrameworkInfo)

	// Reregister tells the agent that the master failed over: the agent
	// sends RegisterAgent again with its full state.
	Reregister()

	// ApplyOperation is Mesos' ApplyOperationMessage for a RESERVE,
	// UNRESERVE, CREATE or DESTROY the master has already applied: the
	// agent creates or removes volume directories, checkpoints its new
	// reservations and volumes, and answers with OperationStatus when the
	// operation has an ID.
	ApplyOperation(op ApplyOperation)
}

// ApplyOperation is one offer operation on an agent's own resources.
type ApplyOperation struct {
	// FrameworkID is the framework whose ACCEPT carried the operation;
	// nil for the operator endpoints.
	FrameworkID *mesos.FrameworkID
	Operation   mesos.Offer_Operation
	// Checkpointed is every dynamic reservation and persistent volume of
	// the agent once the operation is applied (legacy format, no
	// allocation_info): what the agent checkpoints and reports when it
	// registers again.
	Checkpointed []mesos.Resource
}

// OperationUpdate is an operation status as an agent sends it.
type OperationUpdate struct {
	FrameworkID mesos.FrameworkID
	// Status has operation_id, state, uuid and agent_id.
	Status mesos.OperationStatus
}

// Registration is an agent's (re-)registration with the master.
type Registration struct {
	// Agent is the handle the master sends messages to.
	Agent Agent
	// Info has the agent's ID, hostname, port and total resources.
	Info mesos.AgentInfo
	// Address is the agent's host:port (its MESOS_AGENT_ENDPOINT).
	Address string
	// Reregistration is false only for the first registration of the agent.
	Reregistration bool
	// Frameworks, Executors and Tasks are what the agent still runs. Empty
	// for a first registration.
	Frameworks []mesos.FrameworkInfo
	Executors  []mesos.ExecutorInfo
	Tasks      []mesos.Task
	// Checkpointed are the agent's dynamic reservations and persistent
	// volumes (legacy format, no allocation_info), sent with every
	// registration, the first one included: they live in the agent's work
	// dir, not under its ID. Info.Resources stays the static total.
	Checkpointed []mesos.Resource
}

// StatusUpdate is one status update as an agent forwards it to the master.
type StatusUpdate struct {
	FrameworkID mesos.FrameworkID
	// Status is complete as the scheduler will see it: agent_id,
	// executor_id, timestamp, uuid (reliable updates), source, reason,
	// container_status.
	Status mesos.TaskStatus
	// LatestState is the latest state the agent knows for the task, which
	// may already be terminal while Status (the stream's head) is not.
	LatestState mesos.TaskState
}
