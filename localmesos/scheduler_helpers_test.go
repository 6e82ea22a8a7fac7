package localmesos

// Helpers for the scheduler-side tests (scheduler_*_test.go): a cluster
// with short timers, an event stream reader, and a tiny custom executor
// that behaves like mesos-go's example-executor (RUNNING then FINISHED).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// schedExecutorEnv makes this test binary run as schedExampleExecutor
// when an agent starts it as an executor.
const schedExecutorEnv = "LOCALMESOS_SCHED_TEST_EXECUTOR"

func init() {
	if os.Getenv(schedExecutorEnv) == "1" {
		os.Exit(schedExampleExecutor())
	}
}

// schedExampleExecutor is a custom executor that answers every LAUNCH with
// TASK_RUNNING and then TASK_FINISHED, as mesos-go's example-executor does
// in scheduler-happy-path.jsonl, echoes MESSAGEs ("echo:" + data), and
// exits (0) on SHUTDOWN or when its agent goes away.
func schedExampleExecutor() int {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "executor configuration:", err)
		return 1
	}
	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: "/api/v1/executor"}
	cli := httpcli.New(httpcli.Endpoint(endpoint.String()), httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]))
	opts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	sender := calls.SenderWith(httpexec.NewSender(cli.Send), opts...)
	subscriber := calls.SenderWith(httpexec.NewSender(cli.Send, httpcli.Close(true)), opts...)
	ctx := context.Background()
	resp, err := subscriber.Send(ctx, calls.NonStreaming(calls.Subscribe(nil, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscribe:", err)
		return 1
	}
	defer resp.Close()
	update := func(task mesos.TaskInfo, state mesos.TaskState) {
		id := cfg.ExecutorID
		st := mesos.TaskStatus{
			TaskID:     task.TaskID,
			State:      state.Enum(),
			Source:     mesos.SOURCE_EXECUTOR.Enum(),
			ExecutorID: &mesos.ExecutorID{Value: id},
			UUID:       schedUUID(),
		}
		if r, err := sender.Send(ctx, calls.NonStreaming(calls.Update(st))); err == nil && r != nil {
			r.Close()
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "update:", err)
		}
	}
	for {
		var ev executor.Event
		if err := resp.Decode(&ev); err != nil {
			return 0
		}
		switch ev.Type {
		case executor.Event_LAUNCH:
			update(ev.Launch.Task, mesos.TASK_RUNNING)
			update(ev.Launch.Task, mesos.TASK_FINISHED)
		case executor.Event_MESSAGE:
			msg := calls.Message(append([]byte("echo:"), ev.Message.Data...))
			if r, err := sender.Send(ctx, calls.NonStreaming(msg)); err == nil && r != nil {
				r.Close()
			}
		case executor.Event_SHUTDOWN:
			return 0
		}
	}
}

func schedUUID() []byte {
	b := make([]byte, 16)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, _ = io.ReadFull(f, b)
		f.Close()
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// schedExecutorCommand is the CommandInfo (as JSON) that runs
// schedExampleExecutor.
func schedExecutorCommand(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A -race test binary sleeps 1 s at exit (GORACE atexit_sleep_ms),
	// longer than the tests' shutdown grace period.
	return `{"value":` + strconv.Quote(self) + `,"shell":false,"arguments":["example-executor"],"environment":{"variables":[{"name":"` + schedExecutorEnv + `","value":"1"},{"name":"GORACE","value":"atexit_sleep_ms=0"}]}}`
}

// schedConfig is the transcripts' cluster with timers short enough for the
// scheduler tests.
func schedConfig(t *testing.T) Config {
	cfg := transcriptConfig(t)
	cfg.HeartbeatInterval = 15 * time.Second
	cfg.AgentPingTimeout = 500 * time.Millisecond
	cfg.ExecutorShutdownGracePeriod = time.Second
	cfg.ExecutorReregistrationTimeout = 500 * time.Millisecond
	cfg.StatusUpdateRetryInterval = 2 * time.Second
	return cfg
}

// schedFrame is one event as generic JSON (Mesos' field names), with the
// time it arrived.
type schedFrame struct {
	v  map[string]any
	at time.Time
}

func (f schedFrame) typ() string { s, _ := f.v["type"].(string); return s }

// schedStream reads an event stream (JSON or protobuf) into frames.
type schedStream struct {
	t        *testing.T
	res      *http.Response
	streamID string
	frames   chan schedFrame
	backlog  []schedFrame
	mu       sync.Mutex
	closed   bool
}

func schedOpenStream(t *testing.T, res *http.Response, protobuf bool) *schedStream {
	s := &schedStream{t: t, res: res, streamID: res.Header.Get("Mesos-Stream-Id"), frames: make(chan schedFrame, 10000)}
	go func() {
		defer close(s.frames)
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || n <= 0 {
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			if protobuf {
				var ev scheduler.Event
				if err := ev.Unmarshal(buf); err != nil {
					t.Errorf("stream: bad protobuf event: %v", err)
					return
				}
				if buf, err = ev.MarshalJSON(); err != nil {
					t.Errorf("stream: %v", err)
					return
				}
			}
			var v map[string]any
			d := json.NewDecoder(bytes.NewReader(buf))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				t.Errorf("stream: bad JSON event %q: %v", buf, err)
				return
			}
			s.frames <- schedFrame{v: v, at: time.Now()}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *schedStream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.res.Body.Close()
	}
}

// take returns the first frame (backlog first) that match accepts, keeping
// the others for later. It fails the test after timeout.
func (s *schedStream) take(what string, timeout time.Duration, match func(schedFrame) bool) schedFrame {
	s.t.Helper()
	for i, f := range s.backlog {
		if match(f) {
			s.backlog = append(s.backlog[:i:i], s.backlog[i+1:]...)
			return f
		}
	}
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatalf("stream ended while waiting for %s (unmatched: %s)", what, s.describeBacklog())
			}
			if match(f) {
				return f
			}
			if f.typ() != "HEARTBEAT" {
				s.backlog = append(s.backlog, f)
			}
		case <-deadline:
			s.t.Fatalf("no %s within %v (unmatched: %s)", what, timeout, s.describeBacklog())
		}
	}
}

// next is the next frame, whatever it is.
func (s *schedStream) next(timeout time.Duration) schedFrame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return f
	case <-time.After(timeout):
		s.t.Fatalf("no frame within %v", timeout)
	}
	return schedFrame{}
}

// waitEnd waits for the server to end the stream; frames still coming
// are kept.
func (s *schedStream) waitEnd(timeout time.Duration) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			if f.typ() != "HEARTBEAT" {
				s.backlog = append(s.backlog, f)
			}
		case <-deadline:
			s.t.Fatalf("stream did not end within %v", timeout)
		}
	}
}

// drain collects what arrives within d (heartbeats excluded).
func (s *schedStream) drain(d time.Duration) []schedFrame {
	out := append([]schedFrame(nil), s.backlog...)
	s.backlog = nil
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return out
			}
			if f.typ() != "HEARTBEAT" {
				out = append(out, f)
			}
		case <-deadline:
			return out
		}
	}
}

func (s *schedStream) describeBacklog() string {
	var parts []string
	for _, f := range s.backlog {
		b, _ := json.Marshal(f.v)
		parts = append(parts, string(b))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// schedPath digs into generic JSON.
func schedPath(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func schedStr(v any, keys ...string) string {
	s, _ := schedPath(v, keys...).(string)
	return s
}
