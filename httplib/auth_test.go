package httplib

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/internal/testcert"
)

const (
	readToken  = "read-token-0123456789"
	adminToken = "admin-token-0123456789"
)

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	tokens, err := ParseTokens([]byte("# operators\n" + adminToken + " admin\n\n" + readToken + "   read\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func authServer(t testing.TB, svc Service) *Server {
	t.Helper()
	cfg := NewConfig()
	cfg.Tokens = testTokens(t)
	s, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func doAuth(h http.Handler, method, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestParseTokens(t *testing.T) {
	for _, tc := range []struct{ name, file, errHas string }{
		{"bad role", "abcdefghijklmnopqrstu write\n", `line 1: role "write"`},
		{"short token", "# c\nshort admin\n", "line 2: token shorter than 16"},
		{"one field", "abcdefghijklmnopqrstu\n", "line 1: want TOKEN ROLE"},
		{"twice", "abcdefghijklmnopqrstu read\nabcdefghijklmnopqrstu admin\n", "line 2: token listed twice"},
		{"empty", "# nobody\n\n", "no tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokens([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %v, want one with %q", err, tc.errHas)
			}
			if strings.Contains(err.Error(), "abcdefghijklmnopqrstu") {
				t.Errorf("error %q repeats the token", err)
			}
		})
	}
	tokens := testTokens(t)
	for token, want := range map[string]Role{adminToken: RoleAdmin, readToken: RoleRead, "": RoleNone, adminToken + "x": RoleNone, adminToken[:20]: RoleNone} {
		if got := tokens.Lookup(token); got != want {
			t.Errorf("Lookup(%q) = %v, want %v", token, got, want)
		}
	}
}

func TestLoadTokensWantsMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(adminToken+" admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokens(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable tokens file: %v, want an error naming it", err)
	}
	os.Chmod(path, 0o600)
	if tokens, err := LoadTokens(path); err != nil || tokens.Lookup(adminToken) != RoleAdmin {
		t.Fatalf("LoadTokens: %v", err)
	}
}

// TestTokensAreComparedInConstantTime checks the source of Lookup: tokens
// are hashed, compared with crypto/subtle, and the loop over them never
// ends early (no return, break or == on the token inside it). Timing
// cannot be measured reliably in a test; the shape can.
func TestTokensAreComparedInConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "auth.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lookup *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Lookup" {
			lookup = fd
		}
	}
	if lookup == nil {
		t.Fatal("no Lookup in auth.go")
	}
	calls := map[string]bool{}
	var loop *ast.RangeStmt
	ast.Inspect(lookup.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok {
				calls[x.Name+"."+n.Sel.Name] = true
			}
		case *ast.RangeStmt:
			loop = n
		}
		return true
	})
	for _, want := range []string{"sha256.Sum256", "subtle.ConstantTimeCompare", "subtle.ConstantTimeSelect"} {
		if !calls[want] {
			t.Errorf("Lookup does not call %s", want)
		}
	}
	if loop == nil {
		t.Fatal("Lookup has no loop over the tokens")
	}
	ast.Inspect(loop.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ReturnStmt, *ast.BranchStmt, *ast.IfStmt:
			t.Errorf("Lookup's loop may end early or branch on a comparison: %T", n)
		case *ast.BinaryExpr:
			if n.Op == token.EQL || n.Op == token.NEQ {
				t.Errorf("Lookup's loop compares with %s", n.Op)
			}
		}
		return true
	})
}

func TestAuthentication(t *testing.T) {
	svc := seeded()
	h := authServer(t, svc).Handler()
	bearer := func(tok string) string { return "Bearer " + tok }
	for _, tc := range []struct {
		name, method, path, auth, body string
		code                           int
		errHas                         string
	}{
		{"health is open", "GET", "/v1/health", "", "", 200, ""},
		{"list without a token", "GET", "/v1/instances", "", "", 401, "authentication required"},
		{"get without a token", "GET", "/v1/instances/cache1", "", "", 401, "authentication required"},
		{"metrics without a token", "GET", "/metrics", "", "", 401, "authentication required"},
		{"unknown route without a token", "GET", "/v1/nothing", "", "", 401, "authentication required"},
		{"wrong method without a token", "PUT", "/v1/instances", "", "", 401, "authentication required"},
		{"create without a token", "POST", "/v1/instances", "", msBody("new1", "{}"), 401, "authentication required"},
		{"delete without a token", "DELETE", "/v1/instances/cache1", "", "", 401, "authentication required"},
		{"wrong token", "GET", "/v1/instances", bearer("not-a-token-at-all-0000"), "", 401, "not valid"},
		{"basic auth", "GET", "/v1/instances", "Basic YWRtaW46YWRtaW4=", "", 401, "not valid"},
		{"bare token", "GET", "/v1/instances", adminToken, "", 401, "not valid"},
		{"wrong token on health", "GET", "/v1/health", bearer("nope"), "", 200, ""},
		{"read lists", "GET", "/v1/instances", bearer(readToken), "", 200, ""},
		{"read gets", "GET", "/v1/instances/cache1", bearer(readToken), "", 200, ""},
		{"read scrapes metrics", "GET", "/metrics", bearer(readToken), "", 200, ""},
		{"read cannot create", "POST", "/v1/instances", bearer(readToken), msBody("new1", "{}"), 403, "needs an admin token"},
		{"read cannot patch", "PATCH", "/v1/instances/cache1", bearer(readToken), `{"slaves": 3}`, 403, "needs an admin token"},
		{"read cannot delete", "DELETE", "/v1/instances/cache1", bearer(readToken), "", 403, "needs an admin token"},
		{"read gets 404s", "GET", "/v1/nothing", bearer(readToken), "", 404, "no such route"},
		{"lower-case scheme", "GET", "/v1/instances", "bearer " + readToken, "", 200, ""},
		{"admin creates", "POST", "/v1/instances", bearer(adminToken), msBody("new1", "{}"), 202, ""},
		{"admin deletes", "DELETE", "/v1/instances/single", bearer(adminToken), "", 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := doAuth(h, tc.method, tc.path, tc.auth, tc.body)
			if rec.Code != tc.code {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.code)
			}
			if tc.code == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
				}
			}
			if tc.errHas != "" {
				checkError(t, rec, "", tc.errHas)
			}
			if strings.Contains(rec.Body.String(), "token-0123456789") {
				t.Errorf("the answer repeats a token: %s", rec.Body)
			}
		})
	}
	// Only the two admin requests reached the service.
	if _, got := svc.snapshot(); len(got) != 2 {
		t.Errorf("service calls %q, want the admin create and delete only", got)
	}
}

func TestEnvIsRedactedForReadTokens(t *testing.T) {
	h := authServer(t, seeded()).Handler()
	envOf := func(rec *httptest.ResponseRecorder) map[string]string {
		t.Helper()
		if rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return decodeInstance(t, rec).Spec.Env
	}
	if env := envOf(doAuth(h, "GET", "/v1/instances/cache1", "Bearer "+readToken, "")); env["A"] != Redacted {
		t.Errorf("read token sees env %v, want A redacted", env)
	}
	if env := envOf(doAuth(h, "GET", "/v1/instances/cache1", "Bearer "+adminToken, "")); env["A"] != "1" {
		t.Errorf("admin token sees env %v, want A=1", env)
	}
	rec := doAuth(h, "GET", "/v1/instances", "Bearer "+readToken, "")
	var list []*stateful.Instance
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	for _, inst := range list {
		for k, v := range inst.Spec.Env {
			if v != Redacted {
				t.Errorf("list for a read token shows %s env %s=%q", inst.Name, k, v)
			}
		}
	}
	// Without authentication (loopback only), everyone is admin.
	if env := envOf(do(newTestServer(t, seeded()).Handler(), "GET", "/v1/instances/cache1", "", nil)); env["A"] != "1" {
		t.Errorf("no authentication: env %v, want A=1", env)
	}
}

// TestTokensAreNeverLogged runs requests with tokens, good and bad, at the
// most verbose log level and looks for them in what glog wrote.
func TestTokensAreNeverLogged(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	v := flagValue(t, "v")
	setFlag(t, "v", "2")
	h := authServer(t, seeded()).Handler()
	for _, auth := range []string{"Bearer " + adminToken, "Bearer " + readToken, "Bearer wrong-secret-0123456789", "Basic c2VjcmV0LTAxMjM0NTY3ODk="} {
		doAuth(h, "GET", "/v1/instances/cache1", auth, "")
		doAuth(h, "POST", "/v1/instances", auth, msBody("logged", `{"command": 1}`))
		doAuth(h, "GET", "/v1/instances/missing", auth, "")
	}
	glog.Flush()
	os.Stderr = stderr
	setFlag(t, "v", v)
	w.Close()
	logged, _ := io.ReadAll(r)
	if !strings.Contains(string(logged), "role=admin") {
		t.Fatalf("the access log was not captured:\n%s", logged)
	}
	for _, secret := range []string{"0123456789", "c2VjcmV0"} {
		if strings.Contains(string(logged), secret) {
			t.Errorf("the log holds a token:\n%s", logged)
		}
	}
}

// policyService is a memService whose workload refuses commands and allows
// one image.
type policyService struct{ *memService }

func (policyService) AllowSpec(given []string, requested stateful.Spec) error {
	for _, f := range given {
		switch {
		case f == "command":
			return &stateful.ValidationError{Field: "spec.command", Msg: "may not be set by a request"}
		case f == "image" && requested.Image != "" && requested.Image != "redis:7":
			return errors.New("only redis:7 is allowed")
		}
	}
	return nil
}

func TestSpecPolicy(t *testing.T) {
	svc := policyService{seeded()}
	h := newTestServer(t, svc).Handler()
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		field, errHas            string
	}{
		{"create with a command", "POST", "/v1/instances", msBody("p1", `{"command": "rm -rf /"}`), 400, "spec.command", "may not be set"},
		{"create with another image", "POST", "/v1/instances", msBody("p1", `{"image": "evil:1"}`), 400, "spec", "only redis:7"},
		{"patch with a command", "PATCH", "/v1/instances/cache1", `{"spec": {"command": "sh"}}`, 400, "spec.command", "may not be set"},
		{"patch with another image", "PATCH", "/v1/instances/cache1", `{"spec": {"image": "evil:1"}}`, 400, "spec", "only redis:7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := doAuth(h, tc.method, tc.path, "", tc.body)
			if rec.Code != tc.code {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.code)
			}
			checkError(t, rec, tc.field, tc.errHas)
		})
	}
	if _, got := svc.snapshot(); len(got) != 0 {
		t.Fatalf("refused requests reached the service: %q", got)
	}
	if rec := doAuth(h, "POST", "/v1/instances", "", msBody("p2", `{"image": "redis:7", "mem": 300}`)); rec.Code != 202 {
		t.Errorf("an allowed create: %d %s", rec.Code, rec.Body)
	}
	if rec := doAuth(h, "PATCH", "/v1/instances/cache1", "", `{"spec": {"image": null, "mem": 300}}`); rec.Code != 202 {
		t.Errorf("an allowed patch: %d %s", rec.Code, rec.Body)
	}
}

func TestTLS(t *testing.T) {
	ca := testcert.NewCA(t, "api")
	server := ca.Server(t, "server")
	other := testcert.NewCA(t, "other")

	start := func(t *testing.T, clientCA string) string {
		t.Helper()
		tcfg, err := LoadTLS(server.CertFile, server.KeyFile, clientCA)
		if err != nil {
			t.Fatal(err)
		}
		cfg := NewConfig()
		cfg.TLS = tcfg
		cfg.Tokens = testTokens(t)
		s, err := New(cfg, seeded(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, s)
	}
	get := func(base, caFile string, cert *testcert.Pair) (int, error) {
		tcfg := &tls.Config{}
		if caFile != "" {
			pool, err := LoadCAs(caFile)
			if err != nil {
				return 0, err
			}
			tcfg.RootCAs = pool
		}
		if cert != nil {
			c, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
			if err != nil {
				return 0, err
			}
			tcfg.Certificates = []tls.Certificate{c}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tcfg}}
		defer hc.CloseIdleConnections()
		req, _ := http.NewRequest("GET", base+"/v1/instances", nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	t.Run("server certificate", func(t *testing.T) {
		base := start(t, "")
		if code, err := get(base, ca.CertFile, nil); err != nil || code != 200 {
			t.Fatalf("with the CA: %d, %v", code, err)
		}
		if _, err := get(base, other.CertFile, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("with another CA: %v, want a certificate error", err)
		}
		// Go's server answers plain HTTP on a TLS port with a 400.
		if code, err := get(strings.Replace(base, "https", "http", 1), "", nil); err != nil || code != http.StatusBadRequest {
			t.Fatalf("plain HTTP: %d, %v; want 400", code, err)
		}
	})
	t.Run("client certificates", func(t *testing.T) {
		base := start(t, ca.CertFile)
		good := ca.Client(t, "operator")
		stranger := other.Client(t, "stranger")
		if code, err := get(base, ca.CertFile, &good); err != nil || code != 200 {
			t.Fatalf("with a client certificate: %d, %v", code, err)
		}
		if _, err := get(base, ca.CertFile, nil); err == nil {
			t.Fatal("without a client certificate: served")
		}
		if _, err := get(base, ca.CertFile, &stranger); err == nil {
			t.Fatal("with a client certificate of another CA: served")
		}
	})
	t.Run("key file mode", func(t *testing.T) {
		if err := os.Chmod(server.KeyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(server.KeyFile, 0o600)
		if _, err := LoadTLS(server.CertFile, server.KeyFile, ""); err == nil || !strings.Contains(err.Error(), server.KeyFile) {
			t.Fatalf("a world-readable key: %v, want an error naming it", err)
		}
	})
}

func flagValue(t *testing.T, name string) string {
	t.Helper()
	f := flag.Lookup(name)
	if f == nil {
		t.Fatalf("no flag -%s", name)
	}
	return f.Value.String()
}

func setFlag(t *testing.T, name, value string) {
	t.Helper()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
}
