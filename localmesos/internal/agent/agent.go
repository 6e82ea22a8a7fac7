// Package agent is a localmesos agent: the v1 executor HTTP API, executor
// processes in sandboxes, the built-in command executor, and the status
// update manager.
//
// The agent is an actor. Everything it knows (frameworks, executors, tasks,
// status update streams) is owned by one goroutine, the agent's
// wire.Mailbox; the master's messages, the executor API's calls, timers and
// process exits all become functions posted to it. Executor processes,
// fetchers and the built-in command executors run on their own goroutines
// and talk to the agent only by posting.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Mesos' defaults for the agent's timers.
const (
	DefaultExecutorRegistrationTimeout   = time.Minute
	DefaultExecutorShutdownGracePeriod   = 5 * time.Second
	DefaultExecutorReregistrationTimeout = 2 * time.Second
	DefaultStatusUpdateRetryInterval     = 10 * time.Second
	DefaultRecoveryTimeout               = 15 * time.Minute
	DefaultSubscriptionBackoffMax        = 2 * time.Second
	DefaultExecutorHeartbeatInterval     = 30 * time.Minute

	// statusUpdateRetryMax caps the doubling retry interval of an
	// unacknowledged status update (STATUS_UPDATE_RETRY_INTERVAL_MAX).
	statusUpdateRetryMax = 10 * time.Minute
)

// Config holds an agent's settings. Zero durations take Mesos' defaults.
type Config struct {
	ID       mesos.AgentID
	IP       string // address the executor API listens on, e.g. 127.0.0.2
	Port     int    // 0: any free port on first Start, kept across restarts
	Hostname string // default: IP
	// Resources are the agent's total resources.
	Resources mesos.Resources
	// Attributes are reported in the agent's AgentInfo.
	Attributes []mesos.Attribute
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
	// ExecutorHeartbeatInterval between HEARTBEAT events on an executor's
	// subscription; Mesos hard-codes 30mins.
	ExecutorHeartbeatInterval time.Duration
	// MasterRoutes, when set, is served under /wire/ on the agent's
	// address: the master's messages when the master runs in another
	// process (see wirehttp).
	MasterRoutes http.Handler
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ExecutorRegistrationTimeout, DefaultExecutorRegistrationTimeout)
	def(&c.ExecutorShutdownGracePeriod, DefaultExecutorShutdownGracePeriod)
	def(&c.ExecutorReregistrationTimeout, DefaultExecutorReregistrationTimeout)
	def(&c.StatusUpdateRetryInterval, DefaultStatusUpdateRetryInterval)
	def(&c.RecoveryTimeout, DefaultRecoveryTimeout)
	def(&c.SubscriptionBackoffMax, DefaultSubscriptionBackoffMax)
	def(&c.ExecutorHeartbeatInterval, DefaultExecutorHeartbeatInterval)
	if c.Hostname == "" {
		c.Hostname = c.IP
	}
}

func (c *Config) validate() error {
	if c.ID.Value == "" {
		return errors.New("agent ID is empty")
	}
	if ip := net.ParseIP(c.IP); ip == nil || ip.To4() == nil {
		return fmt.Errorf("IP %q: not an IPv4 address", c.IP)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d: must be 0-65535", c.Port)
	}
	if c.WorkDir == "" {
		return errors.New("work dir is empty")
	}
	for name, d := range map[string]time.Duration{
		"executor registration timeout":   c.ExecutorRegistrationTimeout,
		"executor shutdown grace period":  c.ExecutorShutdownGracePeriod,
		"executor reregistration timeout": c.ExecutorReregistrationTimeout,
		"status update retry interval":    c.StatusUpdateRetryInterval,
		"recovery timeout":                c.RecoveryTimeout,
		"subscription backoff max":        c.SubscriptionBackoffMax,
		"executor heartbeat interval":     c.ExecutorHeartbeatInterval,
	} {
		if d < 0 {
			return fmt.Errorf("%s %v: must not be negative", name, d)
		}
	}
	return nil
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

func (m StopMode) String() string {
	if m == Restart {
		return "restart"
	}
	return "host lost"
}

// runState is where the agent is in its life, as Slave::State.
type runState int

const (
	// stateStopped: not started yet, or down between Stop(Restart) and Start.
	stateStopped runState = iota
	// stateRecovering: restarted, waiting for executors to re-subscribe.
	stateRecovering
	// stateRunning: (re-)registered with the master.
	stateRunning
	// stateLost: the host was lost or the agent closed; it never runs again.
	stateLost
)

// ErrUnknownExecutor is returned by KillExecutor for an executor the agent
// does not run.
var ErrUnknownExecutor = errors.New("agent: unknown executor")

// Agent is one localmesos agent.
type Agent struct {
	cfg    Config
	master wire.Master
	mb     *wire.Mailbox
	mbDone chan struct{} // closed once mb is closed

	// life guards the serving side, used from the public methods.
	life    sync.Mutex
	server  *http.Server
	port    int
	address string
	closed  bool

	// wg counts the goroutines the agent owns besides the mailbox: the
	// HTTP server, launchers/reapers of containers, command executors.
	wg sync.WaitGroup

	// Owned by the mailbox goroutine.
	state      runState
	started    bool // has been started once (later starts are restarts)
	frameworks map[string]*framework
	streams    map[streamKey]*updateStream
	timers     map[*timer]struct{}
	// toMaster holds messages that must wait until the agent is registered
	// again (ExecutorExited during recovery).
	toMaster []func()
	cmdExecs map[*commandExecutor]struct{}
	// idleWaiters are the Drains waiting for the last executor to exit.
	idleWaiters []chan struct{}
	// For /state and /metrics/snapshot.
	startTime            time.Time
	terminalCounts       map[mesos.TaskState]int
	executorsTerminated  int
	validStatusUpdates   int
	invalidStatusUpdates int
	// checkpointed are the agent's dynamic reservations and persistent
	// volumes, as in its checkpoint (see volumes.go).
	checkpointed []mesos.Resource
	// fromDisk: New recovered the agent from its work dir's checkpoint;
	// the first Start recovers instead of registering.
	fromDisk bool
	// quit is closed when the agent stops for good: the goroutines that
	// watch processes the agent did not start (or leaves behind) end.
	quit chan struct{}
}

// New returns an agent that will talk to master. Start starts it.
func New(cfg Config, master wire.Master) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("agent: invalid config: %w", err)
	}
	if master == nil {
		return nil, errors.New("agent: no master")
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o750); err != nil {
		return nil, fmt.Errorf("agent: work dir: %w", err)
	}
	a := &Agent{
		cfg:        cfg,
		master:     master,
		mb:         wire.NewMailbox(),
		mbDone:     make(chan struct{}),
		port:       cfg.Port,
		frameworks: map[string]*framework{},
		streams:    map[streamKey]*updateStream{},
		timers:     map[*timer]struct{}{},
		cmdExecs:   map[*commandExecutor]struct{}{},

		startTime:      time.Now(),
		terminalCounts: map[mesos.TaskState]int{},
		quit:           make(chan struct{}),
	}
	if a.port != 0 {
		a.address = net.JoinHostPort(cfg.IP, strconv.Itoa(a.port))
	}
	if err := a.loadCheckpoint(); err != nil {
		a.mb.Close()
		return nil, fmt.Errorf("agent: recovery from %s: %w", cfg.WorkDir, err)
	}
	return a, nil
}

// Start serves the executor API and (re-)registers with the master. The
// first Start registers; a Start after Stop(Restart) recovers: it waits
// ExecutorReregistrationTimeout for surviving executors to re-subscribe,
// then re-registers with everything the agent still runs.
func (a *Agent) Start() error {
	a.life.Lock()
	defer a.life.Unlock()
	if a.closed {
		return errors.New("agent: closed")
	}
	if a.server != nil {
		return errors.New("agent: already started")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.cfg.IP, strconv.Itoa(a.port)))
	if err != nil {
		return fmt.Errorf("agent %s: listen: %w", a.cfg.ID.Value, err)
	}
	if port := ln.Addr().(*net.TCPAddr).Port; port != a.port {
		// The first start on port 0; later starts reuse the port.
		a.port = port
		a.address = net.JoinHostPort(a.cfg.IP, strconv.Itoa(port))
	}
	// Registering (or recovering) before serving: executors that connect
	// meanwhile wait in the listen queue, and find the agent ready.
	startErr := errors.New("agent: closed")
	a.await(func() { startErr = a.begin() })
	if startErr != nil {
		ln.Close()
		return startErr
	}
	// No WriteTimeout: executor subscriptions are endless streams.
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	a.server = srv
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			glog.Errorf("agent %s: executor API: %v", a.cfg.ID.Value, err)
		}
	}()
	return nil
}

// Stop stops serving; mode says what happens to executors.
func (a *Agent) Stop(mode StopMode) {
	a.life.Lock()
	defer a.life.Unlock()
	if mode == HostLost {
		// The host is gone: nothing on it is ever recovered.
		defer a.forgetCheckpoint()
	}
	if a.server == nil {
		if mode == HostLost {
			// Executors of checkpointing frameworks may outlive a
			// restart that never started again.
			a.await(func() { a.stop(HostLost) })
		}
		return
	}
	a.stopServing(mode)
}

func (a *Agent) stopServing(mode StopMode) {
	glog.Infof("agent %s: stopping (%s)", a.cfg.ID.Value, mode)
	a.await(func() { a.stop(mode) })
	// The subscriptions were closed above, so Shutdown only waits for
	// calls in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.server.Shutdown(ctx); err != nil {
		a.server.Close()
	}
	a.server = nil
}

// KillExecutor sends SIGKILL to an executor's process group, as a crash
// would; the agent then handles the exit like any other. For a command task
// the executor ID is the task ID and the built-in executor dies with its
// command.
func (a *Agent) KillExecutor(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID) error {
	err := ErrUnknownExecutor
	if !a.await(func() { err = a.killExecutor(frameworkID, executorID) }) {
		return errors.New("agent: closed")
	}
	return err
}

// ID is the agent ID.
func (a *Agent) ID() mesos.AgentID { return a.cfg.ID }

// Address is host:port of the executor API (MESOS_AGENT_ENDPOINT). It is
// empty until the first Start when the configured port is 0.
func (a *Agent) Address() string {
	a.life.Lock()
	defer a.life.Unlock()
	return a.address
}

// Close kills every process the agent started and stops it for good. No
// goroutine of the agent is left once it returns. Drain first lets the
// executors stop their tasks themselves.
func (a *Agent) Close() {
	if a.shutDown(HostLost, (*commandExecutor).close, false) {
		glog.Infof("agent %s: closed", a.cfg.ID.Value)
	}
}

// Detach stops the agent for good as a killed agent process stops: the
// executors of checkpointing frameworks, and their tasks, keep running,
// and a new agent started on the same work dir recovers them. Executors
// of other frameworks are killed (they would exit by themselves).
// No goroutine of the agent is left once it returns, except the reapers
// of its own children, which end with them.
func (a *Agent) Detach() {
	if a.shutDown(Restart, (*commandExecutor).detach, true) {
		glog.Infof("agent %s: detached from its executors", a.cfg.ID.Value)
	}
}

// shutDown stops the agent for good as mode says, hands each
// command executor to leave, and waits for every goroutine of the agent.
// With keepState, nothing is reported any more: the state stays as
// checkpointed. It returns false if the agent was already stopped.
func (a *Agent) shutDown(mode StopMode, leave func(*commandExecutor), keepState bool) bool {
	a.life.Lock()
	if a.closed {
		a.life.Unlock()
		return false
	}
	a.closed = true
	if a.server != nil {
		a.stopServing(mode)
	} else {
		a.await(func() { a.stop(mode) })
	}
	a.life.Unlock()

	var execs []*commandExecutor
	a.await(func() {
		for ce := range a.cmdExecs {
			execs = append(execs, ce)
		}
		a.cmdExecs = map[*commandExecutor]struct{}{}
		if keepState {
			a.state = stateLost
		}
	})
	for _, ce := range execs {
		leave(ce)
	}
	close(a.quit)
	a.wg.Wait()
	a.mb.Close()
	close(a.mbDone)
	return true
}

// await runs f on the mailbox and waits for it. It returns false if the
// agent is closed. It must never be called from the mailbox itself.
func (a *Agent) await(f func()) bool {
	done := make(chan struct{})
	if !a.mb.Post(func() { defer close(done); f() }) {
		return false
	}
	select {
	case <-done:
		return true
	case <-a.mbDone:
		return false
	}
}

// post runs f on the mailbox later.
func (a *Agent) post(f func()) { a.mb.Post(f) }

// timer is a one-shot timer whose function runs on the mailbox. Stop
// cancels every timer of the agent: a restarted agent has lost them, as a
// restarted Mesos agent has.
type timer struct {
	t *time.Timer
	a *Agent
}

func (a *Agent) after(d time.Duration, f func()) *timer {
	t := &timer{a: a}
	a.timers[t] = struct{}{}
	t.t = time.AfterFunc(d, func() {
		a.post(func() {
			if _, live := a.timers[t]; !live {
				return
			}
			delete(a.timers, t)
			f()
		})
	})
	return t
}

// stop cancels the timer; it runs on the mailbox. A nil timer is fine.
func (t *timer) stop() {
	if t == nil {
		return
	}
	t.t.Stop()
	delete(t.a.timers, t)
}

func (a *Agent) stopTimers() {
	for t := range a.timers {
		t.t.Stop()
	}
	a.timers = map[*timer]struct{}{}
}

// begin runs on the mailbox when the agent (re)starts: a first start
// registers, a restart recovers.
func (a *Agent) begin() error {
	if a.state == stateLost {
		return fmt.Errorf("agent %s: the host was lost", a.cfg.ID.Value)
	}
	if err := a.recoverCheckpointedResources(); err != nil {
		return fmt.Errorf("agent %s: %w", a.cfg.ID.Value, err)
	}
	if !a.started {
		a.started = true
		a.state = stateRunning
		glog.Infof("agent %s: started on %s, registering", a.cfg.ID.Value, a.address)
		a.checkpointAgent()
		a.master.RegisterAgent(a.registration(false))
		return nil
	}
	if a.fromDisk {
		a.fromDisk = false
		a.adoptContainers()
	}
	a.recover()
	return nil
}

// stop runs on the mailbox: the agent "dies". Its timers and executor
// connections go; what happens to executors depends on mode.
func (a *Agent) stop(mode StopMode) {
	a.stopTimers()
	a.toMaster = nil
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			ex.closeConn()
		}
	}
	if mode == HostLost {
		for _, fw := range a.frameworks {
			for _, ex := range fw.executors {
				a.destroy(ex, "host lost")
				a.retireCommand(ex)
			}
		}
		a.frameworks = map[string]*framework{}
		a.streams = map[streamKey]*updateStream{}
		a.state = stateLost
		a.notifyIdle()
		return
	}
	// Only checkpointed state survives a restart: executors of
	// frameworks without checkpointing are gone with their agent.
	for id, fw := range a.frameworks {
		if fw.checkpoint() {
			continue
		}
		for _, ex := range fw.executors {
			a.destroy(ex, "agent restart without checkpointing")
			a.retireCommand(ex)
		}
		a.cleanupStreams(fw.id())
		delete(a.frameworks, id)
	}
	a.state = stateStopped
}

// recover runs on the mailbox when a restarted agent serves again, as
// Slave::recover and Slave::_recover do for --recover=reconnect.
func (a *Agent) recover() {
	a.state = stateRecovering
	glog.Infof("agent %s: restarted on %s, recovering %d framework(s)", a.cfg.ID.Value, a.address, len(a.frameworks))
	for _, fw := range a.sortedFrameworks() {
		for _, ex := range fw.sortedExecutors() {
			if ex.state == executorTerminated {
				continue
			}
			// Tasks the agent had queued were checkpointed; a recovered
			// executor owns them as launched tasks still STAGING.
			for _, t := range ex.queued {
				task := createTask(t, mesos.TASK_STAGING, fw.id())
				ex.launched[t.TaskID.Value] = &task
			}
			ex.queued, ex.queuedGroups = nil, nil
			ex.state = executorRegistering
			ex.registrationTimer.stop()
			ex.shutdownTimer.stop()
			ex.registrationTimer, ex.shutdownTimer = nil, nil
			glog.V(1).Infof("agent %s: waiting for executor %s to subscribe", a.cfg.ID.Value, ex)
		}
	}
	// Executors that exited while the agent was down are noticed now.
	for _, fw := range a.sortedFrameworks() {
		for _, ex := range fw.sortedExecutors() {
			if ex.state != executorTerminated && ex.container != nil && ex.container.hasExited() {
				a.executorTerminated(fw, ex, ex.container.exitStatus())
			}
		}
	}
	if len(a.frameworks) == 0 {
		a.finishRecovery()
		return
	}
	a.after(a.cfg.ExecutorReregistrationTimeout, a.reregisterExecutorTimeout)
}

// reregisterExecutorTimeout destroys the executors that did not come back
// and ends the recovery.
func (a *Agent) reregisterExecutorTimeout() {
	glog.V(1).Infof("agent %s: cleaning up un-reregistered executors", a.cfg.ID.Value)
	for _, fw := range a.sortedFrameworks() {
		for _, ex := range fw.sortedExecutors() {
			if ex.state != executorRegistering {
				continue
			}
			state := mesos.TASK_GONE
			if !fw.partitionAware() {
				state = mesos.TASK_LOST
			}
			ex.state = executorTerminating
			ex.pendingTermination = &termination{
				state:   state,
				reason:  mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT,
				message: "Executor did not reregister within " + stoutDuration(a.cfg.ExecutorReregistrationTimeout),
			}
			a.destroy(ex, "did not reregister")
		}
	}
	a.finishRecovery()
}

func (a *Agent) finishRecovery() {
	a.state = stateRunning
	glog.Infof("agent %s: recovered, re-registering", a.cfg.ID.Value)
	a.master.RegisterAgent(a.registration(true))
	a.flushToMaster()
	a.resumeStreams()
}

// toMasterWhenRegistered sends now, or once the agent is registered again.
func (a *Agent) toMasterWhenRegistered(f func()) {
	if a.state == stateRunning {
		f()
		return
	}
	if a.state == stateRecovering {
		a.toMaster = append(a.toMaster, f)
	}
}

func (a *Agent) flushToMaster() {
	pending := a.toMaster
	a.toMaster = nil
	for _, f := range pending {
		f()
	}
}

// registration is the agent's (re-)registration, with everything it still
// runs, as Slave::doReliableRegistration builds it.
func (a *Agent) registration(again bool) wire.Registration {
	id := a.cfg.ID
	port := int32(a.port)
	reg := wire.Registration{
		Agent: a,
		Info: mesos.AgentInfo{
			ID:         &id,
			Hostname:   a.cfg.Hostname,
			Port:       &port,
			Resources:  cloneResources(a.cfg.Resources),
			Attributes: a.cfg.Attributes,
		},
		Address:        a.address,
		Reregistration: again,
		Checkpointed:   cloneResources(a.checkpointed),
	}
	if !again {
		return reg
	}
	for _, fw := range a.sortedFrameworks() {
		reg.Frameworks = append(reg.Frameworks, cloneFrameworkInfo(fw.info))
		for _, ex := range fw.sortedExecutors() {
			for _, t := range sortedTasks(ex.launched) {
				reg.Tasks = append(reg.Tasks, cloneTask(*t))
			}
			for _, t := range sortedTasks(ex.terminated) {
				reg.Tasks = append(reg.Tasks, cloneTask(*t))
			}
			for _, t := range ex.queued {
				reg.Tasks = append(reg.Tasks, cloneTask(createTask(t, mesos.TASK_STAGING, fw.id())))
			}
			// The master does not keep command executors: the agent
			// generates them.
			if !ex.command && ex.state != executorTerminated {
				reg.Executors = append(reg.Executors, cloneExecutorInfo(ex.info))
			}
		}
	}
	return reg
}

func (a *Agent) sortedFrameworks() []*framework {
	out := make([]*framework, 0, len(a.frameworks))
	for _, fw := range a.frameworks {
		out = append(out, fw)
	}
	sortFrameworks(out)
	return out
}

// Reregister tells the agent that the master failed over: it registers
// again with its full state and resends its pending status updates.
func (a *Agent) Reregister() {
	a.post(func() {
		if a.state != stateRunning {
			glog.V(1).Infof("agent %s: not re-registering with the new master while %v", a.cfg.ID.Value, a.state)
			return
		}
		glog.Infof("agent %s: re-registering with the new master", a.cfg.ID.Value)
		a.master.RegisterAgent(a.registration(true))
		a.resumeStreams()
	})
}

func (s runState) String() string {
	switch s {
	case stateStopped:
		return "stopped"
	case stateRecovering:
		return "recovering"
	case stateRunning:
		return "running"
	case stateLost:
		return "lost"
	}
	return "runState(" + strconv.Itoa(int(s)) + ")"
}

var _ wire.Agent = (*Agent)(nil)
