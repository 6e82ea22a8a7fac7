package wirehttp

import (
	"net/http"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Agent is what the agent side needs of a localmesos agent.
type Agent interface {
	wire.Agent
	ID() mesos.AgentID
}

// AgentSide is an agent's transport: wire.Master over HTTP to the master,
// and the handler of the master's messages. Create it, give it to the
// agent as its master, Bind the agent, mount Handler at /wire/ on the
// agent's server, and Close it after the agent.
type AgentSide struct {
	cfg    Config
	master string // host:port
	out    *sender

	mu       sync.Mutex
	agent    Agent
	lastPing time.Time
	lastReg  time.Time
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// NewAgentSide returns the transport to the master at masterAddr
// (host:port).
func NewAgentSide(masterAddr string, cfg Config) *AgentSide {
	cfg.setDefaults()
	return &AgentSide{
		cfg:    cfg,
		master: masterAddr,
		out:    newSender("http://"+masterAddr, cfg.PingTimeout),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// Bind gives the transport its agent and starts watching the master's
// pings.
func (s *AgentSide) Bind(a Agent) {
	s.mu.Lock()
	s.agent = a
	s.lastPing = time.Now()
	s.mu.Unlock()
	go s.watch()
}

// Close stops the watchdog and the sender.
func (s *AgentSide) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.mu.Lock()
		bound := s.agent != nil
		s.mu.Unlock()
		if bound {
			<-s.done
		}
		s.out.close()
	})
}

// watch re-registers when the master has not pinged for
// PingTimeout x MaxPingTimeouts: a partition, or a master that restarted
// and does not know this agent (Mesos' agent re-detects its master then).
func (s *AgentSide) watch() {
	defer close(s.done)
	limit := s.cfg.PingTimeout * time.Duration(s.cfg.MaxPingTimeouts)
	t := time.NewTicker(s.cfg.PingTimeout)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		quiet := time.Since(s.lastPing)
		if quiet > limit {
			s.lastPing = time.Now() // try again after another limit
		}
		a := s.agent
		s.mu.Unlock()
		if quiet > limit {
			glog.Infof("wirehttp: agent %s: no ping from the master at %s for %v; registering again", a.ID().Value, s.master, quiet.Round(time.Second))
			a.Reregister()
		}
	}
}

// Handler serves the master's messages and pings.
func (s *AgentSide) Handler() http.Handler {
	mux := http.NewServeMux()
	agent := func() Agent {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.agent
	}
	handle := func(path string, msg func() any, deliver func(Agent, any)) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			v := msg()
			if !decode(w, r, v) {
				return
			}
			a := agent()
			if a == nil {
				http.Error(w, "agent not started", http.StatusServiceUnavailable)
				return
			}
			deliver(a, v)
			w.WriteHeader(http.StatusAccepted)
		})
	}
	handle(pathRunTask, func() any { return &runTaskMsg{} }, func(a Agent, v any) {
		m := v.(*runTaskMsg)
		a.RunTask(m.Framework, m.Executor, m.Task)
	})
	handle(pathRunTaskGroup, func() any { return &runTaskMsg{} }, func(a Agent, v any) {
		m := v.(*runTaskMsg)
		if m.Executor == nil || m.Group == nil {
			glog.Warningf("wirehttp: run_task_group without executor or group; dropped")
			return
		}
		a.RunTaskGroup(m.Framework, *m.Executor, *m.Group)
	})
	handle(pathKillTask, func() any { return &taskMsg{} }, func(a Agent, v any) {
		m := v.(*taskMsg)
		a.KillTask(m.FrameworkID, m.TaskID, m.KillPolicy)
	})
	handle(pathShutdownExecutor, func() any { return &taskMsg{} }, func(a Agent, v any) {
		m := v.(*taskMsg)
		a.ShutdownExecutor(m.FrameworkID, m.ExecutorID)
	})
	handle(pathShutdownFramework, func() any { return &taskMsg{} }, func(a Agent, v any) {
		a.ShutdownFramework(v.(*taskMsg).FrameworkID)
	})
	handle(pathFrameworkMessage, func() any { return &taskMsg{} }, func(a Agent, v any) {
		m := v.(*taskMsg)
		a.FrameworkMessage(m.FrameworkID, m.ExecutorID, m.Data)
	})
	handle(pathAcknowledge, func() any { return &taskMsg{} }, func(a Agent, v any) {
		m := v.(*taskMsg)
		a.Acknowledge(m.FrameworkID, m.TaskID, m.UUID)
	})
	handle(pathUpdateFramework, func() any { return &runTaskMsg{} }, func(a Agent, v any) {
		a.UpdateFramework(v.(*runTaskMsg).Framework)
	})
	handle(pathReregister, func() any { return &pingMsg{} }, func(a Agent, v any) {
		s.reregister(a)
	})
	handle(pathApplyOperation, func() any { return &applyOperationMsg{} }, func(a Agent, v any) {
		m := v.(*applyOperationMsg)
		a.ApplyOperation(wire.ApplyOperation{FrameworkID: m.FrameworkID, Operation: m.Operation, Checkpointed: m.Checkpointed})
	})
	handle(pathPing, func() any { return &pingMsg{} }, func(a Agent, v any) {
		m := v.(*pingMsg)
		s.mu.Lock()
		s.lastPing = time.Now()
		s.mu.Unlock()
		if !m.Connected {
			// The master removed this agent (it was unreachable) or
			// does not know it: register again, as a Mesos agent does
			// on a ping with connected=false.
			s.reregister(a)
		}
	})
	return mux
}

// reregister sends a re-registration at most once per PingTimeout: pings
// that arrive while one is on its way must not pile up more.
func (s *AgentSide) reregister(a Agent) {
	s.mu.Lock()
	if time.Since(s.lastReg) < s.cfg.PingTimeout {
		s.mu.Unlock()
		return
	}
	s.lastReg = time.Now()
	s.mu.Unlock()
	glog.Infof("wirehttp: agent %s: the master at %s asks it to register again", a.ID().Value, s.master)
	a.Reregister()
}

var _ wire.Master = (*AgentSide)(nil)

func (s *AgentSide) RegisterAgent(reg wire.Registration) {
	s.out.send(pathRegister, toRegisterMsg(reg))
}

func (s *AgentSide) StatusUpdate(aid mesos.AgentID, u wire.StatusUpdate) {
	s.out.send(pathStatusUpdate, statusUpdateMsg{AgentID: aid, FrameworkID: u.FrameworkID, Status: u.Status, LatestState: u.LatestState})
}

func (s *AgentSide) ExecutorExited(aid mesos.AgentID, fid mesos.FrameworkID, eid mesos.ExecutorID, status int32) {
	s.out.send(pathExecutorExited, executorMsg{AgentID: aid, FrameworkID: fid, ExecutorID: eid, Status: status})
}

func (s *AgentSide) ExecutorMessage(aid mesos.AgentID, fid mesos.FrameworkID, eid mesos.ExecutorID, data []byte) {
	s.out.send(pathExecutorMessage, executorMsg{AgentID: aid, FrameworkID: fid, ExecutorID: eid, Data: data})
}

func (s *AgentSide) OperationStatus(aid mesos.AgentID, u wire.OperationUpdate) {
	s.out.send(pathOperationStatus, operationStatusMsg{AgentID: aid, FrameworkID: u.FrameworkID, Status: u.Status})
}
