package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/httplib"
	"github.com/mesos-stateful/stateful/internal/testcert"
)

const (
	ctlReadToken  = "ctl-read-token-0123456789"
	ctlAdminToken = "ctl-admin-token-0123456789"
)

// startSecureAPI serves the REST API over svc with tokens and, if
// certFile is given, over HTTPS; it returns the API's URL.
func startSecureAPI(t *testing.T, svc httplib.Service, certFile, keyFile, clientCA string) string {
	t.Helper()
	cfg := httplib.NewConfig()
	var err error
	if cfg.Tokens, err = httplib.ParseTokens([]byte(ctlReadToken + " read\n" + ctlAdminToken + " admin\n")); err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if certFile != "" {
		if cfg.TLS, err = httplib.LoadTLS(certFile, keyFile, clientCA); err != nil {
			t.Fatal(err)
		}
		scheme = "https"
	}
	s, err := httplib.New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return scheme + "://" + ln.Addr().String()
}

// cliEnv runs the command line with the given environment.
func cliEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestTokens(t *testing.T) {
	svc := newMemService()
	svc.put(runningInstance("cache1"))
	api := startSecureAPI(t, svc, "", "", "")
	env := map[string]string{envAPI: api}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(ctlAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := cliEnv(t, env, "list")
	expect(t, r, exitError, nil, []string{"401", "authentication required", "-token"})
	r = cliEnv(t, env, "-token", "wrong-token-0123456789", "list")
	expect(t, r, exitError, nil, []string{"401", "not valid"})
	if strings.Contains(r.stderr, "wrong-token") {
		t.Errorf("the token is repeated in the error: %v", r)
	}
	expect(t, cliEnv(t, env, "-token", ctlReadToken, "list"), exitOK, []string{"cache1"}, nil)
	expect(t, cliEnv(t, env, "-token", ctlReadToken, "scale", "cache1", "-slaves", "3"), exitError, nil, []string{"403", "admin token"})
	expect(t, cliEnv(t, map[string]string{envAPI: api, envToken: ctlReadToken}, "get", "cache1"), exitOK, []string{"cache1"}, nil)
	expect(t, cliEnv(t, env, "-token-file", tokenFile, "scale", "cache1", "-slaves", "3"), exitOK, nil, nil)
	expect(t, cliEnv(t, env, "-token", ctlAdminToken, "-token-file", tokenFile, "list"), exitUsage, nil, []string{"give one"})
	// The flag wins over the environment.
	expect(t, cliEnv(t, map[string]string{envAPI: api, envToken: "wrong-token-0123456789"}, "-token", ctlReadToken, "list"), exitOK, []string{"cache1"}, nil)
	// The health check needs no token.
	expect(t, cliEnv(t, env, "health"), exitOK, nil, nil)
	if got := svc.mutationLog(); len(got) != 1 {
		t.Errorf("service calls %q, want the admin scale only", got)
	}
}

func TestCAAndClientCertificates(t *testing.T) {
	ca := testcert.NewCA(t, "ctl")
	server := ca.Server(t, "api")
	operator := ca.Client(t, "operator")
	other := testcert.NewCA(t, "other")

	svc := newMemService()
	svc.put(runningInstance("cache1"))
	api := startSecureAPI(t, svc, server.CertFile, server.KeyFile, "")
	env := map[string]string{envAPI: api, envToken: ctlReadToken}
	expect(t, cliEnv(t, env, "-ca", ca.CertFile, "list"), exitOK, []string{"cache1"}, nil)
	expect(t, cliEnv(t, env, "list"), exitError, nil, []string{"certificate"})
	expect(t, cliEnv(t, env, "-ca", other.CertFile, "list"), exitError, nil, []string{"certificate"})
	expect(t, cliEnv(t, env, "-ca", filepath.Join(t.TempDir(), "none.pem"), "list"), exitUsage, nil, []string{"-ca"})

	mtls := startSecureAPI(t, svc, server.CertFile, server.KeyFile, ca.CertFile)
	env = map[string]string{envAPI: mtls, envToken: ctlReadToken}
	expect(t, cliEnv(t, env, "-ca", ca.CertFile, "-cert", operator.CertFile, "-key", operator.KeyFile, "list"), exitOK, []string{"cache1"}, nil)
	r := cliEnv(t, env, "-ca", ca.CertFile, "list")
	if r.code != exitError {
		t.Errorf("no client certificate: %v", r)
	}
	expect(t, cliEnv(t, env, "-ca", ca.CertFile, "-cert", operator.CertFile, "list"), exitUsage, nil, []string{"-cert and -key"})
}

// TestEventsWithTokenOverTLS: statefulctl events sends the token and
// trusts the CA as the other commands do.
func TestEventsWithTokenOverTLS(t *testing.T) {
	ca := testcert.NewCA(t, "ctl")
	server := ca.Server(t, "api")
	hub := feed.NewHub(0, 0)
	svc := struct {
		*memService
		*feed.Hub
	}{newMemService(), hub}
	api := startSecureAPI(t, svc, server.CertFile, server.KeyFile, "")

	expect(t, cliEnv(t, map[string]string{envAPI: api}, "-ca", ca.CertFile, "events"), exitError, nil, []string{"401", "authentication required"})
	expect(t, cliEnv(t, map[string]string{envAPI: api, envToken: ctlReadToken}, "events"), exitError, nil, []string{"certificate"})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	env := map[string]string{envAPI: api, envToken: ctlReadToken}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-ca", ca.CertFile, "events", "cache1"}, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	}()
	waitUntil(t, "the command to subscribe", func() bool { return hub.Subscribers() == 1 || len(done) > 0 })
	if len(done) > 0 {
		t.Fatalf("statefulctl events ended (exit %d) instead of following: %s", <-done, stderr.String())
	}
	hub.Publish(feed.Event{Type: feed.InstanceFailover, Instance: "cache1", Details: map[string]any{"from_task": "cache1-0", "to_task": "cache1-1"}})
	waitUntil(t, "the event printed", func() bool { return strings.Contains(stdout.String(), "master cache1-0 → cache1-1") })
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after an interrupt, want 0; stderr %s", code, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), ctlReadToken) {
		t.Error("the token was printed")
	}
}
