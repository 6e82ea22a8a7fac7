package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/framing"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// testAgent is the agent side of the v1 executor API, as far as these
// tests need it, with the checks a real agent makes on every call (Mesos
// 1.x src/slave/http.cpp): 403 before SUBSCRIBE, UPDATE needs a fresh
// 16-byte uuid, SOURCE_EXECUTOR, no TASK_STAGING. It can be taken down and
// brought back on the same address, like a restarting agent, and can hold
// back its ACKNOWLEDGED events.
type testAgent struct {
	t    *testing.T
	addr string

	mu         sync.Mutex
	srv        *http.Server
	stream     chan *executor.Event // the open stream's queue; nil if none
	subscribes []executor.Call_Subscribe
	updates    []mesos.TaskStatus
	uuids      map[string]bool
	messages   [][]byte
	violations []string
	holdAcks   bool
	held       []executor.Event_Acknowledged
}

func newTestAgent(t *testing.T) *testAgent {
	a := &testAgent{t: t, uuids: map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.addr = l.Addr().String()
	a.serve(l)
	t.Cleanup(func() {
		a.down()
		if v := a.violationList(); len(v) > 0 {
			t.Errorf("executor API violations: %v", v)
		}
	})
	return a
}

func (a *testAgent) serve(l net.Listener) {
	srv := &http.Server{Handler: a}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// down stops the agent: the stream breaks and calls are refused.
func (a *testAgent) down() {
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	a.stream = nil
	a.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up brings the agent back on its old address.
func (a *testAgent) up() {
	var l net.Listener
	eventually(a.t, 5*time.Second, "re-listen on "+a.addr, func() bool {
		var err error
		l, err = net.Listen("tcp", a.addr)
		return err == nil
	})
	a.serve(l)
}

func (a *testAgent) violate(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.violations = append(a.violations, fmt.Sprintf(format, args...))
}

func (a *testAgent) violationList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.violations...)
}

// send queues an event on the open stream.
func (a *testAgent) send(ev *executor.Event) {
	a.t.Helper()
	var ch chan *executor.Event
	eventually(a.t, 10*time.Second, "an executor stream to send "+ev.Type.String()+" on", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		ch = a.stream
		return ch != nil
	})
	ch <- ev
}

func (a *testAgent) launch(id string, data []byte, policy *mesos.KillPolicy) {
	a.send(&executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: mesos.TaskInfo{
		Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: "agent-1"}, Data: data, KillPolicy: policy,
	}}})
}

func (a *testAgent) setHoldAcks(hold bool) {
	a.mu.Lock()
	a.holdAcks = hold
	held := a.held
	if !hold {
		a.held = nil
	}
	ch := a.stream
	a.mu.Unlock()
	if !hold && ch != nil {
		for i := range held {
			ch <- &executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &held[i]}
		}
	}
}

func (a *testAgent) statusUpdates() []mesos.TaskStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]mesos.TaskStatus(nil), a.updates...)
}

func (a *testAgent) subscriptions() []executor.Call_Subscribe {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]executor.Call_Subscribe(nil), a.subscribes...)
}

func (a *testAgent) frameworkMessages() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]byte(nil), a.messages...)
}

// waitState waits for an update of task id with state and returns it.
func (a *testAgent) waitState(id string, state mesos.TaskState, within time.Duration) mesos.TaskStatus {
	a.t.Helper()
	var found mesos.TaskStatus
	eventually(a.t, within, fmt.Sprintf("task %s reaches %s (updates: %v)", id, state, a.stateList()), func() bool {
		for _, u := range a.statusUpdates() {
			if u.TaskID.Value == id && u.GetState() == state {
				found = u
				return true
			}
		}
		return false
	})
	return found
}

func (a *testAgent) stateList() []string {
	var out []string
	for _, u := range a.statusUpdates() {
		out = append(out, u.TaskID.Value+":"+u.GetState().String())
	}
	return out
}

var protobuf = codecs.ByMediaType[codecs.MediaTypeProtobuf]

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

func (a *testAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != apiPath {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != protobuf.Type.ContentType() {
		a.violate("Content-Type %q", ct)
		http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
		return
	}
	var call executor.Call
	if err := protobuf.NewDecoder(encoding.SourceReader(r.Body)).Decode(&call); err != nil {
		a.violate("malformed call: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if call.ExecutorID.Value != "exec-1" || call.FrameworkID.Value != "fw-1" {
		a.violate("call with executor %q framework %q", call.ExecutorID.Value, call.FrameworkID.Value)
		http.Error(w, "unknown executor", http.StatusBadRequest)
		return
	}
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		a.subscribe(w, r, call.Subscribe)
	case executor.Call_UPDATE:
		a.mu.Lock()
		subscribed := a.stream != nil
		a.mu.Unlock()
		if !subscribed {
			http.Error(w, "executor is not subscribed", http.StatusForbidden)
			return
		}
		if err := a.accept(call.Update.Status, nil); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case executor.Call_MESSAGE:
		a.mu.Lock()
		a.messages = append(a.messages, call.Message.Data)
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// accept records an update as the agent's status update manager would
// and acknowledges it (on ch, or the open stream).
func (a *testAgent) accept(s mesos.TaskStatus, ch chan *executor.Event) error {
	switch {
	case len(s.UUID) != 16:
		a.violate("update with a %d-byte uuid", len(s.UUID))
		return errors.New("uuid is not 16 bytes")
	case s.GetSource() != mesos.SOURCE_EXECUTOR:
		a.violate("update with source %v", s.GetSource())
		return errors.New("source must be SOURCE_EXECUTOR")
	case s.GetState() == mesos.TASK_STAGING:
		a.violate("update with TASK_STAGING")
		return errors.New("TASK_STAGING is not allowed")
	case s.ExecutorID == nil || s.ExecutorID.Value != "exec-1":
		a.violate("update without the executor id")
		return errors.New("executor id mismatch")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.uuids[string(s.UUID)] { // duplicates (replays) are dropped, as Mesos does
		a.uuids[string(s.UUID)] = true
		a.updates = append(a.updates, s)
	}
	ack := executor.Event_Acknowledged{TaskID: s.TaskID, UUID: s.UUID}
	if a.holdAcks {
		a.held = append(a.held, ack)
		return nil
	}
	if ch == nil {
		ch = a.stream
	}
	if ch != nil {
		ch <- &executor.Event{Type: executor.Event_ACKNOWLEDGED, Acknowledged: &ack}
	}
	return nil
}

func (a *testAgent) subscribe(w http.ResponseWriter, r *http.Request, sub *executor.Call_Subscribe) {
	if sub == nil {
		a.violate("SUBSCRIBE without subscribe")
		http.Error(w, "Expecting 'subscribe' to be present", http.StatusBadRequest)
		return
	}
	ch := make(chan *executor.Event, 256)
	a.mu.Lock()
	a.subscribes = append(a.subscribes, *sub)
	a.stream = ch // a re-subscription replaces the old stream
	a.mu.Unlock()

	w.Header().Set("Content-Type", protobuf.Type.ContentType())
	w.WriteHeader(http.StatusOK)
	enc := protobuf.NewEncoder(func() framing.Writer { return recordio.NewWriter(flushWriter{w}) })
	subscribed := &executor.Event{Type: executor.Event_SUBSCRIBED, Subscribed: &executor.Event_Subscribed{
		ExecutorInfo:  mesos.ExecutorInfo{ExecutorID: mesos.ExecutorID{Value: "exec-1"}},
		FrameworkInfo: mesos.FrameworkInfo{User: "root", Name: "test"},
		AgentInfo:     mesos.AgentInfo{Hostname: "127.0.0.1", ID: &mesos.AgentID{Value: "agent-1"}},
	}}
	if err := enc.Encode(subscribed); err != nil {
		return
	}
	for _, u := range sub.UnacknowledgedUpdates {
		_ = a.accept(u.Status, ch)
	}
	for {
		select {
		case ev := <-ch:
			if err := enc.Encode(ev); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
		a.mu.Lock()
		current := a.stream == ch
		a.mu.Unlock()
		if !current {
			return
		}
	}
}

// runExecutor runs the executor against the agent in this process.
type runningExecutor struct {
	done chan struct{}
	err  error
}

func (r *runningExecutor) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(within):
		t.Fatalf("executor did not exit within %v", within)
		return nil
	}
}

func (r *runningExecutor) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

type execSetup struct {
	checkpoint      bool
	recoveryTimeout time.Duration
	shutdownGrace   time.Duration
	stats           StatsProvider
	health          HealthProvider
	ackWait         time.Duration
}

func startExecutor(t *testing.T, a *testAgent, s execSetup) (*runningExecutor, context.CancelFunc) {
	t.Helper()
	sandbox := t.TempDir()
	cfg := config.Config{
		FrameworkID:                 "fw-1",
		ExecutorID:                  "exec-1",
		Directory:                   sandbox,
		Sandbox:                     sandbox,
		AgentEndpoint:               a.addr,
		ExecutorShutdownGracePeriod: firstNonZero(s.shutdownGrace, 3*time.Second),
		Checkpoint:                  s.checkpoint,
	}
	if s.checkpoint {
		cfg.RecoveryTimeout = firstNonZero(s.recoveryTimeout, 10*time.Second)
		cfg.SubscriptionBackoffMax = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningExecutor{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = Run(ctx, Options{Runtime: "process", Config: &cfg, Stats: s.stats, Health: s.health, StatsInterval: 100 * time.Millisecond, AckWait: firstNonZero(s.ackWait, time.Second)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("executor did not stop after its context was cancelled")
		}
	})
	return r, cancel
}

func firstNonZero(d, def time.Duration) time.Duration {
	if d != 0 {
		return d
	}
	return def
}
