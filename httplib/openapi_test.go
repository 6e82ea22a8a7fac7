package httplib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/feed"
)

// openAPIResponse is a response of the document, $ref resolved.
type openAPIResponse struct {
	Ref     string                     `json:"$ref"`
	Content map[string]json.RawMessage `json:"content"`
	Headers map[string]json.RawMessage `json:"headers"`
}

// documentedResponse is what a route's response code promises.
type documentedResponse struct {
	types   []string // media types
	headers []string // header names
}

// documentedRoute is one operation of the document.
type documentedRoute struct {
	codes map[int]documentedResponse
	// security names the schemes the operation needs, none if it is open.
	security []string
}

type openAPIDocument struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	Comps   struct {
		Responses       map[string]openAPIResponse `json:"responses"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

// documented returns, for "METHOD /path", each response code with the
// media types and headers it may have, and the security it needs.
func documented(t *testing.T) map[string]documentedRoute {
	t.Helper()
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json says version %q, want 3.x", doc.OpenAPI)
	}
	out := map[string]documentedRoute{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if method == "parameters" {
				continue
			}
			var op struct {
				Responses map[string]openAPIResponse `json:"responses"`
				Security  []map[string][]string      `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			route := documentedRoute{codes: map[int]documentedResponse{}}
			for _, req := range op.Security {
				for scheme := range req {
					if _, ok := doc.Comps.SecuritySchemes[scheme]; !ok {
						t.Errorf("%s %s: no security scheme %q", method, path, scheme)
					}
					route.security = append(route.security, scheme)
				}
			}
			for code, resp := range op.Responses {
				if resp.Ref != "" {
					name := strings.TrimPrefix(resp.Ref, "#/components/responses/")
					ref, ok := doc.Comps.Responses[name]
					if !ok {
						t.Errorf("%s %s %s: no response %s", method, path, code, resp.Ref)
					}
					resp = ref
				}
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s %s: response code %q is not a number", method, path, code)
				}
				route.codes[n] = documentedResponse{
					types:   slices.Sorted(maps.Keys(resp.Content)),
					headers: slices.Sorted(maps.Keys(resp.Headers)),
				}
			}
			out[strings.ToUpper(method)+" "+path] = route
		}
	}
	return out
}

// TestOpenAPIRoutesAreTheRouters: the document lists exactly the routes the
// router serves.
func TestOpenAPIRoutesAreTheRouters(t *testing.T) {
	s := newTestServer(t, seeded())
	var routes []string
	for _, r := range s.routes {
		routes = append(routes, r.method+" "+r.path)
	}
	slices.Sort(routes)
	doc := slices.Sorted(maps.Keys(documented(t)))
	if !slices.Equal(routes, doc) {
		t.Errorf("the router serves\n  %s\nthe document lists\n  %s", strings.Join(routes, "\n  "), strings.Join(doc, "\n  "))
	}
	// And it is what the API serves.
	rec := do(s.Handler(), "GET", "/v1/openapi.json", "", nil)
	if rec.Code != 200 || rec.Body.String() != string(openAPIDoc)+"\n" {
		t.Errorf("GET /v1/openapi.json: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// docService is the in-memory service with an event feed and a runtime.
type docService struct {
	*memService
	*feed.Hub
}

func (docService) Runtime() RuntimeInfo {
	return RuntimeInfo{Configured: "auto", Chosen: "process", Reason: "no Docker engine answers"}
}

// docCase is one request to a real running API.
type docCase struct {
	route       string // "METHOD /template" it exercises
	path, ctype string
	body        string
	noFeed      bool                // a service without an event feed
	setup       func(m *memService) // before the request
	header      http.Header
	// auth turns authentication on (testTokens) and says what the
	// request carries: "none", or a "read", "admin" or "bad" token.
	auth         string
	want         int
	wantLocation string
}

var errDiskOnFire = errors.New("disk on fire")

func unavailable() error { return fmt.Errorf("not the leader: %w", stateful.ErrUnavailable) }

func failing(method string, err error) func(*memService) {
	return func(m *memService) { m.fail[method] = err }
}

// TestOpenAPIResponsesAreTheAPIs sends requests to a running API until
// every documented response code of every route has been seen, and checks
// that every answer is documented, with its media type.
func TestOpenAPIResponsesAreTheAPIs(t *testing.T) {
	const ms = `{"name": "new1", "type": "MS", "slaves": 1}`
	big := `{"name": "big", "type": "S", "spec": {"env": {"A": "` + strings.Repeat("x", 2048) + `"}}}`
	cases := []docCase{
		{route: "GET /v1/instances", path: "/v1/instances", want: 200},
		{route: "GET /v1/instances", path: "/v1/instances", setup: failing("List", errDiskOnFire), want: 500},
		{route: "GET /v1/instances", path: "/v1/instances", setup: failing("List", unavailable()), want: 503},

		{route: "POST /v1/instances", body: ms, want: 202, wantLocation: "/v1/instances/new1"},
		{route: "POST /v1/instances", body: `{"name": "new1", "type": "X"}`, want: 400},
		{route: "POST /v1/instances", body: `{"name": "cache1", "type": "S"}`, want: 409},
		{route: "POST /v1/instances", body: big, want: 413},
		{route: "POST /v1/instances", body: ms, ctype: "text/plain", want: 415},
		{route: "POST /v1/instances", body: ms, setup: failing("Create", errDiskOnFire), want: 500},
		{route: "POST /v1/instances", body: ms, setup: failing("Create", unavailable()), want: 503},

		{route: "GET /v1/instances/{name}", path: "/v1/instances/cache1", want: 200},
		{route: "GET /v1/instances/{name}", path: "/v1/instances/Bad_Name", want: 400},
		{route: "GET /v1/instances/{name}", path: "/v1/instances/nope", want: 404},
		{route: "GET /v1/instances/{name}", path: "/v1/instances/cache1", setup: failing("Get", errDiskOnFire), want: 500},
		{route: "GET /v1/instances/{name}", path: "/v1/instances/cache1", setup: failing("Get", unavailable()), want: 503},

		{route: "POST /v1/instances/{name}/switchover", path: "/v1/instances/cache1/switchover", want: 202},
		{route: "POST /v1/instances/{name}/switchover", path: "/v1/instances/cache1/switchover", body: `{"to": 1}`, want: 202},
		{route: "POST /v1/instances/{name}/switchover", path: "/v1/instances/cache1/switchover", body: `{"to": -1}`, want: 400},
		{route: "POST /v1/instances/{name}/switchover", path: "/v1/instances/nope/switchover", want: 404},
		{route: "POST /v1/instances/{name}/rollout/pause", path: "/v1/instances/cache1/rollout/pause", want: 202},
		{route: "POST /v1/instances/{name}/rollout/pause", path: "/v1/instances/nope/rollout/pause", want: 404},
		{route: "POST /v1/instances/{name}/rollout/resume", path: "/v1/instances/cache1/rollout/resume", want: 202},
		{route: "POST /v1/instances/{name}/rollout/resume", path: "/v1/instances/nope/rollout/resume", want: 404},
		{route: "POST /v1/instances/{name}/rollout/abort", path: "/v1/instances/cache1/rollout/abort", want: 400},
		{route: "POST /v1/instances/{name}/rollout/abort", path: "/v1/instances/nope/rollout/abort", want: 404},
		{route: "POST /v1/instances/{name}/rollout/abort", path: "/v1/instances/cache1/rollout/abort", setup: func(m *memService) {
			spec := m.instances["cache1"].Spec.Clone()
			m.instances["cache1"].PreviousSpec = &spec
		}, want: 202},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, want: 202},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, ctype: "application/merge-patch+json", want: 202},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": -1}`, want: 400},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/nope", body: `{"slaves": 3}`, want: 404},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/going", body: `{"slaves": 3}`, want: 409},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: big, want: 413},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, ctype: "text/plain", want: 415},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, setup: failing("Update", errDiskOnFire), want: 500},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, setup: failing("Get", unavailable()), want: 503},

		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/cache1", want: 202},
		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/-bad", want: 400},
		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/nope", want: 404},
		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/cache1", setup: failing("Destroy", errDiskOnFire), want: 500},
		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/cache1", setup: failing("Destroy", unavailable()), want: 503},

		{route: "GET /v1/events", path: "/v1/events", want: 200},
		{route: "GET /v1/events", path: "/v1/events?instance=cache1", header: http.Header{"Last-Event-ID": {"x-1"}}, want: 200},
		{route: "GET /v1/events", path: "/v1/events?instance=NO", want: 400},
		{route: "GET /v1/events", path: "/v1/events", noFeed: true, want: 501},

		{route: "GET /v1/health", want: 200},
		{route: "GET /v1/health", setup: func(m *memService) { m.problems = []Problem{{"mesos", "not subscribed"}} }, want: 503},
		{route: "GET /v1/openapi.json", want: 200},
		{route: "GET /metrics", want: 200},
		{route: "GET /ui", want: 308, wantLocation: "/ui/"},
		{route: "GET /ui/", want: 200},
		{route: "GET /ui/{file}", path: "/ui/app.js", want: 200},
		{route: "GET /ui/{file}", path: "/ui/style.css", want: 200},
		{route: "GET /ui/{file}", path: "/ui/index.html", want: 200},
		{route: "GET /ui/{file}", path: "/ui/nope.js", want: 404},

		// With authentication on.
		{route: "GET /v1/instances", auth: "none", want: 401},
		{route: "GET /v1/instances", auth: "bad", want: 401},
		{route: "GET /v1/instances", auth: "read", want: 200},
		{route: "POST /v1/instances", body: ms, auth: "none", want: 401},
		{route: "POST /v1/instances", body: ms, auth: "read", want: 403},
		{route: "POST /v1/instances", body: ms, auth: "admin", want: 202, wantLocation: "/v1/instances/new1"},
		{route: "GET /v1/instances/{name}", path: "/v1/instances/cache1", auth: "none", want: 401},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, auth: "none", want: 401},
		{route: "PATCH /v1/instances/{name}", path: "/v1/instances/cache1", body: `{"slaves": 3}`, auth: "read", want: 403},
		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/cache1", auth: "none", want: 401},
		{route: "DELETE /v1/instances/{name}", path: "/v1/instances/cache1", auth: "read", want: 403},
		{route: "POST /v1/instances/{name}/switchover", path: "/v1/instances/cache1/switchover", auth: "none", want: 401},
		{route: "POST /v1/instances/{name}/switchover", path: "/v1/instances/cache1/switchover", auth: "read", want: 403},
		{route: "POST /v1/instances/{name}/rollout/pause", path: "/v1/instances/cache1/rollout/pause", auth: "none", want: 401},
		{route: "POST /v1/instances/{name}/rollout/pause", path: "/v1/instances/cache1/rollout/pause", auth: "read", want: 403},
		{route: "POST /v1/instances/{name}/rollout/resume", path: "/v1/instances/cache1/rollout/resume", auth: "none", want: 401},
		{route: "POST /v1/instances/{name}/rollout/resume", path: "/v1/instances/cache1/rollout/resume", auth: "read", want: 403},
		{route: "POST /v1/instances/{name}/rollout/abort", path: "/v1/instances/cache1/rollout/abort", auth: "none", want: 401},
		{route: "POST /v1/instances/{name}/rollout/abort", path: "/v1/instances/cache1/rollout/abort", auth: "read", want: 403},
		{route: "GET /v1/events", path: "/v1/events", auth: "none", want: 401},
		{route: "GET /v1/events", path: "/v1/events", auth: "read", want: 200},
		{route: "GET /v1/openapi.json", auth: "none", want: 401},
		{route: "GET /metrics", auth: "none", want: 401},
		{route: "GET /v1/health", auth: "none", want: 200},
		{route: "GET /v1/health", auth: "bad", want: 200},
		{route: "GET /ui", auth: "none", want: 308, wantLocation: "/ui/"},
		{route: "GET /ui/", auth: "none", want: 200},
		{route: "GET /ui/{file}", path: "/ui/app.js", auth: "bad", want: 200},
	}

	doc := documented(t)
	// The document's security is the router's: a route needing a token
	// may answer 401, and 403 if it changes something; an open one
	// neither.
	for route, d := range doc {
		_, has401 := d.codes[401]
		_, has403 := d.codes[403]
		needs := len(d.security) > 0
		if has401 != needs || has403 != (needs && !strings.HasPrefix(route, "GET ")) {
			t.Errorf("%s: security %v, documents 401 %v, 403 %v", route, d.security, has401, has403)
		}
	}
	seen := map[string]map[int]bool{}
	// openWithAuth: routes answered without a valid token while authentication
	// was on.
	openWithAuth := map[string]bool{}
	httpClient := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range cases {
		method, tmpl, _ := strings.Cut(tc.route, " ")
		path := tc.path
		if path == "" {
			path = tmpl
		}
		name := fmt.Sprintf("%s %s → %d", method, path, tc.want)
		t.Run(name, func(t *testing.T) {
			mem := seeded()
			if tc.setup != nil {
				tc.setup(mem)
			}
			var svc Service = docService{mem, feed.NewHub(0, 0)}
			if tc.noFeed {
				svc = mem
			}
			cfg := NewConfig()
			cfg.MaxBodyBytes = 1024
			if tc.auth != "" {
				cfg.Tokens = testTokens(t)
			}
			s, err := New(cfg, svc, nil)
			if err != nil {
				t.Fatal(err)
			}
			base := serve(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequestWithContext(ctx, method, base+path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			switch tc.auth {
			case "read":
				req.Header.Set("Authorization", "Bearer "+readToken)
			case "admin":
				req.Header.Set("Authorization", "Bearer "+adminToken)
			case "bad":
				req.Header.Set("Authorization", "Bearer wrong-token-0123456789")
			}
			if tc.body != "" {
				ctype := tc.ctype
				if ctype == "" {
					ctype = "application/json"
				}
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			// Not read to the end: an event stream does not end.
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if tc.wantLocation != "" && resp.Header.Get("Location") != tc.wantLocation {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tc.wantLocation)
			}
			d, ok := doc[tc.route]
			if !ok {
				t.Fatalf("%s is not documented", tc.route)
			}
			r, ok := d.codes[resp.StatusCode]
			if !ok {
				t.Fatalf("%s answered %d, which is not documented", tc.route, resp.StatusCode)
			}
			mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if len(r.types) > 0 && !slices.Contains(r.types, mt) {
				t.Errorf("Content-Type %q, documented %v", mt, r.types)
			}
			for _, h := range r.headers {
				if resp.Header.Get(h) == "" {
					t.Errorf("no %s header, documented for %d", h, resp.StatusCode)
				}
			}
			if (tc.auth == "none" || tc.auth == "bad") && resp.StatusCode != http.StatusUnauthorized {
				openWithAuth[tc.route] = true
			}
			if seen[tc.route] == nil {
				seen[tc.route] = map[int]bool{}
			}
			seen[tc.route][resp.StatusCode] = true
		})
	}
	for _, route := range slices.Sorted(maps.Keys(doc)) {
		for _, code := range slices.Sorted(maps.Keys(doc[route].codes)) {
			if !seen[route][code] {
				t.Errorf("%s %d is documented but no request here gets it", route, code)
			}
		}
		if len(doc[route].security) == 0 && !openWithAuth[route] {
			t.Errorf("%s is documented open but no request here gets it without a valid token while authentication is on", route)
		}
	}
}
