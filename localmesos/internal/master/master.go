// Package master is the localmesos master: the v1 scheduler HTTP API, the
// allocator, framework lifecycle, and /master/state.
//
// All master state is owned by one actor (a wire.Mailbox): agents' messages,
// HTTP calls, timers and the allocator each run as a function on that
// mailbox, one at a time, which gives Mesos' libprocess ordering for free.
// HTTP handlers post their work and wait for it; messages to agents are
// one-way calls that only queue work on the agent's own mailbox; events to
// schedulers go into a per-stream queue that the stream's HTTP handler
// drains, so a slow scheduler never blocks the actor.
package master

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/basicauth"
	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Defaults, as on Mesos 1.10.
const (
	DefaultHeartbeatInterval     = 15 * time.Second
	DefaultAllocationInterval    = time.Second
	DefaultAgentPingTimeout      = 75 * time.Second // 15s x 5 pings
	DefaultAgentReregisterTimout = 10 * time.Minute
	// Version is the Mesos version this master reports (mesos-go v0.0.11
	// matches the 1.10 protos).
	Version = "1.10.0"

	maxCompletedFrameworks = 50   // --max_completed_frameworks
	maxCompletedTasks      = 1000 // --max_completed_tasks_per_framework
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
	// AgentReregisterTimeout is how long agents known before a master
	// failover have to re-register before they are marked unreachable
	// (Mesos: --agent_reregister_timeout, 10mins).
	AgentReregisterTimeout time.Duration
	// OperationStatusRetryInterval is the first interval at which an
	// unacknowledged operation status is re-sent, doubling up to 10 min
	// (Mesos agent: 10secs).
	OperationStatusRetryInterval time.Duration
	// Credentials, if not empty, make the master require HTTP Basic
	// authentication as Mesos does with --authenticate_http_frameworks,
	// --authenticate_http_readonly and --authenticate_http_readwrite: on
	// the scheduler API and /master/state (not /health), and a SUBSCRIBE
	// must not name another principal than the authenticated one.
	Credentials basicauth.Credentials
}

func (c *Config) setDefaults() {
	if c.Hostname == "" {
		c.Hostname = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 5050
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.AllocationInterval <= 0 {
		c.AllocationInterval = DefaultAllocationInterval
	}
	if c.AgentPingTimeout <= 0 {
		c.AgentPingTimeout = DefaultAgentPingTimeout
	}
	if c.AgentReregisterTimeout <= 0 {
		c.AgentReregisterTimeout = DefaultAgentReregisterTimout
	}
	if c.OperationStatusRetryInterval <= 0 {
		c.OperationStatusRetryInterval = 10 * time.Second
	}
}

// Master is the localmesos master.
type Master struct {
	cfg  Config
	mb   *wire.Mailbox
	done chan struct{} // closed by Close
	loop sync.WaitGroup
	once sync.Once

	idMu     sync.Mutex
	publicID string // ID(), readable from any goroutine

	// Everything below is owned by the mailbox goroutine.
	id            string
	info          mesos.MasterInfo
	startTime     time.Time
	electedTime   time.Time
	nextFramework int
	nextOffer     int
	frameworks    map[string]*framework // registered: connected, disconnected or recovered
	completed     []*framework          // most recent last, bounded
	completedIDs  map[string]bool
	agents        map[string]*agent // registered agents, connected or not
	// recovered are agents known before a master failover that have not
	// re-registered yet (Mesos' registry "recovered" slaves).
	recovered map[string]mesos.AgentInfo
	// unreachable are agents marked unreachable, with the time they were.
	unreachable map[string]mesos.TimeInfo
	// removed are agents removed (unreachable or gone) whose messages are
	// ignored until they re-register.
	removed map[string]bool
	offers  map[string]*offer
	// roleAllocations counts offers made per role: the DRF tie-breaker.
	roleAllocations map[string]int
	allocPending    bool
	// terminalCounts counts tasks that reached each terminal state (the
	// master/tasks_* counters); the status update counters likewise.
	terminalCounts       map[mesos.TaskState]int
	validStatusUpdates   int
	invalidStatusUpdates int
	// allocTicked is set by the allocation loop while its pass waits in
	// the mailbox: a pass that takes longer than the interval must not
	// pile up passes ahead of every call (each would wait behind all of
	// them, and the queue would grow without bound).
	allocTicked atomic.Bool
	generation  int // bumped on Failover; stale timers compare it
	// operations with an ID awaiting acknowledgement, by framework ID and
	// operation ID (see storage.go).
	operations map[string]map[string]*trackedOperation
}

// New returns a master. Close stops it.
func New(cfg Config) (*Master, error) {
	cfg.setDefaults()
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("master: port %d out of range", cfg.Port)
	}
	m := &Master{
		cfg:             cfg,
		mb:              wire.NewMailbox(),
		done:            make(chan struct{}),
		frameworks:      map[string]*framework{},
		completedIDs:    map[string]bool{},
		agents:          map[string]*agent{},
		recovered:       map[string]mesos.AgentInfo{},
		unreachable:     map[string]mesos.TimeInfo{},
		removed:         map[string]bool{},
		offers:          map[string]*offer{},
		startTime:       time.Now(),
		roleAllocations: map[string]int{},
		terminalCounts:  map[mesos.TaskState]int{},
	}
	m.elect(newUUID())
	m.loop.Add(1)
	go m.allocationLoop()
	glog.Infof("master %s started (%s:%d)", m.id, cfg.Hostname, cfg.Port)
	return m, nil
}

// elect makes id the master's ID (start or failover).
func (m *Master) elect(id string) {
	m.id = id
	m.electedTime = time.Now()
	m.nextFramework = 0
	m.nextOffer = 0
	ip := net.ParseIP(m.cfg.Hostname).To4()
	var ipNum uint32
	if ip != nil {
		// MasterInfo.ip is the address in network order read as a
		// little-endian integer: 127.0.0.1 is 16777343.
		ipNum = uint32(ip[0]) | uint32(ip[1])<<8 | uint32(ip[2])<<16 | uint32(ip[3])<<24
	}
	port := uint32(m.cfg.Port)
	pid := fmt.Sprintf("master@%s:%d", m.cfg.Hostname, m.cfg.Port)
	m.info = mesos.MasterInfo{
		ID:       id,
		IP:       ipNum,
		Port:     &port,
		PID:      proto.String(pid),
		Hostname: proto.String(m.cfg.Hostname),
		Version:  proto.String(Version),
		Address: &mesos.Address{
			Hostname: proto.String(m.cfg.Hostname),
			IP:       proto.String(m.cfg.Hostname),
			Port:     int32(m.cfg.Port),
		},
		// Mesos 1.12 also lists QUOTA_V2; mesos-go v0.0.11's JSON decoder
		// rejects that value, and 1.10 does not send it.
		Capabilities: []mesos.MasterInfo_Capability{
			{Type: mesos.MasterInfo_Capability_AGENT_UPDATE},
			{Type: mesos.MasterInfo_Capability_AGENT_DRAINING},
		},
	}
	m.idMu.Lock()
	m.publicID = id
	m.idMu.Unlock()
}

// ID is the current master ID (it changes on Failover).
func (m *Master) ID() string {
	m.idMu.Lock()
	defer m.idMu.Unlock()
	return m.publicID
}

// Handler serves /api/v1/scheduler, /master/state, /state, /health and
// /metrics/snapshot.
func (m *Master) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/scheduler", m.serveScheduler)
	state := m.cfg.Credentials.Require(basicauth.RealmReadOnly, http.HandlerFunc(m.serveState))
	mux.Handle("/master/state", state)
	mux.Handle("/state", state)
	mux.HandleFunc("/master/health", m.serveHealth)
	mux.HandleFunc("/health", m.serveHealth)
	mux.HandleFunc("/metrics/snapshot", m.serveMetrics)
	m.operatorRoutes(mux)
	return mux
}

func (m *Master) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// AgentDisconnected tells the master that an agent's connection broke.
func (m *Master) AgentDisconnected(agentID mesos.AgentID) {
	m.post(func() { m.agentDisconnected(agentID.Value) })
}

// Failover simulates a master failover: a new master ID, every scheduler
// stream closed without an event, and frameworks, offers and agents
// forgotten until frameworks re-subscribe and agents re-register. Agents
// known before are kept as "recovered" (Mesos keeps them in its registry),
// so that reconciliation for their tasks gets no answer until they are
// back.
func (m *Master) Failover() {
	m.call(func() {
		old := m.id
		m.generation++
		for _, f := range m.frameworks {
			if f.stream != nil {
				f.stream.close()
			}
		}
		for id, a := range m.agents {
			m.recovered[id] = a.info
		}
		m.frameworks = map[string]*framework{}
		m.completed = nil
		m.completedIDs = map[string]bool{}
		m.agents = map[string]*agent{}
		m.offers = map[string]*offer{}
		m.operations = nil
		// Unreachable agents stay in the registry across a failover;
		// "removed" is in-memory only.
		m.removed = map[string]bool{}
		m.elect(newUUID())
		gen := m.generation
		if len(m.recovered) > 0 {
			m.after(m.cfg.AgentReregisterTimeout, func() {
				if m.generation == gen {
					m.recoveredAgentsTimeout()
				}
			})
		}
		glog.Infof("master failed over: %s is now %s; waiting for %d agents to re-register", old, m.id, len(m.recovered))
	})
}

// Close stops the master and ends every scheduler stream.
func (m *Master) Close() {
	m.once.Do(func() {
		// Streams watch m.done, so their handlers return even if the
		// mailbox drops the function that would have closed them.
		m.call(func() {
			for _, f := range m.frameworks {
				if f.stream != nil {
					f.stream.close()
				}
			}
		})
		close(m.done)
		m.mb.Close()
		m.loop.Wait()
		glog.Infof("master %s stopped", m.ID())
	})
}

// post queues f on the actor. It reports false once the master is closed.
func (m *Master) post(f func()) bool {
	select {
	case <-m.done:
		return false
	default:
	}
	return m.mb.Post(f)
}

// call runs f on the actor and waits for it. It reports false if the
// master closed before f ran.
func (m *Master) call(f func()) bool {
	ran := make(chan struct{})
	if !m.post(func() { f(); close(ran) }) {
		return false
	}
	select {
	case <-ran:
		return true
	case <-m.done:
		// Close may have dropped f; it may also have run.
		select {
		case <-ran:
			return true
		default:
			return false
		}
	}
}

// after runs f on the actor once d has passed (unless the master closed).
func (m *Master) after(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() { m.post(f) })
}

// allocationLoop runs the allocator every AllocationInterval.
func (m *Master) allocationLoop() {
	defer m.loop.Done()
	t := time.NewTicker(m.cfg.AllocationInterval)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
			if m.allocTicked.Swap(true) {
				continue
			}
			m.post(func() {
				m.allocTicked.Store(false)
				m.allocate()
			})
		}
	}
}

// allocateSoon runs an allocation after the messages already queued, as
// the Mesos allocator does on events (framework added or revived, agent
// added) between its periodic runs.
func (m *Master) allocateSoon() {
	if m.allocPending {
		return
	}
	m.allocPending = true
	m.post(func() {
		m.allocPending = false
		m.allocate()
	})
}

var _ wire.Master = (*Master)(nil)

// RegisterAgent is an agent's (re-)registration.
func (m *Master) RegisterAgent(reg wire.Registration) {
	m.post(func() { m.registerAgent(reg) })
}

// StatusUpdate is the head of one task's status update stream.
func (m *Master) StatusUpdate(agentID mesos.AgentID, u wire.StatusUpdate) {
	m.post(func() { m.statusUpdate(agentID.Value, u) })
}

// ExecutorExited reports an executor process's end.
func (m *Master) ExecutorExited(agentID mesos.AgentID, frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, status int32) {
	m.post(func() { m.executorExited(agentID.Value, frameworkID.Value, executorID.Value, status) })
}

// ExecutorMessage is an executor's MESSAGE to its framework.
func (m *Master) ExecutorMessage(agentID mesos.AgentID, frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, data []byte) {
	m.post(func() { m.executorMessage(agentID.Value, frameworkID.Value, executorID.Value, data) })
}

// newUUID returns a random (version 4) UUID in text form.
func newUUID() string {
	b := newUUIDBytes()
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newUUIDBytes() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// nowSeconds is a TaskStatus timestamp.
func nowSeconds() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// event constructors

func updateEvent(st mesos.TaskStatus) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: st}}
}

func errorEvent(msg string) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_ERROR, Error: &scheduler.Event_Error{Message: msg}}
}

var heartbeatEvent = scheduler.Event{Type: scheduler.Event_HEARTBEAT}

// masterStatus is a status update generated by the master: SOURCE_MASTER,
// a timestamp, never a uuid.
func masterStatus(taskID mesos.TaskID, state mesos.TaskState, message string, reason mesos.TaskStatus_Reason, agentID *mesos.AgentID, executorID *mesos.ExecutorID) mesos.TaskStatus {
	st := mesos.TaskStatus{
		TaskID:    taskID,
		State:     state.Enum(),
		Source:    mesos.SOURCE_MASTER.Enum(),
		Reason:    reason.Enum(),
		Timestamp: proto.Float64(nowSeconds()),
	}
	if message != "" {
		st.Message = proto.String(message)
	}
	if agentID != nil && agentID.Value != "" {
		a := *agentID
		st.AgentID = &a
	}
	if executorID != nil {
		e := *executorID
		st.ExecutorID = &e
	}
	return st
}
