package agent

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/framing"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// execTestexec is the path of the testexec binary, built once for the
// whole test binary by TestMain.
var execTestexec string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	execTestexec = filepath.Join(dir, "testexec")
	build := exec.Command("go", "build", "-o", execTestexec, "github.com/mesos-stateful/stateful/localmesos/internal/testexec")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testexec:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// execWait is how long a test waits for anything before failing.
const execWait = 10 * time.Second

// execMaster is a wire.Master that records what the agent sends, in
// order. Tests consume the records one by one.
type execMaster struct {
	mu       sync.Mutex
	cond     *sync.Cond
	regs     []wire.Registration
	updates  []wire.StatusUpdate
	exits    []execExit
	messages []execMessage
	// opUpdates are operation statuses (volumes_test.go).
	opUpdates []wire.OperationUpdate
	cursor    map[string]int
}

type execExit struct {
	framework, executor string
	status              int32
}

type execMessage struct {
	executor string
	data     []byte
}

func newExecMaster() *execMaster {
	m := &execMaster{cursor: map[string]int{}}
	m.cond = sync.NewCond(&m.mu)
	return m
}

func (m *execMaster) RegisterAgent(reg wire.Registration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.regs = append(m.regs, reg)
	m.cond.Broadcast()
}

func (m *execMaster) StatusUpdate(_ mesos.AgentID, u wire.StatusUpdate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updates = append(m.updates, u)
	m.cond.Broadcast()
}

func (m *execMaster) ExecutorExited(_ mesos.AgentID, fw mesos.FrameworkID, ex mesos.ExecutorID, status int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exits = append(m.exits, execExit{fw.Value, ex.Value, status})
	m.cond.Broadcast()
}

func (m *execMaster) ExecutorMessage(_ mesos.AgentID, _ mesos.FrameworkID, ex mesos.ExecutorID, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.messages = append(m.messages, execMessage{ex.Value, data})
	m.cond.Broadcast()
}

func (m *execMaster) OperationStatus(_ mesos.AgentID, u wire.OperationUpdate) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opUpdates = append(m.opUpdates, u)
	m.cond.Broadcast()
}

// waitFor waits until cond (called with mu held) is true or the deadline
// passes.
func (m *execMaster) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(execWait)
	timer := time.AfterFunc(execWait, func() {
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer timer.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		m.cond.Wait()
	}
}

// nextRecord waits for the next record of one kind that no earlier call
// consumed; list reads that kind's records (under m.mu, held by waitFor).
func nextRecord[T any](t testing.TB, m *execMaster, what, kind string, list func() []T) T {
	t.Helper()
	var r T
	m.waitFor(t, what, func() bool {
		records := list()
		if i := m.cursor[kind]; i < len(records) {
			r = records[i]
			m.cursor[kind] = i + 1
			return true
		}
		return false
	})
	return r
}

// nextUpdate returns the next status update the agent forwarded.
func (m *execMaster) nextUpdate(t testing.TB) wire.StatusUpdate {
	t.Helper()
	return nextRecord(t, m, "a status update", "update", func() []wire.StatusUpdate { return m.updates })
}

func (m *execMaster) nextExit(t testing.TB) execExit {
	t.Helper()
	return nextRecord(t, m, "an executor exit", "exit", func() []execExit { return m.exits })
}

func (m *execMaster) nextRegistration(t testing.TB) wire.Registration {
	t.Helper()
	return nextRecord(t, m, "a registration", "reg", func() []wire.Registration { return m.regs })
}

func (m *execMaster) nextMessage(t testing.TB) execMessage {
	t.Helper()
	return nextRecord(t, m, "an executor message", "msg", func() []execMessage { return m.messages })
}

// pending counts records of a kind not consumed yet.
func (m *execMaster) pending(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := map[string]int{"update": len(m.updates), "exit": len(m.exits), "reg": len(m.regs), "msg": len(m.messages), "op": len(m.opUpdates)}[kind]
	return n - m.cursor[kind]
}

// execHarness is one agent with a recording master.
type execHarness struct {
	t       *testing.T
	master  *execMaster
	agent   *Agent
	workDir string
}

// newExecHarness starts an agent with short timers; mutate may change the
// config first.
func newExecHarness(t *testing.T, mutate func(*Config)) *execHarness {
	t.Helper()
	workDir := t.TempDir()
	cfg := Config{
		ID:                            mesos.AgentID{Value: "agent-" + strconv.Itoa(os.Getpid()) + "-S0"},
		IP:                            "127.0.0.3",
		Resources:                     mesos.Resources{},
		WorkDir:                       workDir,
		ExecutorRegistrationTimeout:   5 * time.Second,
		ExecutorShutdownGracePeriod:   3 * time.Second,
		ExecutorReregistrationTimeout: 1 * time.Second,
		StatusUpdateRetryInterval:     5 * time.Second,
		RecoveryTimeout:               20 * time.Second,
		SubscriptionBackoffMax:        400 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	m := newExecMaster()
	a, err := New(cfg, m)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := &execHarness{t: t, master: m, agent: a, workDir: workDir}
	t.Cleanup(func() {
		a.Close()
		execNoProcessesLeft(t, workDir)
		execNoAgentGoroutines(t)
	})
	if err := a.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	reg := m.nextRegistration(t)
	if reg.Reregistration || reg.Info.GetID().GetValue() != cfg.ID.Value || reg.Address != a.Address() {
		t.Fatalf("first registration = %+v", reg)
	}
	return h
}

func execFramework(id string, checkpoint bool, caps ...mesos.FrameworkInfo_Capability_Type) mesos.FrameworkInfo {
	fid := mesos.FrameworkID{Value: id}
	fi := mesos.FrameworkInfo{User: "root", Name: "test", ID: &fid, Checkpoint: &checkpoint, Roles: []string{"*"}}
	fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE})
	for _, c := range caps {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: c})
	}
	return fi
}

func execResources(cpus, mem float64) []mesos.Resource {
	role := "*"
	return []mesos.Resource{
		{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: cpus}, Role: &role},
		{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: mem}, Role: &role},
	}
}

// execCustomExecutor is an ExecutorInfo running command.
func execCustomExecutor(id string, command mesos.CommandInfo) mesos.ExecutorInfo {
	name := id
	return mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: id},
		Name:       &name,
		Command:    &command,
		Resources:  execResources(0.05, 32),
	}
}

func execShell(value string) mesos.CommandInfo {
	shell := true
	return mesos.CommandInfo{Value: &value, Shell: &shell}
}

// execTestexecCommand runs the testexec binary directly.
func execTestexecCommand() mesos.CommandInfo {
	shell := false
	v := execTestexec
	return mesos.CommandInfo{Value: &v, Shell: &shell, Arguments: []string{"testexec"}}
}

func (h *execHarness) task(id string, data string) mesos.TaskInfo {
	t := mesos.TaskInfo{
		Name:      "task " + id,
		TaskID:    mesos.TaskID{Value: id},
		AgentID:   h.agent.ID(),
		Resources: execResources(0.1, 32),
	}
	if data != "" {
		t.Data = []byte(data)
	}
	return t
}

func (h *execHarness) commandTask(id, command string) mesos.TaskInfo {
	t := h.task(id, "")
	c := execShell(command)
	t.Command = &c
	return t
}

// expectUpdate takes the next forwarded update and checks its state.
func (h *execHarness) expectUpdate(task string, state mesos.TaskState) wire.StatusUpdate {
	h.t.Helper()
	u := h.master.nextUpdate(h.t)
	if u.Status.TaskID.Value != task || u.Status.GetState() != state {
		h.t.Fatalf("update = task %s %s (%s, reason %s), want task %s %s",
			u.Status.TaskID.Value, u.Status.GetState(), u.Status.GetMessage(), u.Status.GetReason(), task, state)
	}
	if len(u.Status.UUID) != 16 || u.Status.AgentID.GetValue() != h.agent.ID().Value || u.Status.Timestamp == nil {
		h.t.Fatalf("update %s of %s lacks uuid, agent_id or timestamp: %+v", state, task, u.Status)
	}
	return u
}

// ack is the scheduler's ACKNOWLEDGE of u.
func (h *execHarness) ack(fw mesos.FrameworkInfo, u wire.StatusUpdate) {
	h.agent.Acknowledge(*fw.ID, u.Status.TaskID, u.Status.UUID)
}

// expectAndAck checks and acknowledges the next update.
func (h *execHarness) expectAndAck(fw mesos.FrameworkInfo, task string, state mesos.TaskState) wire.StatusUpdate {
	h.t.Helper()
	u := h.expectUpdate(task, state)
	h.ack(fw, u)
	return u
}

// noMoreUpdates checks that nothing else was forwarded within d.
func (h *execHarness) noMoreUpdates(d time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if n := h.master.pending("update"); n > 0 {
			u := h.master.nextUpdate(h.t)
			h.t.Fatalf("unexpected update: task %s %s (%s)", u.Status.TaskID.Value, u.Status.GetState(), u.Status.GetMessage())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *execHarness) sandbox(fw mesos.FrameworkInfo, executorID string) string {
	return filepath.Join(h.workDir, "slaves", h.agent.ID().Value, "frameworks", fw.ID.Value, "executors", executorID, "runs", "latest")
}

// execWaitFile waits until path exists and has content satisfying ok.
func execWaitFile(t testing.TB, path string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(execWait)
	for {
		b, err := os.ReadFile(path)
		if err == nil && ok(string(b)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last content %q, err %v)", path, b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execProcessesIn lists live processes whose environment or working
// directory points into dir.
func execProcessesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if st, _, ok := procStat(pid); !ok || st == 'Z' || st == 'X' {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		if bytes.Contains(env, []byte(dir)) || strings.HasPrefix(cwd, dir) {
			out = append(out, pid)
		}
	}
	return out
}

// execNoProcessesLeft fails if a process of dir outlives the deadline.
func execNoProcessesLeft(t testing.TB, dir string) {
	t.Helper()
	deadline := time.Now().Add(execWait)
	for {
		pids := execProcessesIn(dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left in %s: %v", dir, pids)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execNoAgentGoroutines fails if a goroutine of the agent package (or a
// mailbox) is still running.
func execNoAgentGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(execWait)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "localmesos/internal/agent.") && !strings.Contains(g, "_test.go") ||
				strings.Contains(g, "wire.(*Mailbox).run") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines left after Close:\n%s", strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execClient talks to the executor API by hand.
type execClient struct {
	t    *testing.T
	addr string
}

func (c execClient) post(contentType, accept string, body []byte) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+c.addr+"/api/v1/executor", bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("POST: %v", err)
	}
	return resp
}

func (c execClient) call(call *executor.Call, media string) *http.Response {
	c.t.Helper()
	var (
		b   []byte
		err error
	)
	if media == mediaJSON {
		b, err = call.MarshalJSON()
	} else {
		b, err = call.Marshal()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return c.post(media, media, b)
}

// execEvents decodes a subscription's events on a goroutine.
type execEvents struct {
	ch   chan executor.Event
	body interface{ Close() error }
}

func execReadEvents(t *testing.T, resp *http.Response, media string) *execEvents {
	rr := recordio.NewReader(resp.Body)
	dec := codecs.ByMediaType[encoding.MediaType(media)].NewDecoder(func() framing.Reader { return rr })
	ev := &execEvents{ch: make(chan executor.Event, 100), body: resp.Body}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ev.ch)
		for {
			var e executor.Event
			if err := dec.Decode(&e); err != nil {
				return
			}
			ev.ch <- e
		}
	}()
	t.Cleanup(func() {
		resp.Body.Close()
		<-done
	})
	return ev
}

func (e *execEvents) next(t *testing.T) executor.Event {
	t.Helper()
	select {
	case ev, ok := <-e.ch:
		if !ok {
			t.Fatalf("event stream ended")
		}
		return ev
	case <-time.After(execWait):
		t.Fatalf("timed out waiting for an event")
	}
	return executor.Event{}
}

// ended waits for the stream to end.
func (e *execEvents) ended(t *testing.T) {
	t.Helper()
	for {
		select {
		case _, ok := <-e.ch:
			if !ok {
				return
			}
		case <-time.After(execWait):
			t.Fatalf("stream did not end")
		}
	}
}
