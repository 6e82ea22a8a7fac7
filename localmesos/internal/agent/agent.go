// Package agent is a localmesos agent: the v1 executor HTTP API, executor
// processes in sandboxes, the built-in command executor, and the status
// update manager.
package agent

import (
	"errors"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Config holds an agent's settings. Zero durations take Mesos' defaults.
type Config struct {
	ID       mesos.AgentID
	IP       string // address the executor API listens on, e.g. 127.0.0.2
	Port     int    // 0: any free port on first Start, kept across restarts
	Hostname string
	// Resources are the agent's total resources.
	Resources mesos.Resources
	// WorkDir is this agent's own work directory (sandboxes live under it).
	WorkDir string
	// Env is the environment executors inherit before MESOS_* and
	// CommandInfo.environment are added; nil means os.Environ().
	Env []string

	ExecutorRegistrationTimeout   time.Duration // Mesos: 1min
	ExecutorShutdownGracePeriod   time.Duration // Mesos: 5secs
	ExecutorReregistrationTimeout time.Duration // Mesos: 2secs
	StatusUpdateRetryInterval     time.Duration // Mesos: 10secs, doubling to 10mins
	RecoveryTimeout               time.Duration // Mesos: 15mins
	SubscriptionBackoffMax        time.Duration // Mesos: 2secs
}

// StopMode says what happens to an agent's executors when it stops.
type StopMode int

const (
	// HostLost: the host is gone; every process the agent started is killed.
	HostLost StopMode = iota
	// Restart: the agent process restarts; executors of checkpointing
	// frameworks keep running and re-subscribe, the others are killed.
	Restart
)

// Agent is one localmesos agent.
type Agent struct{}

// New returns an agent that will talk to master. Start starts it.
func New(cfg Config, master wire.Master) (*Agent, error) {
	return nil, errors.New("agent: not implemented")
}

// Start serves the executor API and (re-)registers with the master.
func (a *Agent) Start() error { return errors.New("agent: not implemented") }

// Stop stops serving; mode says what happens to executors.
func (a *Agent) Stop(mode StopMode) {}

// KillExecutor sends SIGKILL to an executor's process group.
func (a *Agent) KillExecutor(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID) error {
	return errors.New("agent: not implemented")
}

// ID is the agent ID.
func (a *Agent) ID() mesos.AgentID { return mesos.AgentID{} }

// Address is host:port of the executor API (MESOS_AGENT_ENDPOINT).
func (a *Agent) Address() string { return "" }

// Close kills every process the agent started and stops it for good.
func (a *Agent) Close() {}

var _ wire.Agent = (*Agent)(nil)

func (a *Agent) RunTask(mesos.FrameworkInfo, *mesos.ExecutorInfo, mesos.TaskInfo)          {}
func (a *Agent) RunTaskGroup(mesos.FrameworkInfo, mesos.ExecutorInfo, mesos.TaskGroupInfo) {}
func (a *Agent) KillTask(mesos.FrameworkID, mesos.TaskID, *mesos.KillPolicy)               {}
func (a *Agent) ShutdownExecutor(mesos.FrameworkID, mesos.ExecutorID)                      {}
func (a *Agent) ShutdownFramework(mesos.FrameworkID)                                       {}
func (a *Agent) FrameworkMessage(mesos.FrameworkID, mesos.ExecutorID, []byte)              {}
func (a *Agent) Acknowledge(mesos.FrameworkID, mesos.TaskID, []byte)                       {}
func (a *Agent) UpdateFramework(mesos.FrameworkInfo)                                       {}
func (a *Agent) Reregister()                                                               {}
