package master

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang/glog"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/framing"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
)

// stream is one SUBSCRIBE connection: an unbounded queue of events that the
// connection's HTTP handler writes as RecordIO frames. The actor only
// queues; it never blocks on a scheduler.
type stream struct {
	id    string
	codec encoding.Codec

	// frameworkID is set by the actor once the subscription is accepted
	// and read only by the actor.
	frameworkID string

	mu      sync.Mutex
	queue   []*scheduler.Event
	closing bool
	wake    chan struct{}
}

func newStream(codec encoding.Codec) *stream {
	return &stream{id: newUUID(), codec: codec, wake: make(chan struct{}, 1)}
}

// send queues an event. Events sent after close are dropped.
func (s *stream) send(ev *scheduler.Event) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	s.signal()
}

// close ends the stream once the queued events are written.
func (s *stream) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.signal()
}

func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *stream) take() ([]*scheduler.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q, s.closing
}

// frameWriter writes each event as one RecordIO frame ("<length>\n<bytes>",
// mesos-go's recordio writer) in one chunk, and flushes it so the event
// reaches the scheduler at once.
type frameWriter struct {
	buf *bufio.Writer
	rio *recordio.Writer
	f   http.Flusher
}

func newFrameWriter(w http.ResponseWriter) frameWriter {
	buf := bufio.NewWriter(w)
	f, _ := w.(http.Flusher)
	return frameWriter{buf: buf, rio: recordio.NewWriter(buf), f: f}
}

func (fw frameWriter) WriteFrame(b []byte) error {
	if err := fw.rio.WriteFrame(b); err != nil {
		return err
	}
	if err := fw.buf.Flush(); err != nil {
		return err
	}
	if fw.f != nil {
		fw.f.Flush()
	}
	return nil
}

// eventEncoder writes events as RecordIO frames: protobuf as mesos-go
// encodes it, JSON as Mesos writes it (mesos-go's JSON differs; see
// mesosjson).
func eventEncoder(codec encoding.Codec, out frameWriter) encoding.Encoder {
	if codec.Type != encoding.MediaType(mediaJSON) {
		return codec.NewEncoder(func() framing.Writer { return out })
	}
	return encoding.EncoderFunc(func(m encoding.Marshaler) error {
		jm, ok := m.(json.Marshaler)
		if !ok {
			return fmt.Errorf("%T cannot be written as JSON", m)
		}
		b, err := mesosjson.Marshal(jm)
		if err != nil {
			return err
		}
		return out.WriteFrame(b)
	})
}

// run writes the stream's events until the master closes it, the client
// goes away or the master stops. Headers must already be flushed. It
// returns true if the client went away (so the framework disconnected).
func (s *stream) run(w http.ResponseWriter, r *http.Request, heartbeat time.Duration, done <-chan struct{}) (clientGone bool) {
	out := newFrameWriter(w)
	enc := eventEncoder(s.codec, out)
	var tick <-chan time.Time
	for {
		evs, closing := s.take()
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				glog.V(1).Infof("stream %s: write failed: %v", s.id, err)
				return true
			}
			if tick == nil {
				// Heartbeats start with the first event (SUBSCRIBED).
				t := time.NewTicker(heartbeat)
				defer t.Stop()
				tick = t.C
			}
		}
		if closing && len(evs) == 0 {
			return false
		}
		if len(evs) > 0 {
			continue // more may have arrived while writing
		}
		select {
		case <-s.wake:
		case <-tick:
			hb := heartbeatEvent
			if err := enc.Encode(&hb); err != nil {
				return true
			}
		case <-r.Context().Done():
			return true
		case <-done:
			return false
		}
	}
}
