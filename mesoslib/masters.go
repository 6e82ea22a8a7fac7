package mesoslib

import (
	"net/http"
	"net/url"
	"sync"

	"github.com/golang/glog"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
)

// masters decides where each HTTP request goes. mesos-go v0.0.11 follows a
// 307 from a non-leading master only for the SUBSCRIBE request itself and
// sends every later call to the configured URL again, where it meets
// another 307 that drops the subscription; and it never tries another
// configured master. So, below httpsched:
//   - a SUBSCRIBE goes to the configured master whose turn it is (a
//     redirected SUBSCRIBE keeps the leader's address);
//   - a master that fails a SUBSCRIBE (no connection, 5xx) passes the turn
//     to the next configured one;
//   - every other call goes to the master that accepted the subscription.
//
// Only SUBSCRIBE lacks the Mesos-Stream-Id header: httpsched sends no
// other call until a subscription is established.
type masters struct {
	urls []*url.URL // configured scheduler endpoints; urls[0] is httpcli's

	mu     sync.Mutex
	next   int      // the configured master the next SUBSCRIBE goes to
	leader *url.URL // the master of the current subscription
}

func newMasters(endpoints []string) *masters {
	m := &masters{}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil {
			panic("mesoslib: endpoint not validated: " + e) // Config.Validate checked it
		}
		m.urls = append(m.urls, u)
	}
	return m
}

func (m *masters) wrap(do httpcli.DoFunc) httpcli.DoFunc {
	return func(req *http.Request) (*http.Response, error) {
		if req.Header.Get("Mesos-Stream-Id") != "" {
			m.mu.Lock()
			leader := m.leader
			m.mu.Unlock()
			if leader != nil {
				req = redirect(req, leader)
			}
			return do(req)
		}
		return m.subscribe(do, req)
	}
}

func (m *masters) subscribe(do httpcli.DoFunc, req *http.Request) (*http.Response, error) {
	m.mu.Lock()
	if req.URL.String() == m.urls[0].String() {
		req = redirect(req, m.urls[m.next])
	}
	m.mu.Unlock()

	res, err := do(req)

	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil || res.StatusCode >= 500:
		if len(m.urls) > 1 {
			m.next = (m.next + 1) % len(m.urls)
			glog.V(1).Infof("mesoslib: master %s did not take the subscription; trying %s next", req.URL.Host, m.urls[m.next].Host)
		}
	case res.StatusCode == http.StatusTemporaryRedirect:
		if loc, perr := url.Parse(res.Header.Get("Location")); perr == nil {
			glog.V(1).Infof("mesoslib: master %s is not the leader; redirected to %s", req.URL.Host, loc.Host)
			for i, u := range m.urls {
				if u.Host == loc.Host {
					m.next = i
				}
			}
		}
	case res.StatusCode == http.StatusOK:
		m.leader = req.URL
	}
	return res, err
}

// redirect returns a copy of req addressed to u.
func redirect(req *http.Request, u *url.URL) *http.Request {
	r := req.WithContext(req.Context())
	target := *u
	r.URL = &target
	r.Host = target.Host
	return r
}
