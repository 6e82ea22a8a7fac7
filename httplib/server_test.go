package httplib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		errHas string
	}{
		{"defaults", func(*Config) {}, ""},
		{"any port", func(c *Config) { c.Addr = ":0" }, ""},
		{"no port", func(c *Config) { c.Addr = "127.0.0.1" }, "http address"},
		{"empty address", func(c *Config) { c.Addr = "" }, "http address"},
		{"zero body", func(c *Config) { c.MaxBodyBytes = 0 }, "max body bytes"},
		{"zero request timeout", func(c *Config) { c.RequestTimeout = 0 }, "request timeout"},
		{"negative health timeout", func(c *Config) { c.HealthTimeout = -time.Second }, "health timeout"},
		{"zero shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := NewConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %v, want one naming %q", err, tc.errHas)
			}
			if _, err := New(cfg, newMemService(), nil); err == nil {
				t.Fatalf("New accepted an invalid config")
			}
		})
	}
}

func TestNewNeedsAService(t *testing.T) {
	if _, err := New(NewConfig(), nil, nil); err == nil {
		t.Fatal("New accepted no service")
	}
}

func TestTwoServersOnOneRegistryIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(NewConfig(), newMemService(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(NewConfig(), newMemService(), reg); err == nil || !strings.Contains(err.Error(), "registering metrics") {
		t.Fatalf("second registration: %v, want an error", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	// A gauge another part of the scheduler registers on the same registry.
	instances := prometheus.NewGauge(prometheus.GaugeOpts{Name: "stateful_instances", Help: "instances"})
	reg.MustRegister(instances)
	instances.Set(4)

	s, err := New(NewConfig(), seeded(), reg)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do(h, "POST", "/v1/instances", "application/json", strings.NewReader(`{"name": "m1", "type": "S"}`))
	do(h, "POST", "/v1/instances", "application/json", strings.NewReader(`{"name": "m1", "type": "S"}`))
	do(h, "GET", "/v1/instances/cache1", "", nil)
	do(h, "GET", "/nowhere", "", nil)
	do(h, "BREW", "/v1/instances", "", nil)

	rec := do(h, "GET", "/metrics", "", nil)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`stateful_http_requests_total{code="202",method="POST",route="/v1/instances"} 1`,
		`stateful_http_requests_total{code="409",method="POST",route="/v1/instances"} 1`,
		`stateful_http_requests_total{code="200",method="GET",route="/v1/instances/{name}"} 1`,
		`stateful_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`stateful_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`stateful_http_request_duration_seconds_count{code="202",method="POST",route="/v1/instances"} 1`,
		`stateful_instances 4`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s\n%s", want, body)
		}
	}
}

func TestConcurrentCreatesOfTheSameName(t *testing.T) {
	const n = 16
	svc := newMemService()
	// Hold every create until all n are inside the service, so they really
	// race for the name.
	var inside sync.WaitGroup
	inside.Add(n)
	svc.before = func(method, _ string) {
		if method == "Create" {
			inside.Done()
			inside.Wait()
		}
	}
	url := serve(t, newTestServer(t, svc))

	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.Post(url+"/v1/instances", "application/json", strings.NewReader(`{"name": "race", "type": "MS", "slaves": 1}`))
			if err != nil {
				t.Error(err)
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[202] != 1 || count[409] != n-1 {
		t.Fatalf("answers %v, want one 202 and %d 409", count, n-1)
	}
	all, _ := svc.snapshot()
	if len(all) != 1 || len(all["race"].Tasks) != 2 {
		t.Fatalf("stored %v, want the one instance with its 2 tasks", all)
	}
}

// serve runs s on a loopback port until the test ends and returns its URL.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	url, shutdown, done := start(t, s)
	t.Cleanup(func() {
		shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return url
}

// start runs s on a loopback port and returns its URL, the cancel of
// Serve's context (which shuts it down) and where Serve's error comes: for
// tests of the shutdown. The test must call shutdown.
func start(t *testing.T, s *Server) (url string, shutdown context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	scheme := "http://"
	if s.cfg.TLS != nil {
		scheme = "https://"
	}
	return scheme + ln.Addr().String(), cancel, served
}

// blockingCreates makes the service's Create wait for release, announcing
// each entry on entered.
func blockingCreates(t *testing.T, svc *memService) (entered chan struct{}, release func()) {
	entered = make(chan struct{}, 1)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	svc.before = func(method, _ string) {
		if method == "Create" {
			entered <- struct{}{}
			<-gate
		}
	}
	return entered, release
}

func TestServeFinishesInFlightRequestsOnShutdown(t *testing.T) {
	svc := newMemService()
	entered, release := blockingCreates(t, svc)
	s := newTestServer(t, svc)
	url, cancel, done := start(t, s)
	defer cancel()
	addr := strings.TrimPrefix(url, "http://")

	answer := make(chan int, 1)
	go func() {
		resp, err := http.Post(url+"/v1/instances", "application/json", strings.NewReader(`{"name": "late", "type": "S"}`))
		if err != nil {
			t.Error(err)
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	<-entered
	cancel()
	// Shutting down: the listener closes while the create is in flight.
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	release()
	if code := <-answer; code != http.StatusAccepted {
		t.Fatalf("in-flight create answered %d, want 202", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after a graceful shutdown: %v", err)
	}
	if all, _ := svc.snapshot(); all["late"] == nil {
		t.Fatal("the in-flight create was not stored")
	}
}

func TestServeCutsOffRequestsAfterTheShutdownTimeout(t *testing.T) {
	svc := newMemService()
	entered, release := blockingCreates(t, svc)
	cfg := NewConfig()
	cfg.ShutdownTimeout = 50 * time.Millisecond
	s, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	url, cancel, done := start(t, s)
	defer cancel()
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Post(url+"/v1/instances", "application/json", strings.NewReader(`{"name": "stuck", "type": "S"}`))
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	<-entered
	cancel()
	err = <-done
	release()
	<-answered
	if err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Fatalf("Serve returned %v, want an error saying requests were cut off", err)
	}
}

func TestRunReportsListenErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := NewConfig()
	cfg.Addr = taken.Addr().String()
	s, err := New(cfg, newMemService(), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listening on "+cfg.Addr) {
		t.Fatalf("Run on a taken port: %v", err)
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	// Find a free port, then let Run listen on it.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig()
	cfg.Addr = probe.Addr().String()
	probe.Close()
	s, err := New(cfg, seeded(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var resp *http.Response
	waitFor(t, "the API to answer", func() bool {
		var err error
		resp, err = http.Get("http://" + cfg.Addr + "/v1/health")
		return err == nil
	})
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /v1/health: %d", resp.StatusCode)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServiceTimeoutSaysTheOutcomeIsUnknown(t *testing.T) {
	svc := newMemService()
	svc.fail["Create"] = fmt.Errorf("etcd txn: %w", context.DeadlineExceeded)
	rec := do(newTestServer(t, svc).Handler(), "POST", "/v1/instances", "application/json", strings.NewReader(`{"name": "x", "type": "S"}`))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %d", rec.Code)
	}
	checkError(t, rec, "", "may or may not")
}

func TestRequestTimeoutReachesTheService(t *testing.T) {
	cfg := NewConfig()
	cfg.RequestTimeout = 20 * time.Millisecond
	svc := &ctxService{memService: seeded()}
	s, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := do(s.Handler(), "GET", "/v1/instances/cache1", "", nil)
	if rec.Code != http.StatusServiceUnavailable || !errors.Is(svc.err, context.DeadlineExceeded) {
		t.Fatalf("got %d, service saw %v; want 503 after the request deadline", rec.Code, svc.err)
	}
}

// ctxService's Get waits for its context to end, like a hung store.
type ctxService struct {
	*memService
	err error
}

func (c *ctxService) Get(ctx context.Context, _ string) (*stateful.Instance, error) {
	<-ctx.Done()
	c.err = ctx.Err()
	return nil, fmt.Errorf("reading: %w", ctx.Err())
}
