package wirehttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Mesos' defaults: --agent_ping_timeout and --max_agent_ping_timeouts.
const (
	DefaultPingTimeout     = 15 * time.Second
	DefaultMaxPingTimeouts = 5
)

// Master is what the master side needs of the localmesos master.
type Master interface {
	wire.Master
	ID() string
	// HasAgent says whether the agent is registered (connected or not).
	HasAgent(id mesos.AgentID) bool
	// AgentDisconnected: the agent's process is gone (its port refuses).
	AgentDisconnected(id mesos.AgentID)
	// AgentPingTimedOut: the agent missed MaxPingTimeouts pings in a row.
	AgentPingTimedOut(id mesos.AgentID)
}

// Config is the liveness settings of both sides.
type Config struct {
	PingTimeout     time.Duration
	MaxPingTimeouts int
}

func (c *Config) setDefaults() {
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.MaxPingTimeouts <= 0 {
		c.MaxPingTimeouts = DefaultMaxPingTimeouts
	}
}

// MasterSide receives the agents' messages for a master and carries the
// master's messages to agents over HTTP.
type MasterSide struct {
	m   Master
	cfg Config

	mu     sync.Mutex
	peers  map[string]*agentPeer // by agent ID
	closed bool
	wg     sync.WaitGroup
}

// NewMasterSide returns the master's transport. Mount Handler at /wire/ on
// the master's server; Close stops the pings and senders.
func NewMasterSide(m Master, cfg Config) *MasterSide {
	cfg.setDefaults()
	return &MasterSide{m: m, cfg: cfg, peers: map[string]*agentPeer{}}
}

// Handler serves the agents' messages.
func (s *MasterSide) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathRegister, func(w http.ResponseWriter, r *http.Request) {
		var msg registerMsg
		if !decode(w, r, &msg) {
			return
		}
		id := msg.Info.GetID().GetValue()
		if id == "" || msg.Address == "" {
			http.Error(w, "registration: info.id and address are required", http.StatusBadRequest)
			return
		}
		peer := s.peer(id, msg.Address)
		if peer == nil {
			http.Error(w, "master is stopping", http.StatusServiceUnavailable)
			return
		}
		s.m.RegisterAgent(msg.registration(peer))
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc(pathStatusUpdate, func(w http.ResponseWriter, r *http.Request) {
		var msg statusUpdateMsg
		if !decode(w, r, &msg) {
			return
		}
		s.m.StatusUpdate(msg.AgentID, wire.StatusUpdate{FrameworkID: msg.FrameworkID, Status: msg.Status, LatestState: msg.LatestState})
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc(pathExecutorExited, func(w http.ResponseWriter, r *http.Request) {
		var msg executorMsg
		if !decode(w, r, &msg) {
			return
		}
		s.m.ExecutorExited(msg.AgentID, msg.FrameworkID, msg.ExecutorID, msg.Status)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc(pathExecutorMessage, func(w http.ResponseWriter, r *http.Request) {
		var msg executorMsg
		if !decode(w, r, &msg) {
			return
		}
		s.m.ExecutorMessage(msg.AgentID, msg.FrameworkID, msg.ExecutorID, msg.Data)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc(pathOperationStatus, func(w http.ResponseWriter, r *http.Request) {
		var msg operationStatusMsg
		if !decode(w, r, &msg) {
			return
		}
		s.m.OperationStatus(msg.AgentID, wire.OperationUpdate{FrameworkID: msg.FrameworkID, Status: msg.Status})
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// peer returns the agent's peer at address, replacing one at another
// address (the agent restarted elsewhere) and starting its pings.
func (s *MasterSide) peer(id, address string) *agentPeer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if p := s.peers[id]; p != nil {
		if p.address == address {
			p.registered()
			return p
		}
		p.stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &agentPeer{
		side:    s,
		id:      mesos.AgentID{Value: id},
		address: address,
		out:     newSender("http://"+address, s.cfg.PingTimeout),
		ctx:     ctx,
		cancel:  cancel,
		fresh:   make(chan struct{}, 1),
	}
	s.peers[id] = p
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.pingLoop()
	}()
	return p
}

// Close stops pinging and sending.
func (s *MasterSide) Close() {
	s.mu.Lock()
	s.closed = true
	peers := s.peers
	s.peers = map[string]*agentPeer{}
	s.mu.Unlock()
	for _, p := range peers {
		p.stop()
	}
	s.wg.Wait()
}

// agentPeer is one agent as the master reaches it: wire.Agent over HTTP,
// and the agent's ping observer (Mesos' SlaveObserver).
type agentPeer struct {
	side    *MasterSide
	id      mesos.AgentID
	address string
	out     *sender
	ctx     context.Context
	cancel  context.CancelFunc
	// fresh restarts the miss count: the agent registered again.
	fresh chan struct{}
}

func (p *agentPeer) registered() {
	select {
	case p.fresh <- struct{}{}:
	default:
	}
}

func (p *agentPeer) stop() {
	p.cancel()
	p.out.close()
}

// pingLoop pings every PingTimeout. A ping not answered within
// PingTimeout is a miss; MaxPingTimeouts misses in a row mark the agent
// unreachable, after which the loop keeps pinging: an answer then tells
// the agent (connected=false) to register again.
func (p *agentPeer) pingLoop() {
	cfg := p.side.cfg
	client := &http.Client{Timeout: cfg.PingTimeout}
	misses := 0
	reachable := true // as far as a refused connection tells
	t := time.NewTicker(cfg.PingTimeout)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.fresh:
			misses, reachable = 0, true
			continue
		case <-t.C:
		}
		known := p.side.m.HasAgent(p.id)
		msg := pingMsg{AgentID: p.id.Value, MasterID: p.side.m.ID(), Connected: known}
		err := p.ping(client, msg)
		if err == nil {
			misses, reachable = 0, true
			continue
		}
		if !known {
			// Already removed: nothing more to count.
			continue
		}
		misses++
		glog.V(1).Infof("wirehttp: agent %s at %s missed ping %d of %d: %v", p.id.Value, p.address, misses, cfg.MaxPingTimeouts, err)
		if reachable && errors.Is(err, syscall.ECONNREFUSED) {
			// The host answers but the agent process is gone: Mesos'
			// master sees the socket close.
			reachable = false
			p.side.m.AgentDisconnected(p.id)
		}
		if misses >= cfg.MaxPingTimeouts {
			glog.Infof("wirehttp: agent %s at %s missed %d pings", p.id.Value, p.address, misses)
			p.side.m.AgentPingTimedOut(p.id)
			misses = 0
		}
	}
}

func (p *agentPeer) ping(client *http.Client, msg pingMsg) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	return postBody(p.ctx, client, "http://"+p.address+pathPing, b)
}

var _ wire.Agent = (*agentPeer)(nil)

func (p *agentPeer) RunTask(fw mesos.FrameworkInfo, ex *mesos.ExecutorInfo, task mesos.TaskInfo) {
	p.out.send(pathRunTask, runTaskMsg{Framework: fw, Executor: ex, Task: task})
}

func (p *agentPeer) RunTaskGroup(fw mesos.FrameworkInfo, ex mesos.ExecutorInfo, group mesos.TaskGroupInfo) {
	p.out.send(pathRunTaskGroup, runTaskMsg{Framework: fw, Executor: &ex, Group: &group})
}

func (p *agentPeer) KillTask(fid mesos.FrameworkID, tid mesos.TaskID, policy *mesos.KillPolicy) {
	p.out.send(pathKillTask, taskMsg{FrameworkID: fid, TaskID: tid, KillPolicy: policy})
}

func (p *agentPeer) ShutdownExecutor(fid mesos.FrameworkID, eid mesos.ExecutorID) {
	p.out.send(pathShutdownExecutor, taskMsg{FrameworkID: fid, ExecutorID: eid})
}

func (p *agentPeer) ShutdownFramework(fid mesos.FrameworkID) {
	p.out.send(pathShutdownFramework, taskMsg{FrameworkID: fid})
}

func (p *agentPeer) FrameworkMessage(fid mesos.FrameworkID, eid mesos.ExecutorID, data []byte) {
	p.out.send(pathFrameworkMessage, taskMsg{FrameworkID: fid, ExecutorID: eid, Data: data})
}

func (p *agentPeer) Acknowledge(fid mesos.FrameworkID, tid mesos.TaskID, uuid []byte) {
	p.out.send(pathAcknowledge, taskMsg{FrameworkID: fid, TaskID: tid, UUID: uuid})
}

func (p *agentPeer) UpdateFramework(fw mesos.FrameworkInfo) {
	p.out.send(pathUpdateFramework, runTaskMsg{Framework: fw})
}

func (p *agentPeer) Reregister() {
	p.out.send(pathReregister, pingMsg{AgentID: p.id.Value, MasterID: p.side.m.ID()})
}

func (p *agentPeer) ApplyOperation(op wire.ApplyOperation) {
	p.out.send(pathApplyOperation, applyOperationMsg{FrameworkID: op.FrameworkID, Operation: op.Operation, Checkpointed: op.Checkpointed})
}
