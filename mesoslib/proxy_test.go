package mesoslib

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// streamProxy stands between the scheduler and the master and can break
// subscription streams in the two ways a network does:
//   - Silence: the stream stays open at both ends but nothing gets through
//     (a partition, a frozen master);
//   - Sever: the master sees the stream end, the scheduler does not (a
//     connection lost on the master's side only).
//
// New requests, later subscriptions included, pass through untouched.
type streamProxy struct {
	target    *url.URL
	transport *http.Transport
	server    *httptest.Server

	mu      sync.Mutex
	streams []*proxiedStream
}

type proxiedStream struct {
	silenced chan struct{}
	severed  chan struct{}
	once     [2]sync.Once
}

func newStreamProxy(t *testing.T, target string) *streamProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &streamProxy{target: u, transport: &http.Transport{}}
	p.server = httptest.NewServer(p)
	t.Cleanup(func() {
		p.server.CloseClientConnections()
		p.server.Close()
		p.transport.CloseIdleConnections()
	})
	return p
}

func (p *streamProxy) URL() string { return p.server.URL }

// Silence stops every open stream from delivering anything more.
func (p *streamProxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.streams {
		s.once[0].Do(func() { close(s.silenced) })
	}
}

// Sever ends every open stream on the master's side and silences it on the
// scheduler's.
func (p *streamProxy) Sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.streams {
		s.once[0].Do(func() { close(s.silenced) })
		s.once[1].Do(func() { close(s.severed) })
	}
}

func (p *streamProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upstream, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := r.Clone(upstream)
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.RequestURI, out.Host = "", ""
	res, err := p.transport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, vs := range res.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(res.StatusCode)
	if r.Header.Get("Mesos-Stream-Id") != "" || res.StatusCode != http.StatusOK {
		_, _ = io.Copy(w, res.Body)
		return
	}

	s := &proxiedStream{silenced: make(chan struct{}), severed: make(chan struct{})}
	p.mu.Lock()
	p.streams = append(p.streams, s)
	p.mu.Unlock()
	w.(http.Flusher).Flush()
	go func() {
		select {
		case <-r.Context().Done(): // the scheduler hung up
		case <-s.severed:
		}
		cancel()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		if n > 0 {
			select {
			case <-s.silenced:
			default:
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
		if err != nil {
			break
		}
	}
	select {
	case <-s.severed:
		// Keep the scheduler's side open until it hangs up itself.
		<-r.Context().Done()
	default: // the master ended the stream: so does the proxy
	}
}
