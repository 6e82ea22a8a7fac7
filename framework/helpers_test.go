package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/frameworktest"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/localmesos"
)

// The framework runs its executor by starting its own binary again; under
// go test that is this test binary, so such a start is handed to the
// framework before any test runs.
func TestMain(m *testing.M) {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(testworkload.New())
	}
	// Built with -race, this binary (and so every executor) sleeps a second
	// when it exits, for late race reports (GORACE atexit_sleep_ms, 1000 by
	// default): each test cluster's Close then waited its whole shutdown
	// grace period for every executor and killed it. Executors inherit the
	// agents' environment, which is this process's.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	code := m.Run()
	if testBinary.path != "" {
		os.RemoveAll(filepath.Dir(testBinary.path))
	}
	os.Exit(code)
}

const (
	// stepTimeout bounds each wait of a test: generous, for a 2-core CI
	// machine running every package's tests at once; a passing test never
	// waits for it.
	stepTimeout  = 60 * time.Second
	pollInterval = 50 * time.Millisecond
	// The agents' task ports. They must lie outside the kernel's ephemeral
	// range (32768-60999 by default): whatever binds port 0 gets a port
	// from there (the agents' own listeners on the very IPs the tasks
	// bind; a test elsewhere on the host listening on all addresses, such
	// as a host-network redis container), and a task offered that port
	// cannot bind it: redis-server exits
	// with status 1, and its relaunch, sticky to that agent, gets the same
	// lowest free port and fails again. (Real Mesos agents offer
	// [31000-32000] by default, below that range too.) 31xxx is used by
	// other packages' tests, whose Docker tasks may publish such ports on
	// all addresses, so ours are lower still.
	testPortsBegin, testPortsEnd = 24000, 24899
)

var testResources = fmt.Sprintf("cpus:4;mem:4096;disk:4096;ports:[%d-%d]", testPortsBegin, testPortsEnd)

// checkTestPorts fails the test if the kernel may hand out the task ports
// as ephemeral ports.
func checkTestPorts(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return // not Linux: nothing known
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		t.Fatalf("ip_local_port_range %q: %v", b, err)
	}
	if testPortsBegin <= high && low <= testPortsEnd {
		t.Fatalf("the task ports %d-%d overlap the kernel's ephemeral ports %d-%d (net.ipv4.ip_local_port_range): tasks would fail to bind", testPortsBegin, testPortsEnd, low, high)
	}
}

// agentNets counts the clusters this process started: each gets agent
// addresses of its own (127.33.<n>.2, .3, ...), so a workload process of an
// earlier test that is still exiting cannot hold a later test's port, and
// other packages' tests (localmesos defaults: 127.0.0.2..., ports
// 31000-32000) never collide with ours.
var agentNets atomic.Int32

func testAgentIP() string {
	n := (int32(os.Getpid()) + agentNets.Add(1)) % 250
	return fmt.Sprintf("127.33.%d.2", n)
}

// startCluster starts a localmesos cluster with short timers in the test
// process; it is closed when the test ends.
func startCluster(t *testing.T, agents int) *localmesos.Cluster {
	t.Helper()
	checkTestPorts(t)
	cfg := localmesos.NewConfig()
	cfg.Port = 0
	cfg.Agents = agents
	cfg.FirstAgentIP = testAgentIP()
	cfg.Resources = testResources
	cfg.WorkDir = t.TempDir()
	cfg.AllocationInterval = 50 * time.Millisecond
	cfg.HeartbeatInterval = time.Second
	cfg.AgentPingTimeout = 2 * time.Second
	cfg.ExecutorShutdownGracePeriod = time.Second
	cfg.StatusUpdateRetryInterval = time.Second
	// The cluster runs until Close, not until a start timeout.
	c, err := localmesos.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("localmesos: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logSandboxes(t, c.WorkDir())
		}
		c.Close()
	})
	return c
}

// logSandboxes logs the end of every executor run's stderr (the executor's
// log and the task's stderr) and stdout (where a workload such as
// redis-server logs why it exited), to see why tasks failed. The "latest"
// links are skipped: they repeat a run.
func logSandboxes(t *testing.T, workDir string) {
	for _, name := range []string{"stderr", "stdout"} {
		files, _ := filepath.Glob(filepath.Join(workDir, "*", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", name))
		more, _ := filepath.Glob(filepath.Join(workDir, "slaves", "*", "frameworks", "*", "executors", "*", "runs", "*", name))
		for _, f := range append(files, more...) {
			if filepath.Base(filepath.Dir(f)) == "latest" {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil || len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("%s:\n%s", f, strings.Join(lines[max(0, len(lines)-8):], "\n"))
		}
	}
}

// testConfig is a framework configuration with short timers for tests,
// running against master with embedded etcd in dataDir.
func testConfig(t *testing.T, master, dataDir string) framework.Config {
	t.Helper()
	checkTestPorts(t)
	cfg := frameworktest.Config(master, dataDir)
	cfg.LocalAgents = 3
	cfg.Runtime = "process"
	cfg.Name = "e2e"
	cfg.ExecutorStatsInterval = 0 // the executor's default; callbacks_test sets its own
	cfg.Creator.StickyWait = 3 * time.Second
	cfg.Offers.Policy.CoLocateAfter = 3 * time.Second
	cfg.Local.AllocationInterval = 50 * time.Millisecond
	cfg.Local.HeartbeatInterval = time.Second
	cfg.Local.ExecutorShutdownGracePeriod = time.Second
	cfg.Local.StatusUpdateRetryInterval = time.Second
	cfg.LocalResources = testResources
	cfg.Local.FirstAgentIP = testAgentIP()
	return cfg
}

// scheduler is a framework run in this process.
type scheduler struct {
	// api is the REST API's URL, known once it serves (waitHealthy).
	api     string
	apiAddr chan string // from Config.APIReady
	cancel  context.CancelFunc
	stopped chan struct{}
	err     error
}

// runScheduler runs the framework with cfg in this process and waits until
// its health check passes; it is stopped when the test ends.
func runScheduler(t *testing.T, cfg framework.Config, w stateful.Workload) *scheduler {
	t.Helper()
	s := startScheduler(t, cfg, w)
	s.waitHealthy(t)
	return s
}

// startScheduler runs the framework with cfg in this process, its REST API
// on a free port it picks itself, without waiting for anything; it is
// stopped when the test ends.
func startScheduler(t *testing.T, cfg framework.Config, w stateful.Workload) *scheduler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &scheduler{apiAddr: make(chan string, 1), cancel: cancel, stopped: make(chan struct{})}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.APIReady = func(addr string) { s.apiAddr <- addr }
	go func() {
		defer close(s.stopped)
		s.err = framework.Run(ctx, cfg, w)
	}()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	return s
}

// serving reports whether the scheduler's REST API listens, and sets api
// when it does.
func (s *scheduler) serving() bool {
	if s.api != "" {
		return true
	}
	select {
	case addr := <-s.apiAddr:
		s.api = "http://" + addr
		return true
	default:
		return false
	}
}

// waitHealthy waits until the scheduler serves its REST API and its health
// check passes.
func (s *scheduler) waitHealthy(t *testing.T) {
	t.Helper()
	eventually(t, "scheduler healthy", func() (bool, string) {
		select {
		case <-s.stopped:
			t.Fatalf("scheduler stopped before it was healthy: %v", s.err)
		default:
		}
		if !s.serving() {
			return false, "the REST API does not listen yet"
		}
		code, body, err := do(http.MethodGet, s.api+"/v1/health", nil)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

// stop stops the scheduler and returns the error Run returned.
func (s *scheduler) stop() error {
	s.cancel()
	select {
	case <-s.stopped:
		return s.err
	case <-time.After(30 * time.Second):
		return errors.New("still running 30 s after it was told to stop")
	}
}

// eventually polls check until it is done, failing the test with the last
// message after stepTimeout.
func eventually(t *testing.T, what string, check func() (bool, string)) {
	t.Helper()
	eventuallyWithin(t, stepTimeout, what, check)
}

func eventuallyWithin(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	if ok, msg := poll(timeout, check); !ok {
		t.Fatalf("waited %v for %s; last: %s", timeout, what, msg)
	}
}

// poll calls check every pollInterval until it holds or timeout has
// passed, and returns its last answer: for a caller that goes on when
// check never held.
func poll(timeout time.Duration, check func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := check()
		if ok || time.Now().After(deadline) {
			return ok, msg
		}
		time.Sleep(pollInterval)
	}
}

// startLogged starts cmd with its output appended to logPath and returns a
// channel closed once it has exited (cmd.ProcessState is then set).
func startLogged(t *testing.T, cmd *exec.Cmd, logPath string) <-chan struct{} {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return exited
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func do(method, url string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			r = strings.NewReader(b)
		default:
			raw, err := json.Marshal(body)
			if err != nil {
				return 0, nil, err
			}
			r = bytes.NewReader(raw)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call sends a request and checks the status code.
func call(t *testing.T, method, url string, body any, want int) []byte {
	t.Helper()
	code, b, err := do(method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, code, want, b)
	}
	return b
}

// get returns the instance, or nil with the status code if it is not 200.
func get(t *testing.T, api, name string) (*stateful.Instance, int) {
	t.Helper()
	code, b, err := do(http.MethodGet, api+"/v1/instances/"+name, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", name, err)
	}
	if code != http.StatusOK {
		return nil, code
	}
	var inst stateful.Instance
	if err := json.Unmarshal(b, &inst); err != nil {
		t.Fatalf("GET %s: %v: %s", name, err, b)
	}
	return &inst, code
}

// waitRunning waits until the instance is RUNNING with every task running
// and healthy, and returns it.
func waitRunning(t *testing.T, api, name string) *stateful.Instance {
	t.Helper()
	var inst *stateful.Instance
	eventually(t, name+" RUNNING", func() (bool, string) {
		var code int
		inst, code = get(t, api, name)
		if inst == nil {
			return false, fmt.Sprintf("status %d", code)
		}
		if inst.Status != stateful.StatusRunning || len(inst.Tasks) != inst.TaskCount() {
			return false, describe(inst)
		}
		for _, task := range inst.Tasks {
			if task.State != stateful.TaskRunning || !task.Healthy {
				return false, describe(inst)
			}
		}
		return true, ""
	})
	return inst
}

func describe(inst *stateful.Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", inst.Name, inst.Status, inst.Message)
	for _, t := range inst.Tasks {
		fmt.Fprintf(&b, "; %s %s %s healthy=%t agent=%s %s %s", t.Name, t.Role, t.State, t.Healthy, t.AgentID, t.Message, t.Unplaced)
	}
	return b.String()
}

// masterTask is a task as localmesos' /master/state shows it.
type masterTask struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	AgentID string `json:"slave_id"`
}

// masterTasks returns the tasks the master knows of every framework, by
// state (active, unreachable; not completed ones).
func masterTasks(t *testing.T, masterURL string) []masterTask {
	t.Helper()
	return masterTasksOf(t, masterURL, false)
}

// masterTasksOf returns the tasks of every framework in the master's
// state: active and unreachable ones, and completed ones if asked.
func masterTasksOf(t *testing.T, masterURL string, completed bool) []masterTask {
	t.Helper()
	code, b, err := do(http.MethodGet, masterURL+"/master/state", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /master/state: %d %v", code, err)
	}
	var state struct {
		Frameworks []struct {
			Tasks            []masterTask `json:"tasks"`
			UnreachableTasks []masterTask `json:"unreachable_tasks"`
			CompletedTasks   []masterTask `json:"completed_tasks"`
		} `json:"frameworks"`
	}
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatalf("decode /master/state: %v", err)
	}
	var out []masterTask
	for _, f := range state.Frameworks {
		out = append(out, f.Tasks...)
		out = append(out, f.UnreachableTasks...)
		if completed {
			out = append(out, f.CompletedTasks...)
		}
	}
	return out
}

// liveMasterTasks counts the master's non-terminal tasks of instance.
func liveMasterTasks(t *testing.T, masterURL, instance string) []masterTask {
	t.Helper()
	var out []masterTask
	for _, mt := range masterTasks(t, masterURL) {
		id, err := stateful.ParseTaskID(mt.ID)
		if err != nil || id.Instance != instance {
			continue
		}
		st, _ := stateful.ParseTaskState(mt.State)
		if !st.IsTerminal() {
			out = append(out, mt)
		}
	}
	return out
}

// processesOf lists the pids of processes started for the instance's
// tasks (workloads and executors), found by their environment.
func processesOf(instance string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			s := string(kv)
			if strings.HasPrefix(s, "STATEFUL_TASK_ID="+instance+"-") || strings.HasPrefix(s, "MESOS_EXECUTOR_ID="+instance+"-") {
				pids = append(pids, filepath.Base(d))
				break
			}
		}
	}
	return pids
}

// frameworkID returns the ID of the (only) framework the master knows.
func frameworkID(t *testing.T, masterURL string) string {
	t.Helper()
	_, b, err := do(http.MethodGet, masterURL+"/master/state", nil)
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Frameworks []struct {
			ID string `json:"id"`
		} `json:"frameworks"`
	}
	if err := json.Unmarshal(b, &state); err != nil || len(state.Frameworks) != 1 {
		t.Fatalf("/master/state frameworks: %v %s", err, b)
	}
	return state.Frameworks[0].ID
}

// killExecutor kills the executor of task's current attempt, as a crash
// would.
func killExecutor(t *testing.T, c *localmesos.Cluster, task *stateful.Task) {
	t.Helper()
	if err := c.KillExecutor(task.AgentID, frameworkID(t, c.MasterURL()), task.TaskID); err != nil {
		t.Fatalf("kill executor of %s: %v", task.TaskID, err)
	}
}
