package framework_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/internal/testcert"
)

// TestSecuredScheduler runs a scheduler as an operator would expose it:
// HTTPS with API tokens, and Mesos framework authentication against the
// embedded master (which then requires the framework's credentials). It
// subscribes (health turns ok), answers only the health check without a
// token, and only GETs to a read token.
func TestSecuredScheduler(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const readToken, adminToken = "read-token-for-the-test", "admin-token-for-the-test"
	ca := testcert.NewCA(t, "sched")
	server := ca.Server(t, "api")

	// t.TempDir makes it 0755: the scheduler tightens it to 0700.
	dataDir := t.TempDir()
	cfg := testConfig(t, framework.MasterLocal, dataDir)
	cfg.APITokens = write("tokens", readToken+" read\n"+adminToken+" admin\n")
	cfg.TLSCert, cfg.TLSKey = server.CertFile, server.KeyFile
	cfg.Principal, cfg.SecretFile = "sched", write("mesos-secret", "s3cret\n")
	s := startScheduler(t, cfg, testworkload.New())

	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	req := func(method, path, token, body string) (int, string) {
		t.Helper()
		r, _ := http.NewRequest(method, strings.Replace(s.api, "http://", "https://", 1)+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, "the API to listen", func() (bool, string) { return s.serving(), "" })
	eventually(t, "health ok (subscribed with the framework's credentials)", func() (bool, string) {
		code, body := req("GET", "/v1/health", "", "")
		return code == http.StatusOK, fmt.Sprint(code, body)
	})
	for _, tc := range []struct {
		method, path, token, body string
		code                      int
	}{
		{"GET", "/v1/instances", "", "", 401},
		{"GET", "/metrics", "", "", 401},
		{"GET", "/v1/instances", "wrong-token-for-the-test", "", 401},
		{"GET", "/v1/instances", readToken, "", 200},
		{"POST", "/v1/instances", readToken, `{"name": "x", "type": "S"}`, 403},
		{"POST", "/v1/instances", adminToken, `{"name": "x", "type": "S"}`, 202},
	} {
		if code, body := req(tc.method, tc.path, tc.token, tc.body); code != tc.code {
			t.Errorf("%s %s with token %q: %d %s, want %d", tc.method, tc.path, tc.token, code, body, tc.code)
		}
	}
	if st, err := os.Stat(dataDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v, %v; want mode 0700", st.Mode(), err)
	}
	// Plain HTTP gets nothing.
	if code, _, err := do("GET", s.api+"/v1/health", nil); err == nil && code == http.StatusOK {
		t.Error("the API answered plain HTTP")
	}
}

// TestRunRefusesOpenSecrets: a tokens or secret file others can read, or a
// data dir others can enter, stops Run before anything starts, naming it.
func TestRunRefusesOpenSecrets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, cfg *framework.Config) string // returns what the error must name
	}{
		{"tokens file", func(t *testing.T, cfg *framework.Config) string {
			cfg.APITokens = filepath.Join(t.TempDir(), "tokens")
			os.WriteFile(cfg.APITokens, []byte("admin-token-for-the-test admin\n"), 0o644)
			return cfg.APITokens
		}},
		{"secret file", func(t *testing.T, cfg *framework.Config) string {
			cfg.Principal, cfg.SecretFile = "p", filepath.Join(t.TempDir(), "secret")
			os.WriteFile(cfg.SecretFile, []byte("s"), 0o640)
			os.Chmod(cfg.SecretFile, 0o640)
			return cfg.SecretFile
		}},
		{"shared data dir", func(t *testing.T, cfg *framework.Config) string {
			os.Chmod(cfg.DataDir, 0o777|os.ModeSticky) // like /tmp
			return cfg.DataDir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, framework.MasterLocal, dir)
			want := tc.change(t, &cfg)
			// Bounded: a Run that wrongly starts would run until its
			// context ends.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := framework.Run(ctx, cfg, testworkload.New())
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Run: %v, want an error naming %s", err, want)
			}
		})
	}
}
