package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/golang/glog"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
)

// The executor HTTP API, POST /api/v1/executor, answering exactly as
// Http::executor in src/slave/http.cpp does.

const (
	mediaJSON     = string(codecs.MediaTypeJSON)
	mediaProtobuf = string(codecs.MediaTypeProtobuf)
	// maxCallSize bounds a call body; calls carry at most a status with
	// its data.
	maxCallSize = 64 << 20
)

// executorConn is an executor's subscription as the agent sees it: events
// go out one way until close. Sending never blocks.
type executorConn interface {
	send(ev executor.Event)
	close()
}

// subscription is an HTTP executor's event stream. The agent encodes each
// event into a RecordIO frame at send time (on its own goroutine), and the
// request's handler writes the frames out.
type subscription struct {
	codec encoding.Codec

	mu     sync.Mutex
	frames [][]byte
	closed bool
	wake   chan struct{}
}

func newSubscription(codec encoding.Codec) *subscription {
	return &subscription{codec: codec, wake: make(chan struct{}, 1)}
}

func (s *subscription) send(ev executor.Event) {
	frame, err := encodeEvent(s.codec, &ev)
	if err != nil {
		glog.Errorf("agent: encoding %s event: %v", ev.Type, err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.frames = append(s.frames, frame)
	s.mu.Unlock()
	s.notify()
}

// close ends the stream once the frames already sent are written.
func (s *subscription) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.notify()
}

func (s *subscription) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) take() (frames [][]byte, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames, s.frames = s.frames, nil
	return frames, s.closed
}

// encodeEvent makes one RecordIO record: "<length>\n<bytes>".
func encodeEvent(codec encoding.Codec, ev *executor.Event) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if codec.Type == codecs.MediaTypeProtobuf {
		b, err = ev.Marshal()
	} else {
		b, err = mesosjson.Marshal(ev)
	}
	if err != nil {
		return nil, err
	}
	return append([]byte(strconv.Itoa(len(b))+"\n"), b...), nil
}

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/executor", a.serveExecutorAPI)
	mux.HandleFunc("/state", a.serveState)
	mux.HandleFunc("/slave(1)/state", a.serveState)
	mux.HandleFunc("/metrics/snapshot", a.serveMetrics)
	if a.cfg.MasterRoutes != nil {
		mux.Handle("/wire/", a.cfg.MasterRoutes)
	}
	return mux
}

// callResult is the agent's answer to one executor call.
type callResult struct {
	code   int
	body   string
	stream bool
}

// codeUnreachable stands for "the agent is not there": the HTTP side drops
// the connection, the built-in executor sees a failed call.
const codeUnreachable = 0

func (a *Agent) serveExecutorAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		plainError(w, http.StatusMethodNotAllowed,
			fmt.Sprintf("405 Method Not Allowed. Expecting one of { 'POST' }, but received '%s'.", r.Method))
		return
	}
	call, code, msg := decodeCall(r)
	if code != 0 {
		plainError(w, code, msg)
		return
	}
	var respCodec encoding.Codec
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		var ok bool
		if respCodec, ok = negotiate(r.Header.Values("Accept")); !ok {
			plainError(w, http.StatusNotAcceptable,
				"Expecting 'Accept' to allow '"+mediaProtobuf+"' or '"+mediaJSON+"'")
			return
		}
	case executor.Call_HEARTBEAT:
		// Mesos answers before any lookup: the ids may be dummies.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	sub := newSubscription(respCodec)
	var res callResult
	if !a.await(func() { res = a.executorCall(call, sub) }) || res.code == codeUnreachable {
		panic(http.ErrAbortHandler)
	}
	switch {
	case res.stream:
		a.stream(w, r, sub)
	case res.code == http.StatusAccepted:
		w.WriteHeader(http.StatusAccepted)
	default:
		plainError(w, res.code, res.body)
	}
}

// stream writes a subscription's events until the agent closes it or the
// executor goes away.
func (a *Agent) stream(w http.ResponseWriter, r *http.Request, sub *subscription) {
	flusher, _ := w.(http.Flusher)
	h := w.Header()
	h.Set("Content-Type", string(sub.codec.Type))
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	for {
		frames, closed := sub.take()
		for _, f := range frames {
			if _, err := w.Write(f); err != nil {
				a.post(func() { a.connectionLost(sub) })
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if closed {
			return
		}
		select {
		case <-sub.wake:
		case <-r.Context().Done():
			a.post(func() { a.connectionLost(sub) })
			return
		}
	}
}

// decodeCall reads and validates a call. A non-zero code is the error
// answer.
func decodeCall(r *http.Request) (*executor.Call, int, string) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil, http.StatusBadRequest, "Expecting 'Content-Type' to be present"
	}
	if ct != mediaJSON && ct != mediaProtobuf {
		return nil, http.StatusUnsupportedMediaType,
			"Expecting 'Content-Type' of " + mediaJSON + " or " + mediaProtobuf
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallSize))
	if err != nil {
		return nil, http.StatusBadRequest, "Failed to read body: " + err.Error()
	}
	call := new(executor.Call)
	if ct == mediaProtobuf {
		if err := call.Unmarshal(body); err != nil {
			return nil, http.StatusBadRequest, "Failed to parse body into Call protobuf"
		}
	} else {
		if !json.Valid(body) {
			return nil, http.StatusBadRequest, "Failed to parse body into JSON: syntax error"
		}
		if err := call.UnmarshalJSON(body); err != nil {
			return nil, http.StatusBadRequest, "Failed to convert JSON into Call protobuf: " + err.Error()
		}
		// JSON decoding does not check required fields; a protobuf round
		// trip does, as Mesos' JSON-to-protobuf conversion would.
		if b, err := call.Marshal(); err == nil {
			if err := new(executor.Call).Unmarshal(b); err != nil {
				return nil, http.StatusBadRequest, "Failed to convert JSON into Call protobuf: " + err.Error()
			}
		}
	}
	if msg := validateCall(call); msg != "" {
		return nil, http.StatusBadRequest, "Failed to validate Executor::Call: " + msg
	}
	return call, 0, ""
}

// validateCall is common::validation::validateExecutorCall.
func validateCall(c *executor.Call) string {
	if c.Type == executor.Call_UNKNOWN {
		return "Expecting 'type' to be present"
	}
	if c.ExecutorID.Value == "" {
		return "Expecting 'executor_id' to be present"
	}
	if c.FrameworkID.Value == "" {
		return "Expecting 'framework_id' to be present"
	}
	switch c.Type {
	case executor.Call_SUBSCRIBE:
		if c.Subscribe == nil {
			return "Expecting 'subscribe' to be present"
		}
	case executor.Call_UPDATE:
		if c.Update == nil {
			return "Expecting 'update' to be present"
		}
		st := c.Update.Status
		if len(st.UUID) == 0 {
			return "Expecting 'uuid' to be present"
		}
		if !validUUID(st.UUID) {
			return "Not a valid UUID"
		}
		if st.ExecutorID != nil && st.ExecutorID.Value != c.ExecutorID.Value {
			return "ExecutorID in Call: " + c.ExecutorID.Value +
				" does not match ExecutorID in TaskStatus: " + st.ExecutorID.Value
		}
		if st.GetSource() != sourceExecutor {
			return "Received Call from executor " + c.ExecutorID.Value + " of framework " +
				c.FrameworkID.Value + " with invalid source, expecting 'SOURCE_EXECUTOR'"
		}
		if st.GetState() == stateStaging {
			return "Received TASK_STAGING from executor " + c.ExecutorID.Value + " of framework " +
				c.FrameworkID.Value + " which is not allowed"
		}
	case executor.Call_MESSAGE:
		if c.Message == nil {
			return "Expecting 'message' to be present"
		}
	}
	return ""
}

// negotiate picks the SUBSCRIBE answer's format: JSON if acceptable (an
// absent Accept accepts everything), else protobuf.
func negotiate(accept []string) (encoding.Codec, bool) {
	for _, mt := range []string{mediaJSON, mediaProtobuf} {
		if accepts(accept, mt) {
			return codecs.ByMediaType[encoding.MediaType(mt)], true
		}
	}
	return encoding.Codec{}, false
}

func accepts(accept []string, mediaType string) bool {
	if len(accept) == 0 {
		return true
	}
	typ, sub, _ := strings.Cut(mediaType, "/")
	for _, header := range accept {
		for _, rng := range strings.Split(header, ",") {
			mr, params, err := mime.ParseMediaType(strings.TrimSpace(rng))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
					continue
				}
			}
			rt, rs, _ := strings.Cut(mr, "/")
			if (rt == "*" && rs == "*") || (rt == typ && (rs == "*" || rs == sub)) {
				return true
			}
		}
	}
	return false
}

// plainError answers as libprocess does: text/plain, no trailing newline.
func plainError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}
