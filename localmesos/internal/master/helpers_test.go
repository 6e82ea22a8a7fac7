package master

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// recAgent is a wire.Agent that records what the master sends it. It is a
// unit-test aid; the public package's tests run the real agent.
type recAgent struct {
	id string
	mu sync.Mutex
	// msgs are the recorded messages, e.g. "RunTask t1", "KillTask t1".
	msgs  []string
	tasks []mesos.TaskInfo
	execs []*mesos.ExecutorInfo
	wake  chan struct{}
}

func newRecAgent(id string) *recAgent {
	return &recAgent{id: id, wake: make(chan struct{}, 1)}
}

func (a *recAgent) record(s string) {
	a.mu.Lock()
	a.msgs = append(a.msgs, s)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *recAgent) RunTask(fw mesos.FrameworkInfo, e *mesos.ExecutorInfo, t mesos.TaskInfo) {
	a.mu.Lock()
	a.tasks = append(a.tasks, t)
	a.execs = append(a.execs, e)
	a.mu.Unlock()
	a.record("RunTask " + t.TaskID.Value)
}

func (a *recAgent) RunTaskGroup(fw mesos.FrameworkInfo, e mesos.ExecutorInfo, g mesos.TaskGroupInfo) {
	var ids []string
	for _, t := range g.Tasks {
		ids = append(ids, t.TaskID.Value)
	}
	a.record("RunTaskGroup " + strings.Join(ids, ","))
}

func (a *recAgent) KillTask(fid mesos.FrameworkID, tid mesos.TaskID, p *mesos.KillPolicy) {
	a.record("KillTask " + tid.Value)
}

func (a *recAgent) ShutdownExecutor(fid mesos.FrameworkID, eid mesos.ExecutorID) {
	a.record("ShutdownExecutor " + eid.Value)
}

func (a *recAgent) ShutdownFramework(fid mesos.FrameworkID) {
	a.record("ShutdownFramework " + fid.Value)
}

func (a *recAgent) FrameworkMessage(fid mesos.FrameworkID, eid mesos.ExecutorID, data []byte) {
	a.record("FrameworkMessage " + eid.Value + " " + string(data))
}

func (a *recAgent) Acknowledge(fid mesos.FrameworkID, tid mesos.TaskID, uuid []byte) {
	a.record(fmt.Sprintf("Acknowledge %s %x", tid.Value, uuid))
}

func (a *recAgent) UpdateFramework(fw mesos.FrameworkInfo) {
	a.record("UpdateFramework " + fw.GetID().GetValue())
}

func (a *recAgent) Reregister() { a.record("Reregister") }

func (a *recAgent) ApplyOperation(op wire.ApplyOperation) {
	a.record("ApplyOperation " + op.Operation.Type.String())
}

// waitFor waits until the agent has received a message starting with
// prefix, and returns it.
func (a *recAgent) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		a.mu.Lock()
		for _, m := range a.msgs {
			if strings.HasPrefix(m, prefix) {
				a.mu.Unlock()
				return m
			}
		}
		a.mu.Unlock()
		select {
		case <-a.wake:
		case <-deadline:
			a.mu.Lock()
			defer a.mu.Unlock()
			t.Fatalf("agent %s never got %q; got %q", a.id, prefix, a.msgs)
			return ""
		}
	}
}

func (a *recAgent) has(prefix string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

func (a *recAgent) lastTask() mesos.TaskInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tasks[len(a.tasks)-1]
}

// testCluster is a master on an httptest server with recorded agents.
type testCluster struct {
	t      *testing.T
	m      *Master
	srv    *httptest.Server
	url    string
	agents map[string]*recAgent
}

func testConfig() Config {
	return Config{
		Hostname:           "127.0.0.1",
		Port:               5050,
		HeartbeatInterval:  time.Hour, // tests ask for heartbeats explicitly
		AllocationInterval: 50 * time.Millisecond,
		AgentPingTimeout:   300 * time.Millisecond,
	}
}

func newTestCluster(t *testing.T, cfg Config) *testCluster {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	c := &testCluster{t: t, m: m, srv: srv, url: srv.URL + "/api/v1/scheduler", agents: map[string]*recAgent{}}
	t.Cleanup(func() {
		m.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return c
}

func testAgentResources() []mesos.Resource {
	var rs []mesos.Resource
	rs = append(rs,
		mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 2}},
		mesos.Resource{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 2048}},
		mesos.Resource{Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 4096}},
		mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 31099}}}},
	)
	return rs
}

// addAgent registers a recorded agent with the test resources.
func (c *testCluster) addAgent(n int) *recAgent {
	id := fmt.Sprintf("%s-S%d", c.m.ID(), n)
	a := newRecAgent(id)
	c.agents[id] = a
	c.m.RegisterAgent(wire.Registration{
		Agent:   a,
		Info:    mesos.AgentInfo{ID: &mesos.AgentID{Value: id}, Hostname: "127.0.0.1", Port: proto.Int32(5051), Resources: testAgentResources()},
		Address: "127.0.0.1:5051",
	})
	return a
}

// httpResult is a finished HTTP exchange.
type httpResult struct {
	status int
	header http.Header
	body   string
}

// post sends a raw call body.
func (c *testCluster) post(body string, header map[string]string) httpResult {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return httpResult{status: res.StatusCode, header: res.Header, body: string(b)}
}

// sub is an open SUBSCRIBE stream read as JSON frames.
type sub struct {
	t        *testing.T
	res      *http.Response
	streamID string
	frames   chan map[string]any
	backlog  []map[string]any
	fid      string
}

// subscribe opens a JSON SUBSCRIBE with the given body and returns the
// stream; it does not wait for SUBSCRIBED.
func (c *testCluster) subscribe(body string) *sub {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	s := &sub{t: c.t, res: res, streamID: res.Header.Get("Mesos-Stream-Id"), frames: make(chan map[string]any, 1000)}
	go func() {
		defer close(s.frames)
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			var v map[string]any
			d := json.NewDecoder(bytes.NewReader(buf))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				return
			}
			s.frames <- v
		}
	}()
	c.t.Cleanup(func() { res.Body.Close() })
	return s
}

func (s *sub) close() { s.res.Body.Close() }

// next returns the next frame of one of the given types (any type but
// HEARTBEAT if none is given). OFFERS that arrive while waiting for
// something else are kept for a later next("OFFERS"): they come on the
// allocator's schedule.
func (s *sub) next(types ...string) map[string]any {
	s.t.Helper()
	matches := func(typ string) bool {
		if len(types) == 0 {
			return typ != "HEARTBEAT"
		}
		for _, want := range types {
			if typ == want {
				return true
			}
		}
		return false
	}
	for i, f := range s.backlog {
		if typ, _ := f["type"].(string); matches(typ) {
			s.backlog = append(s.backlog[:i:i], s.backlog[i+1:]...)
			return f
		}
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatalf("stream ended while waiting for %v", types)
			}
			typ, _ := f["type"].(string)
			switch {
			case matches(typ):
				return f
			case typ == "HEARTBEAT":
			case typ == "OFFERS":
				s.backlog = append(s.backlog, f)
			default:
				s.t.Fatalf("got %s frame %v while waiting for %v", typ, f, types)
			}
		case <-deadline:
			s.t.Fatalf("no frame %v within 5s", types)
			return nil
		}
	}
}

// quiet asserts no frame other than HEARTBEAT (and the types given)
// arrives for d.
func (s *sub) quiet(d time.Duration, ignore ...string) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			ignored := f["type"] == "HEARTBEAT"
			for _, typ := range ignore {
				if f["type"] == typ {
					ignored = true
				}
			}
			if !ignored {
				s.t.Fatalf("unexpected frame %v", f)
			}
		case <-deadline:
			return
		}
	}
}

// ended waits for the server to end the stream.
func (s *sub) ended() {
	s.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			if f["type"] != "HEARTBEAT" {
				s.t.Fatalf("unexpected frame %v while waiting for the end", f)
			}
		case <-deadline:
			s.t.Fatal("stream did not end")
		}
	}
}

// path digs into a decoded JSON frame: path(f, "update", "status", "state").
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	s, _ := path(v, keys...).(string)
	return s
}

// subscribeFramework subscribes a MULTI_ROLE framework (plus extra
// capabilities) and returns the stream after SUBSCRIBED.
func (c *testCluster) subscribeFramework(name string, extra string) *sub {
	c.t.Helper()
	caps := `[{"type":"MULTI_ROLE"}` + extra + `]`
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"` + name + `","roles":["*"],"capabilities":` + caps + `}}}`)
	if s.res.StatusCode != 200 {
		c.t.Fatalf("SUBSCRIBE: %d", s.res.StatusCode)
	}
	f := s.next("SUBSCRIBED")
	s.fid = str(f, "subscribed", "framework_id", "value")
	if hb := s.next("HEARTBEAT"); hb["type"] != "HEARTBEAT" {
		c.t.Fatalf("expected HEARTBEAT right after SUBSCRIBED, got %v", hb)
	}
	return s
}

// callOn posts a call for the stream's framework with its stream ID.
func (c *testCluster) callOn(s *sub, typ string, payload string) httpResult {
	c.t.Helper()
	body := `{"framework_id":{"value":"` + s.fid + `"},"type":"` + typ + `"`
	if payload != "" {
		body += "," + payload
	}
	body += "}"
	return c.post(body, map[string]string{"Mesos-Stream-Id": s.streamID})
}

// offers waits for an OFFERS event and returns its offers.
func (s *sub) offers() []any {
	s.t.Helper()
	f := s.next("OFFERS")
	list, _ := path(f, "offers", "offers").([]any)
	return list
}

func offerID(o any) string { return str(o, "id", "value") }

func (s *sub) expectStatus(want int, r httpResult) {
	s.t.Helper()
	if r.status != want {
		s.t.Fatalf("status %d (%q), want %d", r.status, r.body, want)
	}
}

// sendUpdate plays the agent's status update manager.
func (c *testCluster) sendUpdate(agentID, fid, tid string, state mesos.TaskState, latest mesos.TaskState, execID string) []byte {
	uuid := newUUIDBytes()
	st := mesos.TaskStatus{
		TaskID:    mesos.TaskID{Value: tid},
		State:     state.Enum(),
		Source:    mesos.SOURCE_EXECUTOR.Enum(),
		AgentID:   &mesos.AgentID{Value: agentID},
		Timestamp: proto.Float64(nowSeconds()),
		UUID:      uuid,
	}
	if execID != "" {
		st.ExecutorID = &mesos.ExecutorID{Value: execID}
	}
	c.m.StatusUpdate(mesos.AgentID{Value: agentID}, wire.StatusUpdate{FrameworkID: mesos.FrameworkID{Value: fid}, Status: st, LatestState: latest})
	return uuid
}

var _ = scheduler.Call{}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
