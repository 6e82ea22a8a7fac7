package localmesos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeCredentials(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadCredentials(t *testing.T) {
	path := writeCredentials(t, `{"credentials": [{"principal": "ops", "secret": "s1"}, {"principal": "dev", "secret": "s2"}]}`, 0o600)
	creds, err := LoadCredentials(path)
	if err != nil || len(creds) != 2 || creds["ops"] != "s1" || creds["dev"] != "s2" {
		t.Fatalf("LoadCredentials = %v, %v", creds, err)
	}
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		errHas  string
	}{
		"world-readable": {`{"credentials": [{"principal": "ops", "secret": "s1"}]}`, 0o644, "0600"},
		"no secret":      {`{"credentials": [{"principal": "ops"}]}`, 0o600, `principal "ops" has no secret`},
		"no principal":   {`{"credentials": [{"secret": "s"}]}`, 0o600, "no principal"},
		"twice":          {`{"credentials": [{"principal": "a", "secret": "1"}, {"principal": "a", "secret": "2"}]}`, 0o600, "twice"},
		"empty":          {`{"credentials": []}`, 0o600, "no credentials"},
		"not the format": {`[{"principal": "a", "secret": "1"}]`, 0o600, `want {"credentials"`},
		"unknown key":    {`{"credentials": [{"principal": "a", "password": "1"}]}`, 0o600, "password"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeCredentials(t, tc.content, tc.mode)
			_, err := LoadCredentials(path)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming the file and %q", err, tc.errHas)
			}
		})
	}
}

// TestAuthentication checks a cluster with credentials answers as Mesos
// with --credentials and --authenticate_http_frameworks/_readonly/
// _readwrite does.
func TestAuthentication(t *testing.T) {
	cfg := NewConfig()
	cfg.Port = 0
	cfg.Agents = 1
	cfg.WorkDir = t.TempDir()
	cfg.Credentials = map[string]string{"ops": "right-secret"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	type creds struct{ user, pass string }
	call := func(method, path, body string, cr *creds) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, c.MasterURL()+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
		}
		if cr != nil {
			req.SetBasicAuth(cr.user, cr.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 && strings.HasSuffix(path, "/scheduler") {
			// A subscription stream (RecordIO): read its first record only.
			br := bufio.NewReader(resp.Body)
			var n int
			if _, err := fmt.Fscanf(br, "%d\n", &n); err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			rec := make([]byte, n)
			if _, err := io.ReadFull(br, rec); err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			resp.Body.Close()
			return resp, string(rec)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	subscribe := func(principal string) string {
		return `{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "auth-test", "principal": "` + principal + `"}}}`
	}
	masterID := c.master.ID()
	right, wrong, stranger := &creds{"ops", "right-secret"}, &creds{"ops", "wrong-secret"}, &creds{"nobody", "right-secret"}

	for _, tc := range []struct {
		name, method, path, body string
		cr                       *creds
		code                     int
		realm                    string
	}{
		{"subscribe without credentials", "POST", "/api/v1/scheduler", subscribe("ops"), nil, 401, "mesos-master-scheduler"},
		{"subscribe with a wrong secret", "POST", "/api/v1/scheduler", subscribe("ops"), wrong, 401, "mesos-master-scheduler"},
		{"subscribe as an unknown principal", "POST", "/api/v1/scheduler", subscribe("ops"), stranger, 401, "mesos-master-scheduler"},
		{"GET the scheduler API without credentials", "GET", "/api/v1/scheduler", "", nil, 401, "mesos-master-scheduler"},
		{"state without credentials", "GET", "/master/state", "", nil, 401, "mesos-master-readonly"},
		{"state with a wrong secret", "GET", "/state", "", wrong, 401, "mesos-master-readonly"},
		{"admin without credentials", "GET", "/admin/agents", "", nil, 401, "mesos-master-readwrite"},
		{"failover without credentials", "POST", "/admin/master/failover", "", nil, 401, "mesos-master-readwrite"},
		{"admin with a wrong secret", "GET", "/admin/agents", "", wrong, 401, "mesos-master-readwrite"},
		{"health is open", "GET", "/health", "", nil, 200, ""},
		{"state with credentials", "GET", "/master/state", "", right, 200, ""},
		{"admin with credentials", "GET", "/admin/agents", "", right, 200, ""},
		{"subscribe as another principal", "POST", "/api/v1/scheduler", subscribe("root"), right, 400, ""},
		{"subscribe with credentials", "POST", "/api/v1/scheduler", subscribe("ops"), right, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(tc.method, tc.path, tc.body, tc.cr)
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tc.code)
			}
			if tc.code == 401 {
				if got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="`+tc.realm+`"`; got != want {
					t.Errorf("WWW-Authenticate %q, want %q", got, want)
				}
				if body != "" {
					t.Errorf("401 body %q, want none (libprocess sends none)", body)
				}
			}
			switch tc.name {
			case "subscribe as another principal":
				if want := "Failed to validate scheduler::Call: Authenticated principal 'ops' does not match principal 'root' set in `FrameworkInfo`"; body != want {
					t.Errorf("body %q, want %q", body, want)
				}
			case "subscribe with credentials":
				if !strings.Contains(body, "SUBSCRIBED") {
					t.Errorf("first event %q, want SUBSCRIBED", body)
				}
			}
		})
	}
	// The refused failover changed nothing: the master kept its ID.
	if got := c.master.ID(); got != masterID {
		t.Errorf("master ID %s, want %s: an unauthenticated failover was carried out", got, masterID)
	}
}
