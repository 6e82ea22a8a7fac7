package executor

// End-to-end tests: the real stateful-executor binary, launched by a
// localmesos agent for a scheduler that speaks the v1 scheduler API through
// mesos-go's httpsched, running real redis-server processes and containers.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/resources"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/internal/testimage"
	"github.com/mesos-stateful/stateful/localmesos"
)

var executorBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildExecutor builds cmd/stateful-executor once per test run.
func buildExecutor(t *testing.T) string {
	t.Helper()
	b := &executorBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "stateful-executor-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "stateful-executor")
		out, err := exec.Command("go", "build", "-o", b.path, "./cmd/stateful-executor").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// cluster is a localmesos cluster with one agent and a scheduler that
// records what it is told, acknowledges every update and launches tasks
// on the stateful executor.
type cluster struct {
	t      *testing.T
	lm     *localmesos.Cluster
	caller calls.Caller
	ctx    context.Context
	binary string
	fwID   string

	offers chan mesos.Offer

	mu       sync.Mutex
	updates  []mesos.TaskStatus
	messages [][]byte
	failures []scheduler.Event_Failure
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterWith(t, false)
}

// startClusterWith starts a cluster whose framework checkpoints or not.
func startClusterWith(t *testing.T, checkpoint bool) *cluster {
	t.Helper()
	bin := buildExecutor(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	cfg := localmesos.NewConfig()
	cfg.Port = 0
	cfg.Agents = 1
	cfg.WorkDir = t.TempDir()
	cfg.AllocationInterval = 100 * time.Millisecond
	cfg.ExecutorShutdownGracePeriod = 3 * time.Second
	cfg.StatusUpdateRetryInterval = time.Second
	lm, err := localmesos.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("localmesos: %v", err)
	}
	t.Cleanup(func() { lm.Close() })

	cli := httpcli.New(
		httpcli.Endpoint(lm.MasterURL()+"/api/v1/scheduler"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
	)
	c := &cluster{t: t, lm: lm, caller: httpsched.NewCaller(cli), ctx: ctx, binary: bin, offers: make(chan mesos.Offer, 64)}
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	resp, err := c.caller.Call(ctx, calls.Subscribe(&mesos.FrameworkInfo{User: name, Name: "executor-e2e", Checkpoint: &checkpoint}))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	subscribed := make(chan string, 1)
	go c.events(resp, subscribed)
	select {
	case c.fwID = <-subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("no SUBSCRIBED from localmesos")
	}
	t.Cleanup(func() {
		// Tear down (kills everything) and check that nothing is left.
		_, _ = c.call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
		eventually(t, e2eWait, "no process of the framework is left after teardown", func() bool {
			return len(frameworkProcesses(c.fwID)) == 0
		})
	})
	return c
}

func (c *cluster) events(resp mesos.Response, subscribed chan<- string) {
	defer resp.Close()
	for {
		var ev scheduler.Event
		if err := resp.Decode(&ev); err != nil {
			return
		}
		switch ev.Type {
		case scheduler.Event_SUBSCRIBED:
			subscribed <- ev.Subscribed.FrameworkID.Value
		case scheduler.Event_OFFERS:
			for _, o := range ev.Offers.Offers {
				c.offers <- o
			}
		case scheduler.Event_UPDATE:
			s := ev.Update.Status
			c.mu.Lock()
			c.updates = append(c.updates, s)
			c.mu.Unlock()
			if len(s.UUID) > 0 {
				go func() {
					_, _ = c.call(calls.Acknowledge(s.AgentID.Value, s.TaskID.Value, s.UUID))
				}()
			}
		case scheduler.Event_MESSAGE:
			c.mu.Lock()
			c.messages = append(c.messages, ev.Message.Data)
			c.mu.Unlock()
		case scheduler.Event_FAILURE:
			c.mu.Lock()
			c.failures = append(c.failures, *ev.Failure)
			c.mu.Unlock()
		}
	}
}

func (c *cluster) call(call *scheduler.Call) (mesos.Response, error) {
	call = call.With(calls.Framework(c.fwID))
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	resp, err := c.caller.Call(ctx, call)
	if resp != nil {
		resp.Close()
	}
	return resp, err
}

// launched describes a task the scheduler launched.
type launched struct {
	taskID, executorID, agentID, host string
	ports                             map[string]uint32
}

// launch takes the next offer and launches a task of data d on the
// executor executorID, with a free host port from the offer for each name.
func (c *cluster) launch(taskID, executorID string, d protocol.TaskData, portNames ...string) launched {
	c.t.Helper()
	return c.launchWith(taskID, executorID, func(string, map[string]uint32) protocol.TaskData { return d }, portNames...)
}

// launchWith is launch with task data that depends on the agent's host and
// the ports picked.
func (c *cluster) launchWith(taskID, executorID string, build func(host string, ports map[string]uint32) protocol.TaskData, portNames ...string) launched {
	c.t.Helper()
	var offer mesos.Offer
	select {
	case offer = <-c.offers:
	case <-time.After(20 * time.Second):
		c.t.Fatal("no offer")
	}
	var free []uint64
	for _, r := range offer.Resources {
		if r.Name != "ports" {
			continue
		}
		for _, rg := range r.GetRanges().GetRange() {
			for p := rg.Begin; p <= rg.End && len(free) < len(portNames); p++ {
				// Skip ports something (a dead executor's container)
				// still holds.
				if l, err := net.Listen("tcp", net.JoinHostPort(offer.Hostname, strconv.FormatUint(p, 10))); err == nil {
					l.Close()
					free = append(free, p)
				}
			}
		}
	}
	if len(free) < len(portNames) {
		c.t.Fatalf("offer has %d free ports, need %d", len(free), len(portNames))
	}
	l := launched{taskID: taskID, executorID: executorID, agentID: offer.AgentID.Value, host: offer.Hostname, ports: map[string]uint32{}}
	taskRes := mesos.Resources{resources.NewCPUs(0.1).Resource, resources.NewMemory(64).Resource}
	if len(portNames) > 0 {
		rb := resources.BuildRanges()
		for i, n := range portNames {
			l.ports[n] = uint32(free[i])
			rb.Span(free[i], free[i])
		}
		taskRes = append(taskRes, resources.Build().Name(resources.NamePorts).Ranges(rb.Ranges).Resource)
	}
	d := build(l.host, l.ports)
	d.Version = protocol.TaskDataVersion
	d.Ports = l.ports
	data, err := protocol.EncodeTaskData(d)
	if err != nil {
		c.t.Fatalf("task data: %v", err)
	}
	task := mesos.TaskInfo{
		Name:      taskID,
		TaskID:    mesos.TaskID{Value: taskID},
		AgentID:   offer.AgentID,
		Resources: taskRes,
		Executor:  c.executorInfo(executorID),
		Data:      data,
	}
	accept := calls.Accept(calls.OfferOperations{calls.OpLaunch(task)}.WithOffers(offer.ID)).With(calls.RefuseSeconds(0))
	if _, err := c.call(accept); err != nil {
		c.t.Fatalf("accept: %v", err)
	}
	return l
}

// executorInfo is identical for every launch on one executor, as Mesos
// requires.
func (c *cluster) executorInfo(id string) *mesos.ExecutorInfo {
	shell := false
	return &mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: id},
		Name:       &id,
		Command: &mesos.CommandInfo{
			Value:     &c.binary,
			Shell:     &shell,
			Arguments: []string{c.binary, "-stats-interval=200ms", "-v=1"},
		},
		Resources: mesos.Resources{resources.NewCPUs(0.05).Resource, resources.NewMemory(32).Resource},
	}
}

func (c *cluster) statusList() []mesos.TaskStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]mesos.TaskStatus(nil), c.updates...)
}

func (c *cluster) states(taskID string) []string {
	var out []string
	for _, u := range c.statusList() {
		if u.TaskID.Value == taskID {
			s := u.GetState().String()
			if u.Healthy != nil {
				s += fmt.Sprintf("(healthy=%v)", *u.Healthy)
			}
			out = append(out, s)
		}
	}
	return out
}

func (c *cluster) waitState(taskID string, state mesos.TaskState, within time.Duration) mesos.TaskStatus {
	c.t.Helper()
	var found mesos.TaskStatus
	eventually(c.t, within, fmt.Sprintf("task %s reaches %s at the scheduler (so far %v)", taskID, state, c.states(taskID)), func() bool {
		for _, u := range c.statusList() {
			if u.TaskID.Value == taskID && u.GetState() == state {
				found = u
				return true
			}
		}
		return false
	})
	return found
}

func (c *cluster) send(l launched, m protocol.Message) {
	c.t.Helper()
	b, err := protocol.EncodeMessage(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.call(calls.Message(l.agentID, l.executorID, b)); err != nil {
		c.t.Fatalf("message: %v", err)
	}
}

func (c *cluster) waitMessage(within time.Duration, what string, match func(protocol.Message) bool) protocol.Message {
	c.t.Helper()
	var found protocol.Message
	eventually(c.t, within, what, func() bool {
		c.mu.Lock()
		msgs := append([][]byte(nil), c.messages...)
		c.mu.Unlock()
		for _, b := range msgs {
			if m, err := protocol.DecodeMessage(b); err == nil && match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (c *cluster) exec(l launched, id string, cmd ...string) *protocol.ExecResult {
	c.t.Helper()
	c.send(l, &protocol.Exec{ID: id, TaskID: l.taskID, Cmd: cmd, TimeoutSeconds: 10})
	return c.waitMessage(e2eWait, "exec result "+id, func(m protocol.Message) bool {
		r, ok := m.(*protocol.ExecResult)
		return ok && r.ID == id
	}).(*protocol.ExecResult)
}

// frameworkProcesses lists the live processes started for framework fwID:
// its executors, their tasks and watchdogs (all inherit
// MESOS_FRAMEWORK_ID).
func frameworkProcesses(fwID string) []int {
	marker := []byte("MESOS_FRAMEWORK_ID=" + fwID + "\x00")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(append([]byte{0}, env...), append([]byte{0}, marker...)) {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

func redisPingAt(host string, port uint32) string {
	out, _ := exec.Command("redis-cli", "-h", host, "-p", fmt.Sprint(port), "ping").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// redisProcessTask is a real redis-server, answering only after delay,
// bound to the agent's address, healthy once it answers PING.
func redisProcessTask(t *testing.T, delay time.Duration) protocol.TaskData {
	return protocol.TaskData{
		Framework: "redis", Instance: "cache1", Role: protocol.RoleMaster, Runtime: protocol.RuntimeProcess,
		Command: fmt.Sprintf("sleep %.2f; exec redis-server --port $STATEFUL_PORT_REDIS --bind $STATEFUL_HOST --save '' --appendonly no --dir $STATEFUL_VOLUME", delay.Seconds()),
		Volume:  &protocol.Volume{HostPath: filepath.Join(t.TempDir(), "cache1-0")},
		Health: &protocol.Health{
			Command:  "redis-cli -h $STATEFUL_HOST -p $STATEFUL_PORT_REDIS ping | grep -q PONG",
			Interval: protocol.Duration(200 * time.Millisecond),
			Grace:    protocol.Duration(30 * time.Second),
		},
	}
}

func infoField(info, key string) string {
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == key {
			return v
		}
	}
	return ""
}

func TestE2EProcessRedis(t *testing.T) {
	needRedis(t)
	c := startCluster(t)
	l := c.launch("cache1-0.1", "cache1-0", redisProcessTask(t, 500*time.Millisecond), "redis")

	c.waitState(l.taskID, mesos.TASK_RUNNING, 30*time.Second)
	if got := redisPingAt(l.host, l.ports["redis"]); got != "PONG" {
		t.Errorf("the scheduler saw TASK_RUNNING but redis on %s:%d answers %q", l.host, l.ports["redis"], got)
	}
	if got := c.states(l.taskID); len(got) < 2 || got[0] != "TASK_STARTING" || got[1] != "TASK_RUNNING(healthy=true)" {
		t.Errorf("updates = %v, want STARTING then RUNNING(healthy)", got)
	}

	c.waitMessage(e2eWait, "a stats message for the task", func(m protocol.Message) bool {
		s, ok := m.(*protocol.Stats)
		return ok && s.TaskID == l.taskID && s.ExecutorID == l.executorID && s.MemBytes > 0 && s.State == "TASK_RUNNING"
	})

	res := c.exec(l, "info-1", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "replication")
	if res.ExitCode != 0 || infoField(res.Stdout, "role") != "master" {
		t.Errorf("exec INFO replication = %+v", res)
	}
	res = c.exec(l, "info-2", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "server")
	pid, err := strconv.Atoi(infoField(res.Stdout, "process_id"))
	if err != nil {
		t.Fatalf("no redis pid in %+v", res)
	}

	// Killed from outside: TASK_FAILED with the exit code reaches the
	// scheduler, and the executor, with no task left, exits.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := c.waitState(l.taskID, mesos.TASK_FAILED, e2eWait)
	if !strings.Contains(failed.GetMessage(), "exit code 137") || failed.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Errorf("TASK_FAILED: source %v message %q", failed.GetSource(), failed.GetMessage())
	}
	if sd, err := protocol.DecodeStatusData(failed.Data); err != nil || sd.ExitCode == nil || *sd.ExitCode != 137 {
		t.Errorf("status data %+v, %v", sd, err)
	}
	eventually(t, e2eWait, "the idle executor exits", func() bool { return len(frameworkProcesses(c.fwID)) == 0 })
}

func TestE2EProcessKillAndTeardown(t *testing.T) {
	needRedis(t)
	c := startCluster(t)
	a := c.launch("cache1-0.1", "cache1", redisProcessTask(t, 0), "redis")
	c.waitState(a.taskID, mesos.TASK_RUNNING, 30*time.Second)
	b := c.launch("cache1-1.1", "cache1", redisProcessTask(t, 0), "redis")
	c.waitState(b.taskID, mesos.TASK_RUNNING, 30*time.Second)

	res := c.exec(a, "pid-a", "redis-cli", "-h", a.host, "-p", fmt.Sprint(a.ports["redis"]), "INFO", "server")
	pidA, err := strconv.Atoi(infoField(res.Stdout, "process_id"))
	if err != nil {
		t.Fatalf("no redis pid in %+v", res)
	}
	if _, err := c.call(calls.Kill(a.taskID, a.agentID)); err != nil {
		t.Fatal(err)
	}
	c.waitState(a.taskID, mesos.TASK_KILLED, e2eWait)
	if alive(pidA) {
		t.Error("the killed task's redis-server is still running")
	}
	if got := redisPingAt(b.host, b.ports["redis"]); got != "PONG" {
		t.Errorf("the other task was hurt by the kill: %q", got)
	}

	if _, err := c.call(&scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e2eWait, "nothing of the framework is left after TEARDOWN", func() bool {
		return len(frameworkProcesses(c.fwID)) == 0
	})
	if got := redisPingAt(b.host, b.ports["redis"]); got == "PONG" {
		t.Error("redis still answers after TEARDOWN")
	}
}

func TestE2ENeverHealthyNeverRuns(t *testing.T) {
	c := startCluster(t)
	d := protocol.TaskData{
		Runtime: protocol.RuntimeProcess,
		Command: "exec sleep 1000", // never listens on its port
		Health:  &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(100 * time.Millisecond), Grace: protocol.Duration(time.Second), Timeout: protocol.Duration(200 * time.Millisecond)},
	}
	l := c.launch("mute-0.1", "mute-0", d, "redis")
	failed := c.waitState(l.taskID, mesos.TASK_FAILED, 20*time.Second)
	if !strings.Contains(failed.GetMessage(), "health check never passed") {
		t.Errorf("message = %q", failed.GetMessage())
	}
	for _, s := range c.states(l.taskID) {
		if strings.HasPrefix(s, "TASK_RUNNING") {
			t.Errorf("a task that never answered was reported RUNNING: %v", c.states(l.taskID))
		}
	}
	eventually(t, e2eWait, "no process left", func() bool { return len(frameworkProcesses(c.fwID)) == 0 })
}

func TestE2EKillExecutorLeavesNoProcess(t *testing.T) {
	needRedis(t)
	c := startCluster(t)
	l := c.launch("cache1-0.1", "cache1-0", redisProcessTask(t, 0), "redis")
	c.waitState(l.taskID, mesos.TASK_RUNNING, 30*time.Second)
	// redis-server rewrites its environment (process title), so the
	// framework's processes cannot all be found by environment: ask it.
	res := c.exec(l, "pid", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "server")
	pid, err := strconv.Atoi(infoField(res.Stdout, "process_id"))
	if err != nil {
		t.Fatalf("no redis pid in %+v", res)
	}
	if err := c.lm.KillExecutor(l.agentID, c.fwID, l.executorID); err != nil {
		t.Fatal(err)
	}
	failed := c.waitState(l.taskID, mesos.TASK_FAILED, 20*time.Second)
	if failed.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("TASK_FAILED from %v, want the agent's (the executor is dead)", failed.GetSource())
	}
	eventually(t, e2eWait, "no process of the killed executor is left", func() bool {
		return len(frameworkProcesses(c.fwID)) == 0 && !alive(pid)
	})
}

func TestE2EAgentRestartKeepsTheTask(t *testing.T) {
	needRedis(t)
	c := startClusterWith(t, true)
	l := c.launch("cache1-0.1", "cache1-0", redisProcessTask(t, 0), "redis")
	c.waitState(l.taskID, mesos.TASK_RUNNING, 30*time.Second)
	res := c.exec(l, "pid", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "server")
	pid, err := strconv.Atoi(infoField(res.Stdout, "process_id"))
	if err != nil {
		t.Fatalf("no redis pid in %+v", res)
	}

	if err := c.lm.RestartAgent(l.agentID); err != nil {
		t.Fatal(err)
	}
	// The executor re-subscribes to the restarted agent: commands reach
	// the same redis-server again.
	eventually(t, 30*time.Second, "exec works through the restarted agent", func() bool {
		id := fmt.Sprintf("after-%d", time.Now().UnixNano())
		b, _ := protocol.EncodeMessage(&protocol.Exec{ID: id, TaskID: l.taskID, Cmd: []string{"redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "server"}})
		if _, err := c.call(calls.Message(l.agentID, l.executorID, b)); err != nil {
			return false
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			c.mu.Lock()
			msgs := append([][]byte(nil), c.messages...)
			c.mu.Unlock()
			for _, raw := range msgs {
				if m, err := protocol.DecodeMessage(raw); err == nil {
					if r, ok := m.(*protocol.ExecResult); ok && r.ID == id {
						return infoField(r.Stdout, "process_id") == strconv.Itoa(pid)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	})
	for _, s := range c.states(l.taskID) {
		if s != "TASK_STARTING" && !strings.HasPrefix(s, "TASK_RUNNING") {
			t.Errorf("the task did not survive the agent restart: %v", c.states(l.taskID))
		}
	}
	if _, err := c.call(calls.Kill(l.taskID, l.agentID)); err != nil {
		t.Fatal(err)
	}
	c.waitState(l.taskID, mesos.TASK_KILLED, 20*time.Second)
	if alive(pid) {
		t.Error("redis survived its KILL")
	}
}

// --- the same with the docker runtime ---

func dockerE2E(t *testing.T) (*cluster, *dockerlib.Client) {
	t.Helper()
	needRedis(t)
	cli, _ := dockerFor(t) // skips without an engine; builds the image
	c := startCluster(t)
	t.Cleanup(func() {
		// After a TEARDOWN (the executors stop their containers) nothing
		// may be left.
		_, _ = c.call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
		eventually(t, e2eWait, "no process of the framework is left after teardown", func() bool {
			return len(frameworkProcesses(c.fwID)) == 0
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		left, _ := cli.List(ctx, map[string]string{dockerlib.LabelFrameworkID: c.fwID})
		if len(left) > 0 {
			t.Errorf("%d containers of the framework left behind", len(left))
			_, _ = cli.Cleanup(ctx, map[string]string{dockerlib.LabelFrameworkID: c.fwID}, 0)
		}
	})
	return c, cli
}

func (c *cluster) containers(cli *dockerlib.Client) []dockerlib.ContainerInfo {
	c.t.Helper()
	list, err := cli.List(context.Background(), map[string]string{dockerlib.LabelFrameworkID: c.fwID})
	if err != nil {
		c.t.Fatal(err)
	}
	return list
}

// launchRedisContainer launches a redis container on the host network of
// the agent. The image has no shell, so the command and the health check
// are argv with the address filled in here, as a scheduler would.
func (c *cluster) launchRedisContainer(taskID, executorID string) launched {
	c.t.Helper()
	return c.launchWith(taskID, executorID, func(host string, ports map[string]uint32) protocol.TaskData {
		p := strconv.Itoa(int(ports["redis"]))
		return protocol.TaskData{
			Framework: "redis", Instance: "cache1", Role: protocol.RoleMaster, Runtime: protocol.RuntimeDocker,
			Image:  testimage.RedisImage,
			Args:   []string{"--port", p, "--bind", host, "--save", "", "--appendonly", "no"},
			Health: &protocol.Health{Args: []string{"redis-cli", "-h", host, "-p", p, "ping"}, Interval: protocol.Duration(200 * time.Millisecond), Grace: protocol.Duration(30 * time.Second)},
			CPU:    0.5, MemMB: 64,
		}
	}, "redis")
}

func TestE2EDockerRedis(t *testing.T) {
	c, cli := dockerE2E(t)
	l := c.launchRedisContainer("cache1-0.1", "cache1-0")
	running := c.waitState(l.taskID, mesos.TASK_RUNNING, 60*time.Second)
	if got := redisPingAt(l.host, l.ports["redis"]); got != "PONG" {
		t.Errorf("TASK_RUNNING but redis answers %q", got)
	}
	if sd, _ := protocol.DecodeStatusData(running.Data); sd == nil || sd.Runtime != "docker" {
		t.Errorf("status data = %+v", sd)
	}
	c.waitMessage(20*time.Second, "a stats message", func(m protocol.Message) bool {
		s, ok := m.(*protocol.Stats)
		return ok && s.TaskID == l.taskID && s.MemBytes > 0
	})
	res := c.exec(l, "info", "redis-cli", "-h", l.host, "-p", fmt.Sprint(l.ports["redis"]), "INFO", "replication")
	if res.ExitCode != 0 || infoField(res.Stdout, "role") != "master" {
		t.Errorf("exec = %+v", res)
	}

	list := c.containers(cli)
	if len(list) != 1 || list[0].Labels[dockerlib.LabelExecutorID] != l.executorID || list[0].Labels[dockerlib.LabelTaskID] != l.taskID {
		t.Fatalf("containers = %+v", list)
	}
	if err := cli.Kill(context.Background(), list[0].ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	failed := c.waitState(l.taskID, mesos.TASK_FAILED, 20*time.Second)
	if !strings.Contains(failed.GetMessage(), "exited with status 137") {
		t.Errorf("message = %q", failed.GetMessage())
	}
	eventually(t, 20*time.Second, "no container and no process left", func() bool {
		return len(c.containers(cli)) == 0 && len(frameworkProcesses(c.fwID)) == 0
	})
}

func TestE2EDockerKillAndMissingImage(t *testing.T) {
	c, cli := dockerE2E(t)
	l := c.launchRedisContainer("cache1-0.1", "cache1-0")
	c.waitState(l.taskID, mesos.TASK_RUNNING, 60*time.Second)
	if _, err := c.call(calls.Kill(l.taskID, l.agentID)); err != nil {
		t.Fatal(err)
	}
	c.waitState(l.taskID, mesos.TASK_KILLED, 20*time.Second)
	if n := len(c.containers(cli)); n != 0 {
		t.Errorf("%d containers left after KILL", n)
	}

	image := "stateful-test/absent:" + strings.ToLower(strings.ReplaceAll(c.fwID, "-", ""))[:12]
	m := c.launch("ghost-0.1", "ghost-0", protocol.TaskData{Runtime: protocol.RuntimeDocker, Image: image})
	failed := c.waitState(m.taskID, mesos.TASK_FAILED, 60*time.Second)
	if !strings.Contains(failed.GetMessage(), image) {
		t.Errorf("message %q does not name the image", failed.GetMessage())
	}
}

func TestE2EDockerKilledExecutorsContainerIsCleanedUp(t *testing.T) {
	c, cli := dockerE2E(t)
	l := c.launchRedisContainer("cache1-0.1", "cache1-0")
	c.waitState(l.taskID, mesos.TASK_RUNNING, 60*time.Second)
	orphan := c.containers(cli)
	if len(orphan) != 1 {
		t.Fatalf("containers = %+v", orphan)
	}
	if err := c.lm.KillExecutor(l.agentID, c.fwID, l.executorID); err != nil {
		t.Fatal(err)
	}
	c.waitState(l.taskID, mesos.TASK_FAILED, 20*time.Second)
	if list := c.containers(cli); len(list) != 1 || list[0].ID != orphan[0].ID {
		t.Fatalf("the dead executor's container should still be there (nobody else removes it): %+v", list)
	}

	// The next executor of the framework on this host removes what the
	// dead one left.
	n := c.launchRedisContainer("cache1-0.2", "cache1-0-2")
	c.waitState(n.taskID, mesos.TASK_RUNNING, 60*time.Second)
	eventually(t, 20*time.Second, "the dead executor's container is removed", func() bool {
		for _, ct := range c.containers(cli) {
			if ct.ID == orphan[0].ID {
				return false
			}
		}
		return true
	})
}

// e2eWait bounds each wait of the end-to-end tests: generous, for a 2-core
// CI machine running every package's tests at once; a passing test never
// waits it out.
const e2eWait = 45 * time.Second
