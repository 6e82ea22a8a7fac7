package httplib

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
)

// fixtures returns the instances every handler test starts with.
func fixtures() []*stateful.Instance {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cache1 := &stateful.Instance{
		Name: "cache1", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2,
		Status: stateful.StatusRunning, Generation: 3,
		Spec:      redisDefaults().WithDefaults(stateful.Spec{Env: map[string]string{"A": "1"}}),
		CreatedAt: now, UpdatedAt: now,
	}
	// Stored out of order: the API serves tasks by ordinal.
	for _, n := range []int{2, 0, 1} {
		task := stateful.NewTask(cache1, n, cache1.RoleFor(n), now)
		if n != 2 {
			task.State, task.Healthy, task.Attempt = stateful.TaskRunning, true, 1
			task.TaskID = stateful.FormatTaskID("cache1", n, 1)
			task.AgentID, task.Host = fmt.Sprintf("agent-%d", n), fmt.Sprintf("127.0.0.%d", n+2)
			task.Ports = map[string]int{"redis": 31000 + n}
			task.Stats = map[string]string{"role": string(task.Role)}
		} else {
			task.Unplaced = "mem exhausted on 3 agents"
		}
		cache1.Tasks = append(cache1.Tasks, task)
	}
	single := &stateful.Instance{
		Name: "single", Type: stateful.TypeSingle, Masters: 1, Status: stateful.StatusRunning,
		Generation: 1, Spec: redisDefaults().WithDefaults(stateful.Spec{}),
	}
	ring := &stateful.Instance{
		Name: "ring", Type: stateful.TypeCluster, Masters: 3, Status: stateful.StatusCreating,
		Generation: 1, Spec: redisDefaults().WithDefaults(stateful.Spec{}),
	}
	going := &stateful.Instance{
		Name: "going", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1, Status: stateful.StatusDeleting,
		Generation: 2, Spec: redisDefaults().WithDefaults(stateful.Spec{}),
	}
	return []*stateful.Instance{cache1, single, ring, going}
}

func newTestServer(t testing.TB, svc Service) *Server {
	t.Helper()
	s, err := New(NewConfig(), svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seeded() *memService {
	svc := newMemService()
	for _, inst := range fixtures() {
		svc.put(inst)
	}
	return svc
}

func do(h http.Handler, method, path, ctype string, body io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// unknownLength hides a reader's length, so the request is sent chunked and
// only http.MaxBytesReader can stop it.
type unknownLength struct{ io.Reader }

type apiCase struct {
	name         string
	method, path string
	ctype        string // "" means application/json when there is a body
	body         string
	reader       io.Reader // instead of body
	setup        func(*memService)
	code         int
	field        string // for errors
	errHas       string // for errors
	reaches      bool   // the request reaches a mutating Service method
	check        func(t *testing.T, rec *httptest.ResponseRecorder, svc *memService)
}

func runCases(t *testing.T, cases []apiCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := seeded()
			if tc.setup != nil {
				tc.setup(svc)
			}
			before, _ := svc.snapshot()
			s := newTestServer(t, svc)

			var body io.Reader = strings.NewReader(tc.body)
			if tc.reader != nil {
				body = tc.reader
			}
			ctype := tc.ctype
			if ctype == "" && (tc.body != "" || tc.reader != nil) {
				ctype = "application/json"
			}
			if ctype == "-" {
				ctype = ""
			}
			rec := do(s.Handler(), tc.method, tc.path, ctype, body)

			if rec.Code != tc.code {
				t.Fatalf("%s %s: got %d %s, want %d", tc.method, tc.path, rec.Code, rec.Body, tc.code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" && tc.path != "/metrics" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tc.code >= 400 && tc.path != "/v1/health" { // health answers its report
				checkError(t, rec, tc.field, tc.errHas)
				if !tc.reaches {
					after, mutations := svc.snapshot()
					if len(mutations) > 0 {
						t.Errorf("a rejected request reached the service: %v", mutations)
					}
					if !reflect.DeepEqual(before, after) {
						t.Errorf("a rejected request changed the state")
					}
				}
			}
			if tc.check != nil {
				tc.check(t, rec, svc)
			}
		})
	}
}

// checkError asserts the body is exactly {"error": ..., "field": ...}.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, field, errHas string) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
	}
	msg, ok1 := got["error"].(string)
	f, ok2 := got["field"].(string)
	if !ok1 || !ok2 || len(got) != 2 {
		t.Fatalf("error body %s is not {\"error\": string, \"field\": string}", rec.Body)
	}
	if msg == "" {
		t.Errorf("empty error message")
	}
	if f != field {
		t.Errorf("field %q, want %q (error %q)", f, field, msg)
	}
	if !strings.Contains(msg, errHas) {
		t.Errorf("error %q does not mention %q", msg, errHas)
	}
}

func decodeInstance(t *testing.T, rec *httptest.ResponseRecorder) *stateful.Instance {
	t.Helper()
	var inst stateful.Instance
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&inst); err != nil {
		t.Fatalf("answer is not an instance document: %v", err)
	}
	return &inst
}

func stored(t *testing.T, svc *memService, name string) *stateful.Instance {
	t.Helper()
	all, _ := svc.snapshot()
	inst, ok := all[name]
	if !ok {
		t.Fatalf("instance %q not stored", name)
	}
	return inst
}

func wantMutations(want ...string) func(*testing.T, *httptest.ResponseRecorder, *memService) {
	return func(t *testing.T, _ *httptest.ResponseRecorder, svc *memService) {
		t.Helper()
		_, got := svc.snapshot()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("service calls %q, want %q", got, want)
		}
	}
}

// spec returns a create body for an MS instance named name with the given
// spec JSON.
func msBody(name, spec string) string {
	return fmt.Sprintf(`{"name": %q, "type": "MS", "slaves": 1, "spec": %s}`, name, spec)
}

func TestCreate(t *testing.T) {
	ok := func(check func(t *testing.T, inst *stateful.Instance)) func(*testing.T, *httptest.ResponseRecorder, *memService) {
		return func(t *testing.T, rec *httptest.ResponseRecorder, svc *memService) {
			inst := decodeInstance(t, rec)
			if loc := rec.Header().Get("Location"); loc != "/v1/instances/"+inst.Name {
				t.Errorf("Location %q", loc)
			}
			if inst.Status != stateful.StatusCreating || inst.Generation != 1 {
				t.Errorf("answered status %s generation %d, want the stored CREATING 1", inst.Status, inst.Generation)
			}
			if !reflect.DeepEqual(inst.Spec, stored(t, svc, inst.Name).Spec) {
				t.Errorf("answered spec %+v differs from stored %+v", inst.Spec, stored(t, svc, inst.Name).Spec)
			}
			check(t, inst)
		}
	}
	huge := `{"name": "big", "type": "S", "spec": {"command": "` + strings.Repeat("x", 2<<20) + `"}}`
	cases := []apiCase{
		{name: "MS with defaults", method: "POST", path: "/v1/instances",
			body: `{"name": "cache2", "type": "MS", "masters": 1, "slaves": 2}`, code: 202, reaches: true,
			check: ok(func(t *testing.T, inst *stateful.Instance) {
				want := redisDefaults().WithDefaults(stateful.Spec{})
				if inst.Masters != 1 || inst.Slaves != 2 || !reflect.DeepEqual(inst.Spec, want) {
					t.Errorf("got %d/%d %+v, want 1/2 with the workload defaults %+v", inst.Masters, inst.Slaves, inst.Spec, want)
				}
				if len(inst.Tasks) != 3 {
					t.Errorf("%d tasks, want 3", len(inst.Tasks))
				}
			})},
		{name: "S masters implied", method: "POST", path: "/v1/instances",
			body: `{"name": "s1", "type": "S"}`, code: 202, reaches: true,
			check: ok(func(t *testing.T, inst *stateful.Instance) {
				if inst.Masters != 1 || inst.Slaves != 0 {
					t.Errorf("got %d/%d, want 1/0", inst.Masters, inst.Slaves)
				}
			})},
		{name: "C with spec overrides", method: "POST", path: "/v1/instances",
			body: `{"name": "ring2", "type": "C", "masters": 3, "spec": {"cpu": 2, "mem": 1024, "image": "redis:6",
			        "network": "bridge", "env": {"X": "y"}, "health": {"command": "redis-cli ping", "interval_s": 2}}}`,
			code: 202, reaches: true,
			check: ok(func(t *testing.T, inst *stateful.Instance) {
				s := inst.Spec
				if s.CPU != 2 || s.Mem != 1024 || s.Disk != 512 || s.Image != "redis:6" || s.Network != "bridge" ||
					s.Env["X"] != "y" || s.Health.Command != "redis-cli ping" || s.Health.IntervalS != 2 || s.Health.TimeoutS != 2 {
					t.Errorf("spec %+v health %+v: request fields must win, the rest come from defaults", s, s.Health)
				}
			})},
		{name: "charset utf-8 accepted", method: "POST", path: "/v1/instances", ctype: "application/json; charset=UTF-8",
			body: `{"name": "s2", "type": "S"}`, code: 202, reaches: true, check: wantMutations("Create s2")},

		{name: "exists", method: "POST", path: "/v1/instances", body: `{"name": "cache1", "type": "S"}`,
			code: 409, errHas: "already exists", reaches: true},
		{name: "exists while deleting", method: "POST", path: "/v1/instances", body: `{"name": "going", "type": "S"}`,
			code: 409, errHas: "already exists", reaches: true},

		// Names.
		{name: "name missing", method: "POST", path: "/v1/instances", body: `{"type": "S"}`, code: 400, field: "name", errHas: "empty"},
		{name: "name upper case", method: "POST", path: "/v1/instances", body: `{"name": "Cache", "type": "S"}`, code: 400, field: "name"},
		{name: "name leading dash", method: "POST", path: "/v1/instances", body: `{"name": "-a", "type": "S"}`, code: 400, field: "name"},
		{name: "name underscore", method: "POST", path: "/v1/instances", body: `{"name": "a_b", "type": "S"}`, code: 400, field: "name"},
		{name: "name too long", method: "POST", path: "/v1/instances", body: `{"name": "` + strings.Repeat("a", 64) + `", "type": "S"}`, code: 400, field: "name", errHas: "64"},
		{name: "name unicode", method: "POST", path: "/v1/instances", body: `{"name": "cafè", "type": "S"}`, code: 400, field: "name", errHas: `"cafè" has 'è'`},
		{name: "name not a string", method: "POST", path: "/v1/instances", body: `{"name": 7, "type": "S"}`, code: 400, field: "name", errHas: "must be a string"},

		// Type and counts.
		{name: "type missing", method: "POST", path: "/v1/instances", body: `{"name": "x"}`, code: 400, field: "type"},
		{name: "type unknown", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "ms"}`, code: 400, field: "type"},
		{name: "S with slaves", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "S", "slaves": 1}`, code: 400, field: "slaves"},
		{name: "MS two masters", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "masters": 2}`, code: 400, field: "masters"},
		{name: "MS zero masters", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "masters": 0}`, code: 400, field: "masters"},
		{name: "C without masters", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "C"}`, code: 400, field: "masters"},
		{name: "C with slaves", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "C", "masters": 3, "slaves": 1}`, code: 400, field: "slaves"},
		{name: "slaves negative", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "slaves": -1}`, code: 400, field: "slaves"},
		{name: "slaves too many", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "slaves": 65}`, code: 400, field: "slaves"},
		{name: "slaves fraction", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "slaves": 1.5}`, code: 400, field: "slaves", errHas: "whole number"},
		{name: "slaves overflow", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "slaves": 99999999999999999999}`, code: 400, field: "slaves", errHas: "out of range"},
		{name: "slaves string", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "MS", "slaves": "2"}`, code: 400, field: "slaves"},

		// Resources and the rest of the spec.
		{name: "cpu negative", method: "POST", path: "/v1/instances", body: msBody("x", `{"cpu": -1}`), code: 400, field: "spec.cpu", errHas: "positive"},
		{name: "mem impossible", method: "POST", path: "/v1/instances", body: msBody("x", `{"mem": 1e12}`), code: 400, field: "spec.mem", errHas: "at most"},
		{name: "disk negative", method: "POST", path: "/v1/instances", body: msBody("x", `{"disk": -512}`), code: 400, field: "spec.disk"},
		{name: "cpu out of float range", method: "POST", path: "/v1/instances", body: msBody("x", `{"cpu": 1e999}`), code: 400, field: "spec.cpu", errHas: "out of range"},
		{name: "cpu string", method: "POST", path: "/v1/instances", body: msBody("x", `{"cpu": "1"}`), code: 400, field: "spec.cpu", errHas: "must be a number"},
		{name: "network unknown", method: "POST", path: "/v1/instances", body: msBody("x", `{"network": "overlay"}`), code: 400, field: "spec.network"},
		{name: "port twice", method: "POST", path: "/v1/instances", body: msBody("x", `{"ports": ["redis", "redis"]}`), code: 400, field: "spec.ports[1]"},
		{name: "port not a string", method: "POST", path: "/v1/instances", body: msBody("x", `{"ports": ["redis", 6379]}`), code: 400, field: "spec.ports[1]"},
		{name: "ports not a list", method: "POST", path: "/v1/instances", body: msBody("x", `{"ports": "redis"}`), code: 400, field: "spec.ports", errHas: "array"},
		{name: "health port unknown", method: "POST", path: "/v1/instances", body: msBody("x", `{"health": {"tcp": "admin"}}`), code: 400, field: "spec.health.tcp"},
		{name: "health port dropped with ports", method: "POST", path: "/v1/instances", body: msBody("x", `{"ports": ["a"]}`), code: 400, field: "spec.health.tcp"},
		{name: "env bad name", method: "POST", path: "/v1/instances", body: msBody("x", `{"env": {"1X": "y"}}`), code: 400, field: "spec.env"},
		{name: "env value not a string", method: "POST", path: "/v1/instances", body: msBody("x", `{"env": {"X": 1}}`), code: 400, field: "spec.env.X"},
		{name: "volume relative", method: "POST", path: "/v1/instances", body: msBody("x", `{"volume": "data"}`), code: 400, field: "spec.volume"},
		{name: "spec not an object", method: "POST", path: "/v1/instances", body: msBody("x", `[1]`), code: 400, field: "spec", errHas: "must be an object"},

		// An explicit zero would silently mean the default: refused, naming
		// the field; null (like leaving it out) asks for the default.
		{name: "cpu zero", method: "POST", path: "/v1/instances", body: msBody("x", `{"cpu": 0}`), code: 400, field: "spec.cpu", errHas: "must not be 0"},
		{name: "cpu zero written 0.0", method: "POST", path: "/v1/instances", body: msBody("x", `{"cpu": 0.0}`), code: 400, field: "spec.cpu", errHas: "must not be 0"},
		{name: "mem zero", method: "POST", path: "/v1/instances", body: msBody("x", `{"mem": 0}`), code: 400, field: "spec.mem", errHas: "leave it out or give null"},
		{name: "command empty", method: "POST", path: "/v1/instances", body: msBody("x", `{"command": ""}`), code: 400, field: "spec.command", errHas: `must not be ""`},
		{name: "image empty", method: "POST", path: "/v1/instances", body: msBody("x", `{"image": ""}`), code: 400, field: "spec.image"},
		{name: "network empty", method: "POST", path: "/v1/instances", body: msBody("x", `{"network": ""}`), code: 400, field: "spec.network"},
		{name: "health interval zero", method: "POST", path: "/v1/instances", body: msBody("x", `{"health": {"tcp": "redis", "interval_s": 0}}`), code: 400, field: "spec.health.interval_s"},
		{name: "health grace zero", method: "POST", path: "/v1/instances", body: msBody("x", `{"health": {"tcp": "redis", "grace_s": 0}}`), code: 400, field: "spec.health.grace_s"},
		{name: "command 0 is a command", method: "POST", path: "/v1/instances", body: `{"name": "z0", "type": "S", "spec": {"command": "0"}}`, code: 202, reaches: true,
			check: ok(func(t *testing.T, inst *stateful.Instance) {
				if inst.Spec.Command != "0" {
					t.Errorf("command %q, want \"0\"", inst.Spec.Command)
				}
			})},
		{name: "disk zero is no disk request, allowed", method: "POST", path: "/v1/instances", body: `{"name": "z1", "type": "S", "spec": {"disk": 0}}`, code: 202, reaches: true},
		{name: "nulls take the defaults", method: "POST", path: "/v1/instances",
			body: `{"name": "z2", "type": "S", "spec": {"cpu": null, "mem": null, "command": null, "health": {"tcp": "redis", "interval_s": null}}}`, code: 202, reaches: true,
			check: ok(func(t *testing.T, inst *stateful.Instance) {
				d := redisDefaults()
				if inst.Spec.CPU != d.CPU || inst.Spec.Mem != d.Mem || inst.Spec.Health.IntervalS != stateful.DefaultHealthIntervalS {
					t.Errorf("spec %+v health %+v, want the defaults' cpu, mem and interval", inst.Spec, inst.Spec.Health)
				}
			})},
		{name: "deep nesting", method: "POST", path: "/v1/instances", body: msBody("x", `{"env": {"X": `+strings.Repeat("[", 100000)+`}}`), code: 400, field: "spec.env.X"},

		// Unknown, repeated and misspelt keys.
		{name: "unknown field", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "S", "replicas": 3}`, code: 400, field: "replicas", errHas: "unknown field"},
		{name: "unknown spec field", method: "POST", path: "/v1/instances", body: msBody("x", `{"cpus": 1}`), code: 400, field: "spec.cpus", errHas: "unknown field"},
		{name: "unknown health field", method: "POST", path: "/v1/instances", body: msBody("x", `{"health": {"port": 1}}`), code: 400, field: "spec.health.port", errHas: "unknown field"},
		{name: "status is not a request field", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "S", "status": "RUNNING"}`, code: 400, field: "status"},
		{name: "keys are case sensitive", method: "POST", path: "/v1/instances", body: `{"Name": "x", "type": "S"}`, code: 400, field: "Name", errHas: "unknown field"},
		{name: "key twice", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "S", "name": "y"}`, code: 400, field: "name", errHas: "twice"},
		{name: "env key twice", method: "POST", path: "/v1/instances", body: msBody("x", `{"env": {"A": "1", "A": "2"}}`), code: 400, field: "spec.env.A", errHas: "twice"},
		{name: "long unknown key is shortened", method: "POST", path: "/v1/instances", body: `{"` + strings.Repeat("k", 5000) + `": 1}`, code: 400, field: strings.Repeat("k", maxEcho) + "…"},

		// Not one JSON object.
		{name: "empty body", method: "POST", path: "/v1/instances", ctype: "application/json", body: "", code: 400, errHas: "empty"},
		{name: "null", method: "POST", path: "/v1/instances", body: `null`, code: 400, errHas: "null"},
		{name: "array", method: "POST", path: "/v1/instances", body: `[{"name": "x", "type": "S"}]`, code: 400, errHas: "must be a JSON object"},
		{name: "truncated", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": `, code: 400, errHas: "invalid JSON"},
		{name: "syntax error", method: "POST", path: "/v1/instances", body: `{"name": "x" "type": "S"}`, code: 400, errHas: "invalid JSON"},
		{name: "trailing garbage", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "S"} xyz`, code: 400, errHas: "exactly one"},
		{name: "two objects", method: "POST", path: "/v1/instances", body: `{"name": "x", "type": "S"}{"name": "y", "type": "S"}`, code: 400, errHas: "exactly one"},

		// Media type and size.
		{name: "no content type", method: "POST", path: "/v1/instances", ctype: "-", body: `{"name": "x", "type": "S"}`, code: 415, errHas: "application/json"},
		{name: "text/plain", method: "POST", path: "/v1/instances", ctype: "text/plain", body: `{"name": "x", "type": "S"}`, code: 415},
		{name: "form", method: "POST", path: "/v1/instances", ctype: "application/x-www-form-urlencoded", body: `name=x&type=S`, code: 415},
		{name: "latin1", method: "POST", path: "/v1/instances", ctype: "application/json; charset=latin1", body: `{"name": "x", "type": "S"}`, code: 415, errHas: "utf-8"},
		{name: "huge body", method: "POST", path: "/v1/instances", body: huge, code: 413, errHas: "larger than 1048576 bytes",
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				if rec.Header().Get("Connection") != "close" {
					t.Errorf("413 without Connection: close")
				}
			}},
		{name: "huge body sent chunked", method: "POST", path: "/v1/instances", reader: unknownLength{strings.NewReader(huge)}, code: 413, errHas: "larger than"},
		{name: "endless body", method: "POST", path: "/v1/instances", reader: unknownLength{io.MultiReader(strings.NewReader(`{"name": "`), zeros{})}, code: 413},
	}
	runCases(t, cases)
}

// zeros is an endless body.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

func TestCreateServiceErrors(t *testing.T) {
	failing := func(err error) func(*memService) {
		return func(svc *memService) { svc.fail["Create"] = err }
	}
	body := `{"name": "x", "type": "S"}`
	runCases(t, []apiCase{
		{name: "unavailable", method: "POST", path: "/v1/instances", body: body, setup: failing(fmt.Errorf("etcd: %w", stateful.ErrUnavailable)),
			code: 503, errHas: "unavailable", reaches: true},
		{name: "service validation error", method: "POST", path: "/v1/instances", body: body,
			code: 400, field: "spec.image", errHas: "no such image", reaches: true,
			setup: failing(fmt.Errorf("wrapped: %w", &stateful.ValidationError{Field: "spec.image", Msg: "no such image"}))},
		{name: "internal error is not leaked", method: "POST", path: "/v1/instances", body: body,
			setup: failing(errors.New("etcd txn: secret-token-123 rejected")), code: 500, errHas: "internal error", reaches: true,
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				if strings.Contains(rec.Body.String(), "secret") {
					t.Errorf("500 body leaks the internal error: %s", rec.Body)
				}
			}},
	})
}

func TestGetAndList(t *testing.T) {
	runCases(t, []apiCase{
		{name: "get with tasks", method: "GET", path: "/v1/instances/cache1", code: 200,
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				var doc map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
					t.Fatal(err)
				}
				// The field names of DESIGN §6 are a contract.
				for _, k := range []string{"name", "type", "masters", "slaves", "status", "generation", "spec", "tasks"} {
					if _, ok := doc[k]; !ok {
						t.Errorf("instance document lacks %q", k)
					}
				}
				tasks := doc["tasks"].([]any)
				for i, raw := range tasks {
					task := raw.(map[string]any)
					for _, k := range []string{"ordinal", "name", "role", "state", "healthy", "task_id", "agent_id", "host", "ports", "stats", "message"} {
						if _, ok := task[k]; !ok {
							t.Errorf("task document lacks %q", k)
						}
					}
					if task["ordinal"] != float64(i) {
						t.Errorf("task %d has ordinal %v: tasks must be sorted by ordinal", i, task["ordinal"])
					}
				}
				if got := tasks[2].(map[string]any)["unplaced"]; got != "mem exhausted on 3 agents" {
					t.Errorf("queued task's unplaced = %v, want why it is not placed", got)
				}
				if got := tasks[0].(map[string]any)["ports"].(map[string]any)["redis"]; got != float64(31000) {
					t.Errorf("master's redis port %v", got)
				}
			}},
		{name: "get unknown", method: "GET", path: "/v1/instances/nope", code: 404, errHas: `instance "nope" not found`},
		{name: "get bad name", method: "GET", path: "/v1/instances/Bad_Name", code: 400, field: "name"},
		{name: "get too long name", method: "GET", path: "/v1/instances/" + strings.Repeat("a", 64), code: 400, field: "name"},
		{name: "list sorted", method: "GET", path: "/v1/instances", code: 200,
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				var list []stateful.Instance
				if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, inst := range list {
					names = append(names, inst.Name)
				}
				if want := []string{"cache1", "going", "ring", "single"}; !reflect.DeepEqual(names, want) {
					t.Errorf("listed %q, want %q", names, want)
				}
			}},
		{name: "list empty", method: "GET", path: "/v1/instances", code: 200,
			setup: func(svc *memService) { svc.instances = map[string]*stateful.Instance{} },
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				if got := strings.TrimSpace(rec.Body.String()); got != "[]" {
					t.Errorf("empty list is %s, want []", got)
				}
			}},
		{name: "list unavailable", method: "GET", path: "/v1/instances", code: 503,
			setup: func(svc *memService) { svc.fail["List"] = fmt.Errorf("not the leader: %w", stateful.ErrUnavailable) }},
	})
}

func TestPatch(t *testing.T) {
	accepted := func(check func(t *testing.T, patch Patch, inst *stateful.Instance)) func(*testing.T, *httptest.ResponseRecorder, *memService) {
		return func(t *testing.T, rec *httptest.ResponseRecorder, svc *memService) {
			inst := decodeInstance(t, rec)
			if len(svc.patches) != 1 {
				t.Fatalf("service got %d patches, want 1", len(svc.patches))
			}
			patch := svc.patches[0]
			if patch.Generation != 3 {
				t.Errorf("patch computed from generation %d, want 3", patch.Generation)
			}
			if inst.Generation != 4 {
				t.Errorf("answered generation %d, want 4", inst.Generation)
			}
			if !reflect.DeepEqual(inst.Spec, stored(t, svc, "cache1").Spec) || inst.Slaves != stored(t, svc, "cache1").Slaves {
				t.Errorf("answer differs from the stored instance")
			}
			check(t, patch, inst)
		}
	}
	p := "/v1/instances/cache1"
	runCases(t, []apiCase{
		{name: "scale", method: "PATCH", path: p, body: `{"slaves": 4}`, code: 202, reaches: true,
			check: accepted(func(t *testing.T, patch Patch, inst *stateful.Instance) {
				if patch.Slaves == nil || *patch.Slaves != 4 || patch.Spec != nil {
					t.Errorf("patch %+v, want slaves 4 and no spec", patch)
				}
				if inst.Slaves != 4 {
					t.Errorf("slaves %d", inst.Slaves)
				}
			})},
		{name: "scale to zero", method: "PATCH", path: p, body: `{"slaves": 0}`, code: 202, reaches: true,
			check: accepted(func(t *testing.T, _ Patch, inst *stateful.Instance) {
				if inst.Slaves != 0 {
					t.Errorf("slaves %d", inst.Slaves)
				}
			})},
		{name: "spec field replaced, others kept", method: "PATCH", path: p, body: `{"spec": {"mem": 512, "image": "redis:7.2"}}`, code: 202, reaches: true,
			check: accepted(func(t *testing.T, patch Patch, inst *stateful.Instance) {
				want := fixtures()[0].Spec
				want.Mem, want.Image = 512, "redis:7.2"
				if patch.Slaves != nil || patch.Spec == nil || !reflect.DeepEqual(*patch.Spec, want) {
					t.Errorf("patch %+v spec %+v, want spec %+v", patch, patch.Spec, want)
				}
			})},
		{name: "env replaced whole", method: "PATCH", path: p, body: `{"spec": {"env": {"B": "2"}}}`, code: 202, reaches: true,
			check: accepted(func(t *testing.T, _ Patch, inst *stateful.Instance) {
				if !reflect.DeepEqual(inst.Spec.Env, map[string]string{"B": "2"}) {
					t.Errorf("env %v, want exactly B=2", inst.Spec.Env)
				}
			})},
		{name: "null resets to the default", method: "PATCH", path: p, body: `{"spec": {"env": null, "cpu": null}}`,
			setup: func(svc *memService) {
				inst := stored(t, svc, "cache1")
				inst.Spec.CPU = 3
				svc.put(inst)
			}, code: 202, reaches: true,
			check: accepted(func(t *testing.T, _ Patch, inst *stateful.Instance) {
				if inst.Spec.Env != nil || inst.Spec.CPU != redisDefaults().CPU {
					t.Errorf("env %v cpu %g, want none and the default %g", inst.Spec.Env, inst.Spec.CPU, redisDefaults().CPU)
				}
			})},
		{name: "health replaced whole", method: "PATCH", path: p, body: `{"spec": {"health": {"command": "redis-cli ping"}}}`, code: 202, reaches: true,
			check: accepted(func(t *testing.T, _ Patch, inst *stateful.Instance) {
				if h := inst.Spec.Health; h.TCP != "" || h.Command != "redis-cli ping" {
					t.Errorf("health %+v, want the command check only", h)
				}
			})},
		{name: "scale and spec", method: "PATCH", path: p, body: `{"slaves": 1, "spec": {"cpu": 1}}`, code: 202, reaches: true,
			check: accepted(func(t *testing.T, patch Patch, _ *stateful.Instance) {
				if patch.Slaves == nil || patch.Spec == nil {
					t.Errorf("patch %+v, want both", patch)
				}
			})},
		{name: "same name, type and masters repeated", method: "PATCH", path: p, ctype: "application/merge-patch+json",
			body: `{"name": "cache1", "type": "MS", "masters": 1, "slaves": 3}`, code: 202, reaches: true, check: wantMutations("Update cache1")},

		{name: "rename", method: "PATCH", path: p, body: `{"name": "cache9", "slaves": 3}`, code: 400, field: "name", errHas: "renamed"},
		{name: "change type", method: "PATCH", path: p, body: `{"type": "C", "slaves": 3}`, code: 400, field: "type", errHas: "cannot be changed"},
		{name: "change masters", method: "PATCH", path: p, body: `{"masters": 2}`, code: 400, field: "masters", errHas: "cannot be changed"},
		{name: "status not patchable", method: "PATCH", path: p, body: `{"status": "RUNNING"}`, code: 400, field: "status", errHas: "unknown field"},
		{name: "generation not patchable", method: "PATCH", path: p, body: `{"generation": 9, "slaves": 3}`, code: 400, field: "generation"},
		{name: "nothing given", method: "PATCH", path: p, body: `{}`, code: 400, errHas: "nothing to change"},
		{name: "only nulls", method: "PATCH", path: p, body: `{"slaves": null, "spec": null}`, code: 400, errHas: "nothing to change"},
		{name: "only the name", method: "PATCH", path: p, body: `{"name": "cache1"}`, code: 400, errHas: "nothing to change"},
		{name: "only the same type", method: "PATCH", path: p, body: `{"type": "MS"}`, code: 400, errHas: "nothing to change"},
		{name: "same slaves", method: "PATCH", path: p, body: `{"slaves": 2}`, code: 400, field: "slaves", errHas: "already 2"},
		{name: "same spec", method: "PATCH", path: p, body: `{"spec": {"mem": 256}}`, code: 400, field: "spec", errHas: "nothing to change"},
		{name: "empty spec", method: "PATCH", path: p, body: `{"spec": {}}`, code: 400, field: "spec", errHas: "nothing to change"},
		{name: "too many slaves", method: "PATCH", path: p, body: `{"slaves": 1000}`, code: 400, field: "slaves"},
		{name: "negative slaves", method: "PATCH", path: p, body: `{"slaves": -1}`, code: 400, field: "slaves"},
		{name: "slaves on S", method: "PATCH", path: "/v1/instances/single", body: `{"slaves": 1}`, code: 400, field: "slaves"},
		{name: "slaves on C", method: "PATCH", path: "/v1/instances/ring", body: `{"slaves": 1}`, code: 400, field: "slaves"},
		{name: "bad spec", method: "PATCH", path: p, body: `{"spec": {"cpu": -2}}`, code: 400, field: "spec.cpu"},
		{name: "zero mem", method: "PATCH", path: p, body: `{"spec": {"mem": 0}}`, code: 400, field: "spec.mem", errHas: "must not be 0"},
		{name: "empty command", method: "PATCH", path: p, body: `{"slaves": 3, "spec": {"command": ""}}`, code: 400, field: "spec.command"},
		{name: "zero health timeout", method: "PATCH", path: p, body: `{"spec": {"health": {"tcp": "redis", "timeout_s": 0}}}`, code: 400, field: "spec.health.timeout_s"},
		{name: "unknown spec field", method: "PATCH", path: p, body: `{"spec": {"memory": 512}}`, code: 400, field: "spec.memory"},
		{name: "ports without the health port", method: "PATCH", path: p, body: `{"spec": {"ports": ["a"]}}`, code: 400, field: "spec.health.tcp"},
		{name: "trailing garbage", method: "PATCH", path: p, body: `{"slaves": 3}]`, code: 400},
		{name: "wrong content type", method: "PATCH", path: p, ctype: "text/plain", body: `{"slaves": 3}`, code: 415},
		{name: "huge body", method: "PATCH", path: p, body: `{"spec": {"command": "` + strings.Repeat("x", 1<<20) + `"}}`, code: 413},
		{name: "bad name in path", method: "PATCH", path: "/v1/instances/a.b", body: `{"slaves": 3}`, code: 400, field: "name"},
		{name: "unknown instance", method: "PATCH", path: "/v1/instances/nope", body: `{"slaves": 3}`, code: 404},
		{name: "while deleting", method: "PATCH", path: "/v1/instances/going", body: `{"slaves": 3}`, code: 409, errHas: "being deleted"},
		{name: "deleted between get and update", method: "PATCH", path: p, body: `{"slaves": 3}`, code: 409, errHas: "being deleted", reaches: true,
			setup: func(svc *memService) {
				svc.before = func(method, name string) {
					if method == "Update" {
						svc.mu.Lock()
						svc.instances[name].Status = stateful.StatusDeleting
						svc.mu.Unlock()
					}
				}
			}},
		{name: "changed between get and update", method: "PATCH", path: p, body: `{"spec": {"mem": 512}}`, code: 409, errHas: "changed by another request", reaches: true,
			setup: func(svc *memService) {
				svc.before = func(method, name string) {
					if method == "Update" {
						svc.mu.Lock()
						svc.instances[name].Generation++
						svc.mu.Unlock()
					}
				}
			},
			check: func(t *testing.T, _ *httptest.ResponseRecorder, svc *memService) {
				if stored(t, svc, "cache1").Spec.Mem != 256 {
					t.Errorf("a conflicting patch was applied")
				}
			}},
	})
}

func TestDelete(t *testing.T) {
	runCases(t, []apiCase{
		{name: "delete", method: "DELETE", path: "/v1/instances/cache1", code: 202, reaches: true,
			check: func(t *testing.T, rec *httptest.ResponseRecorder, svc *memService) {
				if inst := decodeInstance(t, rec); inst.Status != stateful.StatusDeleting {
					t.Errorf("answered status %s, want DELETING", inst.Status)
				}
				if st := stored(t, svc, "cache1").Status; st != stateful.StatusDeleting {
					t.Errorf("stored status %s", st)
				}
			}},
		{name: "delete again", method: "DELETE", path: "/v1/instances/going", code: 202, reaches: true},
		{name: "delete with a body ignores it", method: "DELETE", path: "/v1/instances/cache1", ctype: "text/plain", body: "junk", code: 202, reaches: true},
		{name: "delete unknown", method: "DELETE", path: "/v1/instances/nope", code: 404, reaches: true},
		{name: "delete bad name", method: "DELETE", path: "/v1/instances/-x", code: 400, field: "name"},
		{name: "delete unavailable", method: "DELETE", path: "/v1/instances/cache1", code: 503, reaches: true,
			setup: func(svc *memService) { svc.fail["Destroy"] = stateful.ErrUnavailable }},
	})
}

func TestHealth(t *testing.T) {
	runCases(t, []apiCase{
		{name: "healthy", method: "GET", path: "/v1/health", code: 200,
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				if got := strings.TrimSpace(rec.Body.String()); got != `{"status":"ok","problems":[]}` {
					t.Errorf("body %s", got)
				}
			}},
		{name: "unhealthy", method: "GET", path: "/v1/health",
			setup: func(svc *memService) {
				svc.problems = []Problem{{"mesos", "not subscribed"}, {"etcd", "unreachable: context deadline exceeded"}}
			}, code: 503,
			check: func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
				var got healthReport
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				want := healthReport{Status: "unhealthy", Error: "mesos: not subscribed; etcd: unreachable: context deadline exceeded",
					Problems: []Problem{{"mesos", "not subscribed"}, {"etcd", "unreachable: context deadline exceeded"}}}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("got %+v, want %+v", got, want)
				}
			}},
	})
}

func TestRoutes(t *testing.T) {
	allow := func(want string) func(*testing.T, *httptest.ResponseRecorder, *memService) {
		return func(t *testing.T, rec *httptest.ResponseRecorder, _ *memService) {
			if got := rec.Header().Get("Allow"); got != want {
				t.Errorf("Allow %q, want %q", got, want)
			}
		}
	}
	runCases(t, []apiCase{
		{name: "unknown route", method: "GET", path: "/v2/instances", code: 404, errHas: "no such route"},
		{name: "root", method: "GET", path: "/", code: 404},
		{name: "trailing slash", method: "GET", path: "/v1/instances/", code: 404},
		{name: "nested", method: "GET", path: "/v1/instances/cache1/tasks", code: 404},
		{name: "PUT on an instance", method: "PUT", path: "/v1/instances/cache1", body: `{}`, code: 405, check: allow("DELETE, GET, PATCH")},
		{name: "DELETE on the collection", method: "DELETE", path: "/v1/instances", code: 405, check: allow("GET, POST")},
		{name: "POST on health", method: "POST", path: "/v1/health", body: `{}`, code: 405, check: allow("GET")},
		{name: "POST on metrics", method: "POST", path: "/metrics", code: 405, check: allow("GET")},
		{name: "made-up method", method: "BREW", path: "/v1/instances", code: 405, check: allow("GET, POST")},
	})
}

// panicService panics in every call, like a buggy service would.
type panicService struct{ *memService }

func (panicService) Get(context.Context, string) (*stateful.Instance, error) { panic("boom") }

func TestPanicIsA500AndTheServerGoesOn(t *testing.T) {
	s := newTestServer(t, panicService{seeded()})
	rec := do(s.Handler(), "GET", "/v1/instances/cache1", "", nil)
	if rec.Code != 500 {
		t.Fatalf("got %d, want 500", rec.Code)
	}
	checkError(t, rec, "", "internal error")
	if rec := do(s.Handler(), "GET", "/v1/instances", "", nil); rec.Code != 200 {
		t.Fatalf("after a panic: got %d", rec.Code)
	}
}

func TestErrorMessagesAreBounded(t *testing.T) {
	// An env key is echoed by stateful's validation; the answer stays small.
	body := msBody("x", `{"env": {"`+strings.Repeat("-", 100000)+`": "v"}}`)
	s := newTestServer(t, seeded())
	rec := do(s.Handler(), "POST", "/v1/instances", "application/json", strings.NewReader(body))
	if rec.Code != 400 || rec.Body.Len() > 2*maxErrorLen+100 {
		t.Fatalf("got %d with %d bytes", rec.Code, rec.Body.Len())
	}
	checkError(t, rec, "spec.env", "spec.env")
}

func TestResponsesAreValidJSONForEveryRoute(t *testing.T) {
	s := newTestServer(t, seeded())
	for _, path := range []string{"/v1/instances", "/v1/instances/cache1", "/v1/health"} {
		rec := do(s.Handler(), "GET", path, "", nil)
		if !json.Valid(bytes.TrimSpace(rec.Body.Bytes())) {
			t.Errorf("GET %s: invalid JSON %q", path, rec.Body)
		}
	}
}
