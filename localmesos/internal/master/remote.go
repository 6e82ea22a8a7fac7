package master

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// HasAgent says whether the agent is registered, connected or not: what a
// ping's "connected" tells an agent in another process.
func (m *Master) HasAgent(agentID mesos.AgentID) bool {
	has := false
	m.call(func() { has = m.agents[agentID.Value] != nil })
	return has
}

// AgentPingTimedOut marks an agent in another process unreachable: it
// missed max_agent_ping_timeouts pings in a row (Mesos' SlaveObserver).
func (m *Master) AgentPingTimedOut(agentID mesos.AgentID) {
	m.post(func() {
		if a := m.agents[agentID.Value]; a != nil {
			m.markUnreachable(a, "health check timed out")
		}
	})
}
