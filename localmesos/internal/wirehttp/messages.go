// Package wirehttp carries the wire messages between a localmesos master
// and agents that run in different processes (or on different hosts): each
// message is an HTTP POST of a JSON body to the receiver's /wire/ endpoint,
// as libprocess sends each message as a POST to the receiving actor.
//
// Liveness follows Mesos: the master pings every registered agent every
// PingTimeout; an agent that misses MaxPingTimeouts pings in a row is marked
// unreachable (Mesos' agent_ping_timeout x max_agent_ping_timeouts). An agent
// that hears no ping for as long re-registers, and so does an agent whose
// ping says the master does not know it (Mesos' PingSlaveMessage.connected):
// that is how an agent comes back after a partition heals or after the
// master restarted.
//
// Delivery is best effort, as on the network: each direction keeps one
// ordered queue per peer and drops a message the peer does not take, except
// a registration, which is retried until delivered or superseded.
package wirehttp

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Paths of the messages. Agent to master:
const (
	pathRegister        = "/wire/master/register"
	pathStatusUpdate    = "/wire/master/status_update"
	pathExecutorExited  = "/wire/master/executor_exited"
	pathExecutorMessage = "/wire/master/executor_message"
	pathOperationStatus = "/wire/master/operation_status"
)

// Master to agent:
const (
	pathRunTask           = "/wire/agent/run_task"
	pathRunTaskGroup      = "/wire/agent/run_task_group"
	pathKillTask          = "/wire/agent/kill_task"
	pathShutdownExecutor  = "/wire/agent/shutdown_executor"
	pathShutdownFramework = "/wire/agent/shutdown_framework"
	pathFrameworkMessage  = "/wire/agent/framework_message"
	pathAcknowledge       = "/wire/agent/acknowledge"
	pathUpdateFramework   = "/wire/agent/update_framework"
	pathReregister        = "/wire/agent/reregister"
	pathApplyOperation    = "/wire/agent/apply_operation"
	pathPing              = "/wire/agent/ping"
)

// registerMsg is wire.Registration without the in-process handle: the
// master sends to Address.
type registerMsg struct {
	Info           mesos.AgentInfo       `json:"info"`
	Address        string                `json:"address"`
	Reregistration bool                  `json:"reregistration"`
	Frameworks     []mesos.FrameworkInfo `json:"frameworks,omitempty"`
	Executors      []mesos.ExecutorInfo  `json:"executors,omitempty"`
	Tasks          []mesos.Task          `json:"tasks,omitempty"`
	Checkpointed   []mesos.Resource      `json:"checkpointed,omitempty"`
}

func toRegisterMsg(r wire.Registration) registerMsg {
	return registerMsg{
		Info: r.Info, Address: r.Address, Reregistration: r.Reregistration,
		Frameworks: r.Frameworks, Executors: r.Executors, Tasks: r.Tasks, Checkpointed: r.Checkpointed,
	}
}

func (m registerMsg) registration(handle wire.Agent) wire.Registration {
	return wire.Registration{
		Agent: handle, Info: m.Info, Address: m.Address, Reregistration: m.Reregistration,
		Frameworks: m.Frameworks, Executors: m.Executors, Tasks: m.Tasks, Checkpointed: m.Checkpointed,
	}
}

type statusUpdateMsg struct {
	AgentID     mesos.AgentID     `json:"agent_id"`
	FrameworkID mesos.FrameworkID `json:"framework_id"`
	Status      mesos.TaskStatus  `json:"status"`
	LatestState mesos.TaskState   `json:"latest_state"`
}

type executorMsg struct {
	AgentID     mesos.AgentID     `json:"agent_id"`
	FrameworkID mesos.FrameworkID `json:"framework_id"`
	ExecutorID  mesos.ExecutorID  `json:"executor_id"`
	Status      int32             `json:"status,omitempty"`
	Data        []byte            `json:"data,omitempty"`
}

type operationStatusMsg struct {
	AgentID     mesos.AgentID         `json:"agent_id"`
	FrameworkID mesos.FrameworkID     `json:"framework_id"`
	Status      mesos.OperationStatus `json:"status"`
}

type runTaskMsg struct {
	Framework mesos.FrameworkInfo  `json:"framework"`
	Executor  *mesos.ExecutorInfo  `json:"executor,omitempty"`
	Task      mesos.TaskInfo       `json:"task"`
	Group     *mesos.TaskGroupInfo `json:"group,omitempty"`
}

type taskMsg struct {
	FrameworkID mesos.FrameworkID `json:"framework_id"`
	TaskID      mesos.TaskID      `json:"task_id,omitempty"`
	ExecutorID  mesos.ExecutorID  `json:"executor_id,omitempty"`
	KillPolicy  *mesos.KillPolicy `json:"kill_policy,omitempty"`
	UUID        []byte            `json:"uuid,omitempty"`
	Data        []byte            `json:"data,omitempty"`
}

type applyOperationMsg struct {
	FrameworkID  *mesos.FrameworkID    `json:"framework_id,omitempty"`
	Operation    mesos.Offer_Operation `json:"operation"`
	Checkpointed []mesos.Resource      `json:"checkpointed,omitempty"`
}

// pingMsg is Mesos' PingSlaveMessage: Connected is false when the master
// does not have the agent registered, which makes the agent re-register.
type pingMsg struct {
	AgentID   string `json:"agent_id"`
	MasterID  string `json:"master_id"`
	Connected bool   `json:"connected"`
}
