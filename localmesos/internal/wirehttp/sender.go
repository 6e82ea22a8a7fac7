package wirehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang/glog"
)

// maxQueued bounds what waits for an unreachable peer; the oldest message
// is dropped first, as a full socket buffer would lose it.
const maxQueued = 10000

type outMsg struct {
	path string
	body []byte
	// register: retried until delivered or a newer registration is queued.
	register bool
}

// sender delivers messages to one peer in order, one at a time, on its own
// goroutine. Close stops it.
type sender struct {
	base    string // http://host:port
	client  *http.Client
	retry   time.Duration
	mu      sync.Mutex
	queue   []outMsg
	wake    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{}
}

func newSender(base string, timeout time.Duration) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{
		base:    base,
		client:  &http.Client{Timeout: timeout},
		retry:   time.Second,
		wake:    make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		stopped: make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *sender) send(path string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every message is a struct of protobuf types: a failure is a bug.
		glog.Errorf("wirehttp: encoding %s: %v", path, err)
		return
	}
	s.mu.Lock()
	if len(s.queue) >= maxQueued {
		s.queue = s.queue[1:]
	}
	s.queue = append(s.queue, outMsg{path: path, body: b, register: path == pathRegister})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close stops the sender; what is queued is dropped.
func (s *sender) close() {
	s.cancel()
	<-s.stopped
}

func (s *sender) run() {
	defer close(s.stopped)
	for {
		s.mu.Lock()
		var m outMsg
		have := len(s.queue) > 0
		if have {
			m = s.queue[0]
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-s.wake:
				continue
			case <-s.ctx.Done():
				return
			}
		}
		err := s.post(m.path, m.body)
		s.mu.Lock()
		superseded := false
		for i := 1; i < len(s.queue); i++ {
			superseded = superseded || s.queue[i].register
		}
		done := err == nil || !m.register || superseded
		// The head may have been dropped meanwhile by a full queue.
		if done && len(s.queue) > 0 && s.queue[0].path == m.path && bytes.Equal(s.queue[0].body, m.body) {
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if err != nil {
			glog.V(2).Infof("wirehttp: %s%s: %v", s.base, m.path, err)
		}
		if !done {
			select {
			case <-time.After(s.retry):
			case <-s.ctx.Done():
				return
			}
		}
	}
}

func (s *sender) post(path string, body []byte) error {
	return postBody(s.ctx, s.client, s.base+path, body)
}

// postBody POSTs one JSON message; anything but a 2xx is an error.
func postBody(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// decode reads one message body; a bad one is answered 400 naming the
// message.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "expecting POST", http.StatusMethodNotAllowed)
		return false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(v); err != nil {
		http.Error(w, fmt.Sprintf("%s: invalid body: %v", r.URL.Path, err), http.StatusBadRequest)
		return false
	}
	return true
}
