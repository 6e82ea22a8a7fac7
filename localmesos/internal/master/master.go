// Package master is the localmesos master: the v1 scheduler HTTP API, the
// allocator, framework lifecycle, and /master/state.
package master

import (
	"errors"
	"net/http"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Config holds the master's settings. Zero durations take Mesos' defaults.
type Config struct {
	// Hostname and Port are what MasterInfo reports (and /master/state).
	Hostname string
	Port     int
	// HeartbeatInterval between HEARTBEAT events (Mesos: 15s).
	HeartbeatInterval time.Duration
	// AllocationInterval batches offers (Mesos: 1s).
	AllocationInterval time.Duration
	// AgentPingTimeout is how long a disconnected agent has to come back
	// before it is marked unreachable (Mesos: 15s x 5 pings = 75s).
	AgentPingTimeout time.Duration
}

// Master is the localmesos master.
type Master struct{}

// New returns a master. Close stops it.
func New(cfg Config) (*Master, error) {
	return nil, errors.New("master: not implemented")
}

// ID is the current master ID (it changes on Failover).
func (m *Master) ID() string { return "" }

// Handler serves /api/v1/scheduler, /master/state, /state and /health.
func (m *Master) Handler() http.Handler { return http.NotFoundHandler() }

// AgentDisconnected tells the master that an agent's connection broke.
func (m *Master) AgentDisconnected(agentID mesos.AgentID) {}

// Failover simulates a master failover.
func (m *Master) Failover() {}

// Close stops the master and ends every scheduler stream.
func (m *Master) Close() {}

var _ wire.Master = (*Master)(nil)

func (m *Master) RegisterAgent(reg wire.Registration)                                        {}
func (m *Master) StatusUpdate(agentID mesos.AgentID, u wire.StatusUpdate)                    {}
func (m *Master) ExecutorExited(mesos.AgentID, mesos.FrameworkID, mesos.ExecutorID, int32)   {}
func (m *Master) ExecutorMessage(mesos.AgentID, mesos.FrameworkID, mesos.ExecutorID, []byte) {}
