// Package localmesos is an embedded, Mesos-compatible cluster: a master
// serving the v1 scheduler HTTP API and agents serving the v1 executor HTTP
// API, which launch executors as real OS processes. It follows Mesos 1.10
// semantics (see mesos-protocol.md) so that a framework that works here works
// unchanged against a real master.
//
// Start a cluster with Start(ctx, NewConfig()); point a scheduler at
// Cluster.MasterURL(). Faults are injected with RemoveAgent, RestartAgent,
// KillExecutor and FailoverMaster, or over HTTP under /admin/ on the
// master's address.
package localmesos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/internal/secretfile"
	"github.com/mesos-stateful/stateful/localmesos/internal/agent"
	"github.com/mesos-stateful/stateful/localmesos/internal/basicauth"
	"github.com/mesos-stateful/stateful/localmesos/internal/master"
)

// Defaults, as on Mesos where Mesos has the setting.
const (
	DefaultPort      = 5050
	DefaultAgents    = 3
	DefaultResources = "cpus:4;mem:8192;disk:20480;ports:[31000-32000]"
	DefaultHost      = "127.0.0.1"
	// DefaultFirstAgentIP is the loopback alias of the first agent; the
	// others follow (127.0.0.3, ...). Linux routes all of 127/8 to lo.
	DefaultFirstAgentIP = "127.0.0.2"

	DefaultHeartbeatInterval             = 15 * time.Second
	DefaultAllocationInterval            = time.Second
	DefaultAgentPingTimeout              = 75 * time.Second
	DefaultExecutorRegistrationTimeout   = time.Minute
	DefaultExecutorShutdownGracePeriod   = 5 * time.Second
	DefaultExecutorReregistrationTimeout = 2 * time.Second
	DefaultStatusUpdateRetryInterval     = 10 * time.Second
)

// Config describes a local cluster.
type Config struct {
	// Host and Port are where the master listens. Port 0 picks a free port.
	Host string
	Port int
	// Agents is how many agents to start.
	Agents int
	// Resources is each agent's resources in Mesos' --resources syntax.
	Resources string
	// FirstAgentIP is the address of agent 0; agent i gets FirstAgentIP+i.
	FirstAgentIP string
	// SharePorts gives every agent the whole ports range. By default the
	// range is divided among agents, because they share this host's port
	// space and a task binding every address would collide otherwise.
	SharePorts bool
	// WorkDir holds sandboxes and agent state. Empty: a new temporary
	// directory, removed by Close. Agents checkpoint what they run here,
	// as Mesos agents do: a cluster started again on the same work dir
	// (after a Close with KeepTasksOnClose, or after the process was
	// killed) gets its agents back with the same IDs, and the executors
	// and tasks of checkpointing frameworks that still run are recovered.
	WorkDir string
	// KeepTasksOnClose makes Close leave the executors and tasks of
	// checkpointing frameworks running, for the next Start on WorkDir to
	// recover, as a stopped Mesos agent leaves them. By default Close
	// stops every task.
	KeepTasksOnClose bool
	// Credentials maps principals to secrets (see LoadCredentials). If not
	// empty, the master requires HTTP Basic authentication as Mesos does
	// with --credentials and --authenticate_http_frameworks (and
	// _readonly, _readwrite): on the scheduler API, /master/state and
	// /admin/*; a wrong or missing secret is a 401 with a Basic challenge.
	Credentials map[string]string

	HeartbeatInterval             time.Duration
	AllocationInterval            time.Duration
	AgentPingTimeout              time.Duration
	ExecutorRegistrationTimeout   time.Duration
	ExecutorShutdownGracePeriod   time.Duration
	ExecutorReregistrationTimeout time.Duration
	StatusUpdateRetryInterval     time.Duration
}

// NewConfig returns the defaults: three agents with Mesos' default timers.
func NewConfig() Config {
	return Config{
		Host:                          DefaultHost,
		Port:                          DefaultPort,
		Agents:                        DefaultAgents,
		Resources:                     DefaultResources,
		FirstAgentIP:                  DefaultFirstAgentIP,
		HeartbeatInterval:             DefaultHeartbeatInterval,
		AllocationInterval:            DefaultAllocationInterval,
		AgentPingTimeout:              DefaultAgentPingTimeout,
		ExecutorRegistrationTimeout:   DefaultExecutorRegistrationTimeout,
		ExecutorShutdownGracePeriod:   DefaultExecutorShutdownGracePeriod,
		ExecutorReregistrationTimeout: DefaultExecutorReregistrationTimeout,
		StatusUpdateRetryInterval:     DefaultStatusUpdateRetryInterval,
	}
}

// Validate explains the first setting that cannot work.
func (c Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d: must be 0-65535", c.Port)
	}
	if c.Agents < 1 || c.Agents > 250 {
		return fmt.Errorf("agents %d: must be 1-250", c.Agents)
	}
	if net.ParseIP(c.Host) == nil {
		return fmt.Errorf("host %q: not an IP address", c.Host)
	}
	ip := net.ParseIP(c.FirstAgentIP).To4()
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("first agent IP %q: must be an IPv4 loopback address", c.FirstAgentIP)
	}
	if int(ip[3])+c.Agents-1 > 254 {
		return fmt.Errorf("first agent IP %q: no room for %d agents", c.FirstAgentIP, c.Agents)
	}
	if c.KeepTasksOnClose && c.WorkDir == "" {
		return errors.New("keep tasks on close: needs a work dir to recover them from")
	}
	rs, err := ParseResources(c.Resources)
	if err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	if !c.SharePorts {
		if _, err := splitPorts(rs, 0, c.Agents); err != nil {
			return fmt.Errorf("resources: %w", err)
		}
	}
	return positive(map[string]time.Duration{
		"heartbeat interval":              c.HeartbeatInterval,
		"allocation interval":             c.AllocationInterval,
		"agent ping timeout":              c.AgentPingTimeout,
		"executor registration timeout":   c.ExecutorRegistrationTimeout,
		"executor shutdown grace period":  c.ExecutorShutdownGracePeriod,
		"executor reregistration timeout": c.ExecutorReregistrationTimeout,
		"status update retry interval":    c.StatusUpdateRetryInterval,
	})
}

// positive checks that every named duration is more than zero, naming the
// first (by name, so the error does not depend on map order) that is not.
func positive(durations map[string]time.Duration) error {
	for _, name := range slices.Sorted(maps.Keys(durations)) {
		if d := durations[name]; d <= 0 {
			return fmt.Errorf("%s %v: must be positive", name, d)
		}
	}
	return nil
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg      Config
	master   *master.Master
	server   *http.Server
	listener net.Listener
	url      string
	tmpDir   string

	mu     sync.Mutex
	agents []*agent.Agent
	gone   map[string]bool // removed agents

	serveErr  chan error
	closeOnce sync.Once
	closed    chan struct{}
}

// AgentInfo describes one agent of the cluster.
type AgentInfo struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Address  string `json:"address"`
	Removed  bool   `json:"removed"`
}

// Start starts a master and cfg.Agents agents and returns once the agents
// are registered. On error everything started so far is stopped. The
// cluster runs until Close or until ctx ends.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("localmesos: invalid config: %w", err)
	}
	c = &Cluster{cfg: cfg, gone: map[string]bool{}, serveErr: make(chan error, 1), closed: make(chan struct{})}
	defer func() {
		if err != nil {
			// Executors recovered by the agents started so far are left
			// running: a failed start must not cost the tasks a restart
			// was meant to keep.
			c.cfg.KeepTasksOnClose = true
			c.Close()
			c = nil
		}
	}()
	if cfg.WorkDir == "" {
		if c.tmpDir, err = os.MkdirTemp("", "localmesos-"); err != nil {
			return c, fmt.Errorf("localmesos: work dir: %w", err)
		}
		cfg.WorkDir = c.tmpDir
		c.cfg.WorkDir = c.tmpDir
	}
	if err = os.MkdirAll(cfg.WorkDir, 0o700); err != nil {
		return c, fmt.Errorf("localmesos: work dir: %w", err)
	}
	c.listener, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return c, fmt.Errorf("localmesos: master listen: %w", err)
	}
	port := c.listener.Addr().(*net.TCPAddr).Port
	c.url = "http://" + net.JoinHostPort(cfg.Host, strconv.Itoa(port))

	c.master, err = master.New(master.Config{
		Hostname:           cfg.Host,
		Port:               port,
		HeartbeatInterval:  cfg.HeartbeatInterval,
		AllocationInterval: cfg.AllocationInterval,
		AgentPingTimeout:   cfg.AgentPingTimeout,
		// The agent's status update retry interval also paces operation
		// status retries, as on a Mesos agent.
		OperationStatusRetryInterval: cfg.StatusUpdateRetryInterval,
		Credentials:                  cfg.Credentials,
	})
	if err != nil {
		return c, fmt.Errorf("localmesos: master: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", c.master.Handler())
	// Fault injection is for tests on this machine: served on a loopback
	// master, or behind the credentials.
	if ip := net.ParseIP(cfg.Host); (ip != nil && ip.IsLoopback()) || len(cfg.Credentials) > 0 {
		admin := http.NewServeMux()
		c.adminRoutes(admin)
		mux.Handle("/admin/", basicauth.Credentials(cfg.Credentials).Require(basicauth.RealmReadWrite, admin))
	}
	// No WriteTimeout: scheduler subscriptions are endless streams.
	c.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// Not c: a failed Start sets its result to nil.
	srv, ln, serveErr := c.server, c.listener, c.serveErr
	go func() { serveErr <- srv.Serve(ln) }()

	total, _ := ParseResources(cfg.Resources) // validated above
	first := net.ParseIP(cfg.FirstAgentIP).To4()
	for i := 0; i < cfg.Agents; i++ {
		rs := total
		if !cfg.SharePorts {
			if rs, err = splitPorts(total, i, cfg.Agents); err != nil {
				return c, err
			}
		}
		ip := net.IPv4(first[0], first[1], first[2], first[3]+byte(i)).String()
		id := fmt.Sprintf("%s-S%d", c.master.ID(), i)
		a, err := agent.New(agent.Config{
			ID:                            mesos.AgentID{Value: id},
			IP:                            ip,
			Hostname:                      ip,
			Resources:                     rs,
			WorkDir:                       filepath.Join(cfg.WorkDir, "agent-"+strconv.Itoa(i)),
			ExecutorRegistrationTimeout:   cfg.ExecutorRegistrationTimeout,
			ExecutorShutdownGracePeriod:   cfg.ExecutorShutdownGracePeriod,
			ExecutorReregistrationTimeout: cfg.ExecutorReregistrationTimeout,
			StatusUpdateRetryInterval:     cfg.StatusUpdateRetryInterval,
		}, c.master)
		if err != nil {
			return c, fmt.Errorf("localmesos: agent %d: %w", i, err)
		}
		c.mu.Lock()
		c.agents = append(c.agents, a)
		c.mu.Unlock()
		if err := a.Start(); err != nil {
			return c, fmt.Errorf("localmesos: agent %d: %w", i, err)
		}
		// A recovered agent keeps the ID it had.
		glog.V(1).Infof("localmesos: agent %s on %s", a.ID().Value, a.Address())
	}
	c.warnUnusedAgents()
	glog.Infof("localmesos: master %s at %s with %d agents (work dir %s)", c.master.ID(), c.url, cfg.Agents, cfg.WorkDir)
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-c.closed:
		}
	}()
	return c, nil
}

// warnUnusedAgents names the agents of an earlier run on the work dir
// that this configuration does not start: what they ran is not recovered.
func (c *Cluster) warnUnusedAgents() {
	for i := c.cfg.Agents; ; i++ {
		dir := filepath.Join(c.cfg.WorkDir, "agent-"+strconv.Itoa(i))
		if _, err := os.Stat(dir); err != nil {
			return
		}
		if _, err := os.Lstat(filepath.Join(dir, "meta", "slaves", "latest")); err == nil {
			glog.Warningf("localmesos: %s holds an agent this configuration (%d agents) does not start; its executors and tasks are not recovered", dir, c.cfg.Agents)
		}
	}
}

// MasterURL is the master's base URL, e.g. http://127.0.0.1:5050. The
// scheduler API is MasterURL()+"/api/v1/scheduler".
func (c *Cluster) MasterURL() string { return c.url }

// WorkDir is where sandboxes live.
func (c *Cluster) WorkDir() string { return c.cfg.WorkDir }

// Agents lists every agent, removed ones included.
func (c *Cluster) Agents() []AgentInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]AgentInfo, 0, len(c.agents))
	for _, a := range c.agents {
		id := a.ID().Value
		host, _, _ := net.SplitHostPort(a.Address())
		out = append(out, AgentInfo{ID: id, Hostname: host, Address: a.Address(), Removed: c.gone[id]})
	}
	return out
}

// ErrUnknownAgent is returned for an agent ID the cluster does not have.
var ErrUnknownAgent = errors.New("localmesos: unknown agent")

func (c *Cluster) agent(id string) (*agent.Agent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.agents {
		if a.ID().Value == id {
			if c.gone[id] {
				return nil, fmt.Errorf("localmesos: agent %s was removed", id)
			}
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownAgent, id)
}

// RemoveAgent simulates the loss of a host: the agent stops answering and
// every process it started is killed. The master sees the connection drop
// at once and marks the agent unreachable after the agent ping timeout, as
// Mesos does: TASK_LOST (or TASK_UNREACHABLE for PARTITION_AWARE frameworks)
// and FAILURE{agent_id}.
func (c *Cluster) RemoveAgent(id string) error {
	a, err := c.agent(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.gone[id] = true
	c.mu.Unlock()
	glog.Infof("localmesos: removing agent %s (host loss)", id)
	a.Stop(agent.HostLost)
	c.master.AgentDisconnected(a.ID())
	return nil
}

// RestartAgent simulates an agent process restart on the same work dir:
// executors of checkpointing frameworks survive and re-subscribe, the
// others are killed; the agent then re-registers with the master.
func (c *Cluster) RestartAgent(id string) error {
	a, err := c.agent(id)
	if err != nil {
		return err
	}
	glog.Infof("localmesos: restarting agent %s", id)
	a.Stop(agent.Restart)
	c.master.AgentDisconnected(a.ID())
	if err := a.Start(); err != nil {
		return fmt.Errorf("localmesos: restart agent %s: %w", id, err)
	}
	return nil
}

// KillExecutor sends SIGKILL to an executor's process group, as a crash
// would. For a command task the executor ID is the task ID.
func (c *Cluster) KillExecutor(agentID, frameworkID, executorID string) error {
	a, err := c.agent(agentID)
	if err != nil {
		return err
	}
	glog.Infof("localmesos: killing executor %s of framework %s on agent %s", executorID, frameworkID, agentID)
	return a.KillExecutor(mesos.FrameworkID{Value: frameworkID}, mesos.ExecutorID{Value: executorID})
}

// FailoverMaster simulates a master failover: every scheduler stream ends,
// the master forgets frameworks and gets a new ID, and the agents
// re-register with it.
func (c *Cluster) FailoverMaster() {
	glog.Infof("localmesos: master failover")
	c.master.Failover()
	c.mu.Lock()
	agents := append([]*agent.Agent(nil), c.agents...)
	gone := make(map[string]bool, len(c.gone))
	for k, v := range c.gone {
		gone[k] = v
	}
	c.mu.Unlock()
	for _, a := range agents {
		if !gone[a.ID().Value] {
			a.Reregister()
		}
	}
}

// Done is closed once the cluster has stopped.
func (c *Cluster) Done() <-chan struct{} { return c.closed }

// Close stops the cluster as one going away for good: the master stops
// first (no more offers, launches or scheduler streams), then every
// executor on every agent gets SHUTDOWN, all at once, and
// ExecutorShutdownGracePeriod to stop its tasks and exit (the toolkit's
// executor stops and removes its containers then; the built-in command
// executor sends its task SIGTERM, then SIGKILL). Whatever still runs after
// that is killed. So Close returns within about that grace period (plus a
// few seconds at most for HTTP calls in flight), and leaves no process
// behind. It is idempotent; concurrent calls wait for the first.
//
// With KeepTasksOnClose, Close instead stops the master and agents at once
// and leaves the executors and tasks of checkpointing frameworks running
// (the others are killed), as a stopped Mesos agent process does: the
// next Start on the same work dir recovers them.
//
// RemoveAgent, unlike Close, kills at once: a lost host has no time to
// stop anything.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		if c.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// Streams never end by themselves: close the master first so
			// Shutdown does not wait for them.
			if c.master != nil {
				c.master.Close()
			}
			_ = c.server.Shutdown(ctx)
			cancel()
			_ = c.server.Close()
		} else if c.listener != nil {
			c.listener.Close()
		}
		if c.master != nil {
			c.master.Close()
		}
		c.mu.Lock()
		agents := append([]*agent.Agent(nil), c.agents...)
		c.mu.Unlock()
		c.stopAgents(agents)
		if c.tmpDir != "" {
			os.RemoveAll(c.tmpDir)
		}
		close(c.closed)
		glog.Infof("localmesos: stopped")
	})
	return nil
}

// stopAgents stops every agent in parallel (stopAgent), bounded by the
// executor shutdown grace period. A removed agent has nothing left to
// drain.
func (c *Cluster) stopAgents(agents []*agent.Agent) {
	grace := c.cfg.ExecutorShutdownGracePeriod
	if grace <= 0 {
		grace = DefaultExecutorShutdownGracePeriod
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopAgent(ctx, a, c.cfg.KeepTasksOnClose)
		}()
	}
	wg.Wait()
}

// stopAgent stops an agent as a Mesos agent process stops: with keep, at
// once, leaving the executors and tasks of checkpointing frameworks
// running for the next start on the work dir; else its executors get
// SHUTDOWN and until ctx ends to stop.
func stopAgent(ctx context.Context, a *agent.Agent, keep bool) {
	if keep {
		a.Detach()
		return
	}
	a.Drain(ctx)
	a.Close()
}

// LoadCredentials reads a credentials file in Mesos' JSON format,
// {"credentials": [{"principal": "p", "secret": "s"}, ...]}, which must be
// mode 0600.
func LoadCredentials(path string) (map[string]string, error) {
	data, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	var file struct {
		Credentials []struct {
			Principal *string `json:"principal"`
			Secret    *string `json:"secret"`
		} `json:"credentials"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("credentials file %s: want {\"credentials\": [{\"principal\": ..., \"secret\": ...}]}: %w", path, err)
	}
	creds := map[string]string{}
	for i, c := range file.Credentials {
		switch {
		case c.Principal == nil || *c.Principal == "":
			return nil, fmt.Errorf("credentials file %s: credential %d has no principal", path, i)
		case c.Secret == nil || *c.Secret == "":
			return nil, fmt.Errorf("credentials file %s: principal %q has no secret", path, *c.Principal)
		case strings.Contains(*c.Principal, ":"):
			return nil, fmt.Errorf("credentials file %s: principal %q has a ':', which HTTP Basic cannot carry", path, *c.Principal)
		}
		if _, dup := creds[*c.Principal]; dup {
			return nil, fmt.Errorf("credentials file %s: principal %q is listed twice", path, *c.Principal)
		}
		creds[*c.Principal] = *c.Secret
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("credentials file %s: no credentials", path)
	}
	return creds, nil
}

// adminRoutes serves fault injection over HTTP:
//
//	GET  /admin/agents                          the agents (JSON)
//	POST /admin/agents/{id}/remove              RemoveAgent
//	POST /admin/agents/{id}/restart             RestartAgent
//	POST /admin/agents/{id}/executors/kill?framework_id=F&executor_id=E   KillExecutor
//	POST /admin/master/failover                 FailoverMaster
func (c *Cluster) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/agents", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.Agents())
	})
	mux.HandleFunc("POST /admin/agents/{id}/remove", func(w http.ResponseWriter, r *http.Request) {
		adminAnswer(w, c.RemoveAgent(r.PathValue("id")))
	})
	mux.HandleFunc("POST /admin/agents/{id}/restart", func(w http.ResponseWriter, r *http.Request) {
		adminAnswer(w, c.RestartAgent(r.PathValue("id")))
	})
	mux.HandleFunc("POST /admin/agents/{id}/executors/kill", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fw, ex := q.Get("framework_id"), q.Get("executor_id")
		if fw == "" || ex == "" {
			http.Error(w, "framework_id and executor_id query parameters are required", http.StatusBadRequest)
			return
		}
		adminAnswer(w, c.KillExecutor(r.PathValue("id"), fw, ex))
	})
	mux.HandleFunc("POST /admin/master/failover", func(w http.ResponseWriter, r *http.Request) {
		c.FailoverMaster()
		adminAnswer(w, nil)
	})
}

func adminAnswer(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrUnknownAgent):
		http.Error(w, err.Error(), http.StatusNotFound)
	default:
		http.Error(w, err.Error(), http.StatusConflict)
	}
}
