package localmesos

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/agent"
	"github.com/mesos-stateful/stateful/localmesos/internal/master"
	"github.com/mesos-stateful/stateful/localmesos/internal/wirehttp"
)

// Mesos' agent health check: the master pings each agent every
// --agent_ping_timeout and marks it unreachable after
// --max_agent_ping_timeouts pings in a row go unanswered (75 s).
const (
	DefaultAgentPingInterval    = wirehttp.DefaultPingTimeout
	DefaultMaxAgentPingTimeouts = wirehttp.DefaultMaxPingTimeouts
)

// MasterConfig is a master running alone, for agents in other processes
// or on other hosts (StartAgent).
type MasterConfig struct {
	// Host and Port are where the master listens (agents and schedulers
	// reach it there, so not a loopback address for other hosts).
	Host string
	Port int
	// AgentPingTimeout is Mesos' --agent_ping_timeout: how long the
	// master waits for each ping's answer, and how often it pings.
	AgentPingTimeout time.Duration
	// MaxAgentPingTimeouts is Mesos' --max_agent_ping_timeouts.
	MaxAgentPingTimeouts int

	HeartbeatInterval         time.Duration
	AllocationInterval        time.Duration
	StatusUpdateRetryInterval time.Duration
}

// NewMasterConfig returns Mesos' defaults on 0.0.0.0:5050.
func NewMasterConfig() MasterConfig {
	return MasterConfig{
		Host:                      "0.0.0.0",
		Port:                      DefaultPort,
		AgentPingTimeout:          DefaultAgentPingInterval,
		MaxAgentPingTimeouts:      DefaultMaxAgentPingTimeouts,
		HeartbeatInterval:         DefaultHeartbeatInterval,
		AllocationInterval:        DefaultAllocationInterval,
		StatusUpdateRetryInterval: DefaultStatusUpdateRetryInterval,
	}
}

// Validate explains the first setting that cannot work.
func (c MasterConfig) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d: must be 0-65535", c.Port)
	}
	if net.ParseIP(c.Host) == nil {
		return fmt.Errorf("host %q: not an IP address", c.Host)
	}
	if c.MaxAgentPingTimeouts < 1 {
		return fmt.Errorf("max agent ping timeouts %d: must be at least 1", c.MaxAgentPingTimeouts)
	}
	return positive(map[string]time.Duration{
		"agent ping timeout":           c.AgentPingTimeout,
		"heartbeat interval":           c.HeartbeatInterval,
		"allocation interval":          c.AllocationInterval,
		"status update retry interval": c.StatusUpdateRetryInterval,
	})
}

// MasterServer is a running master without agents of its own.
type MasterServer struct {
	master   *master.Master
	side     *wirehttp.MasterSide
	server   *http.Server
	url      string
	stopOnce sync.Once
	done     chan struct{}
}

// StartMaster starts a master alone. It runs until Close or until ctx
// ends.
func StartMaster(ctx context.Context, cfg MasterConfig) (*MasterServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("localmesos: invalid master config: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("localmesos: master listen: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	m, err := master.New(master.Config{
		Hostname:           cfg.Host,
		Port:               port,
		HeartbeatInterval:  cfg.HeartbeatInterval,
		AllocationInterval: cfg.AllocationInterval,
		// An agent whose port refuses is disconnected at once and has
		// the whole ping budget to come back, as a missed ping has.
		AgentPingTimeout:             cfg.AgentPingTimeout * time.Duration(cfg.MaxAgentPingTimeouts),
		OperationStatusRetryInterval: cfg.StatusUpdateRetryInterval,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("localmesos: master: %w", err)
	}
	s := &MasterServer{
		master: m,
		side:   wirehttp.NewMasterSide(m, wirehttp.Config{PingTimeout: cfg.AgentPingTimeout, MaxPingTimeouts: cfg.MaxAgentPingTimeouts}),
		url:    "http://" + net.JoinHostPort(cfg.Host, strconv.Itoa(port)),
		done:   make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler())
	mux.Handle("/wire/", s.side.Handler())
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			glog.Errorf("localmesos: master: %v", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	glog.Infof("localmesos: master %s at %s (agents ping every %v, unreachable after %d missed)", m.ID(), s.url, cfg.AgentPingTimeout, cfg.MaxAgentPingTimeouts)
	return s, nil
}

// MasterURL is the master's base URL.
func (s *MasterServer) MasterURL() string { return s.url }

// Done is closed once the master has stopped.
func (s *MasterServer) Done() <-chan struct{} { return s.done }

// Close stops the master. Agents keep running and register again with
// the next master they hear from.
func (s *MasterServer) Close() {
	s.stopOnce.Do(func() {
		s.master.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.server.Shutdown(ctx)
		cancel()
		_ = s.server.Close()
		s.side.Close()
		close(s.done)
	})
}

// AgentConfig is an agent running alone, registering with a master in
// another process or on another host (StartMaster).
type AgentConfig struct {
	// Master is the master's host:port.
	Master string
	// IP and Port are where the agent listens: its executors and the
	// master reach it there. Port 0 picks a free port (kept across
	// restarts on the same WorkDir).
	IP   string
	Port int
	// Hostname the agent reports; default IP.
	Hostname string
	// Resources in Mesos' --resources syntax; the agent offers them all.
	Resources string
	// WorkDir holds sandboxes and the agent's checkpoint: an agent started
	// again on it keeps its ID and recovers its executors.
	WorkDir string
	// KeepTasksOnClose: as Config.KeepTasksOnClose.
	KeepTasksOnClose bool
	// AgentPingTimeout and MaxAgentPingTimeouts must match the master's:
	// an agent that hears no ping for their product registers again.
	AgentPingTimeout     time.Duration
	MaxAgentPingTimeouts int

	ExecutorRegistrationTimeout   time.Duration
	ExecutorShutdownGracePeriod   time.Duration
	ExecutorReregistrationTimeout time.Duration
	StatusUpdateRetryInterval     time.Duration
}

// NewAgentConfig returns Mesos' defaults for an agent of the master at
// masterAddr (host:port) listening on ip.
func NewAgentConfig(masterAddr, ip string) AgentConfig {
	return AgentConfig{
		Master:                        masterAddr,
		IP:                            ip,
		Resources:                     DefaultResources,
		AgentPingTimeout:              DefaultAgentPingInterval,
		MaxAgentPingTimeouts:          DefaultMaxAgentPingTimeouts,
		ExecutorRegistrationTimeout:   DefaultExecutorRegistrationTimeout,
		ExecutorShutdownGracePeriod:   DefaultExecutorShutdownGracePeriod,
		ExecutorReregistrationTimeout: DefaultExecutorReregistrationTimeout,
		StatusUpdateRetryInterval:     DefaultStatusUpdateRetryInterval,
	}
}

// Validate explains the first setting that cannot work.
func (c AgentConfig) Validate() error {
	if _, _, err := net.SplitHostPort(c.Master); err != nil {
		return fmt.Errorf("master %q: want host:port: %w", c.Master, err)
	}
	if ip := net.ParseIP(c.IP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("ip %q: not an IPv4 address", c.IP)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d: must be 0-65535", c.Port)
	}
	if c.WorkDir == "" {
		return errors.New("work dir: required (the agent's checkpoint lives there)")
	}
	if _, err := ParseResources(c.Resources); err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	if c.MaxAgentPingTimeouts < 1 {
		return fmt.Errorf("max agent ping timeouts %d: must be at least 1", c.MaxAgentPingTimeouts)
	}
	return positive(map[string]time.Duration{
		"agent ping timeout":              c.AgentPingTimeout,
		"executor registration timeout":   c.ExecutorRegistrationTimeout,
		"executor shutdown grace period":  c.ExecutorShutdownGracePeriod,
		"executor reregistration timeout": c.ExecutorReregistrationTimeout,
		"status update retry interval":    c.StatusUpdateRetryInterval,
	})
}

// AgentServer is a running agent of a master elsewhere.
type AgentServer struct {
	cfg      AgentConfig
	agent    *agent.Agent
	side     *wirehttp.AgentSide
	stopOnce sync.Once
	done     chan struct{}
}

// StartAgent starts an agent and sends its registration to the master; it
// keeps trying until the master takes it. It runs until Close or until
// ctx ends.
func StartAgent(ctx context.Context, cfg AgentConfig) (*AgentServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("localmesos: invalid agent config: %w", err)
	}
	rs, _ := ParseResources(cfg.Resources) // validated above
	side := wirehttp.NewAgentSide(cfg.Master, wirehttp.Config{PingTimeout: cfg.AgentPingTimeout, MaxPingTimeouts: cfg.MaxAgentPingTimeouts})
	a, err := agent.New(agent.Config{
		// A recovered agent keeps the ID of its checkpoint instead.
		ID:                            mesos.AgentID{Value: newAgentID()},
		IP:                            cfg.IP,
		Port:                          cfg.Port,
		Hostname:                      cfg.Hostname,
		Resources:                     rs,
		WorkDir:                       cfg.WorkDir,
		ExecutorRegistrationTimeout:   cfg.ExecutorRegistrationTimeout,
		ExecutorShutdownGracePeriod:   cfg.ExecutorShutdownGracePeriod,
		ExecutorReregistrationTimeout: cfg.ExecutorReregistrationTimeout,
		StatusUpdateRetryInterval:     cfg.StatusUpdateRetryInterval,
		MasterRoutes:                  side.Handler(),
	}, side)
	if err != nil {
		side.Close()
		return nil, fmt.Errorf("localmesos: agent: %w", err)
	}
	side.Bind(a)
	if err := a.Start(); err != nil {
		a.Detach()
		side.Close()
		return nil, fmt.Errorf("localmesos: agent: %w", err)
	}
	s := &AgentServer{cfg: cfg, agent: a, side: side, done: make(chan struct{})}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	glog.Infof("localmesos: agent %s at %s, master %s (work dir %s)", a.ID().Value, a.Address(), cfg.Master, cfg.WorkDir)
	return s, nil
}

// ID is the agent's ID.
func (s *AgentServer) ID() string { return s.agent.ID().Value }

// Address is the agent's host:port.
func (s *AgentServer) Address() string { return s.agent.Address() }

// Done is closed once the agent has stopped.
func (s *AgentServer) Done() <-chan struct{} { return s.done }

// Close stops the agent: its executors get SHUTDOWN and the shutdown
// grace period, or, with KeepTasksOnClose, the executors of checkpointing
// frameworks are left running for the next start on the work dir.
func (s *AgentServer) Close() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ExecutorShutdownGracePeriod)
		stopAgent(ctx, s.agent, s.cfg.KeepTasksOnClose)
		cancel()
		s.side.Close()
		close(s.done)
	})
}

// newAgentID is a fresh agent ID in Mesos' form (<uuid>-S0).
func newAgentID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x-S0", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
