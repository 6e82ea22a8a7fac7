package mesoslib

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/mesos-stateful/stateful/localmesos"
)

// TestFrameworkAuthentication subscribes to a localmesos that requires
// credentials: with the right principal and secret the framework is
// offered resources; with a wrong secret every SUBSCRIBE is a 401 and the
// client keeps retrying without ever subscribing.
func TestFrameworkAuthentication(t *testing.T) {
	cluster := startCluster(t, 1, func(c *localmesos.Config) {
		c.Credentials = map[string]string{"ops": "right-secret"}
	})

	cfg := testConfig(cluster.MasterURL())
	cfg.Principal, cfg.Secret = "ops", "right-secret"
	s := startScheduler(t, cfg, &memStore{}, newTaskBook())
	s.waitSubscribed(t, 1)
	s.takeOffer(t, 0)

	// A proxy counting the master's 401s.
	target, _ := url.Parse(cluster.MasterURL())
	var unauthorized atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.StatusCode == http.StatusUnauthorized {
			unauthorized.Add(1)
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)

	wrong := testConfig(srv.URL)
	wrong.Name = "intruder"
	wrong.Principal, wrong.Secret = "ops", "wrong-secret"
	w := startScheduler(t, wrong, &memStore{}, newTaskBook())
	eventually(t, waitLong, "two refused subscriptions", func() bool { return unauthorized.Load() >= 2 })
	if w.c.Connected() || w.store.get() != "" || w.rec.count("subscribed ") != 0 {
		t.Fatalf("a framework with a wrong secret subscribed: %q", w.store.get())
	}
}

func TestSecretNeedsAPrincipal(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:5050")
	cfg.Secret = "s"
	if err := cfg.Validate(); err == nil {
		t.Fatal("a secret without a principal was accepted")
	}
}
