package framework_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
)

// createBody is a POST /v1/instances body.
func createBody(name string, typ stateful.InstanceType, masters, slaves int) map[string]any {
	b := map[string]any{"name": name, "type": typ}
	if masters > 0 {
		b["masters"] = masters
	}
	if slaves > 0 {
		b["slaves"] = slaves
	}
	return b
}

// TestInstancesComeUpSpread creates an S, an MS (1 master + 2 slaves) and a
// C (3 peers) instance and checks that every task runs, on distinct agents
// within its instance, and that GET shows where and on which port.
func TestInstancesComeUpSpread(t *testing.T) {
	cluster := startCluster(t, 3)
	w := testworkload.New()
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	// Spread is what is checked: no sharing of an agent however long a
	// task waits for a sibling-free one on a loaded machine.
	cfg.Offers.Policy.CoLocateAfter = time.Hour
	s := runScheduler(t, cfg, w)

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("single", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("pair", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("ring", stateful.TypeCluster, 3, 0), http.StatusAccepted)

	for _, name := range []string{"single", "pair", "ring"} {
		inst := waitRunning(t, s.api, name)
		agents := map[string]bool{}
		for _, task := range inst.Tasks {
			if task.Host == "" || task.AgentID == "" || task.TaskID == "" || task.Ports[testworkload.Port] == 0 {
				t.Errorf("%s: GET shows no placement: %+v", task.Name, task)
			}
			if agents[task.AgentID] {
				t.Errorf("%s: two tasks on agent %s: %s", name, task.AgentID, describe(inst))
			}
			agents[task.AgentID] = true
		}
		if live := liveMasterTasks(t, cluster.MasterURL(), name); len(live) != inst.TaskCount() {
			t.Errorf("%s: the master runs %d tasks, want %d: %+v", name, len(live), inst.TaskCount(), live)
		}
	}
	pair, _ := get(t, s.api, "pair")
	roles := fmt.Sprint(pair.Tasks[0].Role, pair.Tasks[1].Role, pair.Tasks[2].Role)
	if roles != "masterslaveslave" {
		t.Errorf("pair's roles are %s", roles)
	}
}

// TestScaleAndDestroy scales an MS instance's slaves up and down and then
// destroys it: GET follows, the master runs exactly the expected tasks, and
// after the destroy the instance is 404 with no task left on any agent and
// no process left on the host.
func TestScaleAndDestroy(t *testing.T) {
	cluster := startCluster(t, 3)
	w := testworkload.New()
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	cfg.Offers.Policy.CoLocateAfter = 500 * time.Millisecond // 4 tasks on 3 agents
	s := runScheduler(t, cfg, w)

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("cache", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	waitRunning(t, s.api, "cache")

	patch := func(slaves int) {
		t.Helper()
		call(t, http.MethodPatch, s.api+"/v1/instances/cache", map[string]any{"slaves": slaves}, http.StatusAccepted)
	}
	patch(3)
	inst := waitRunning(t, s.api, "cache")
	if len(inst.Tasks) != 4 {
		t.Fatalf("after scaling to 3 slaves: %s", describe(inst))
	}
	if live := liveMasterTasks(t, cluster.MasterURL(), "cache"); len(live) != 4 {
		t.Fatalf("the master runs %d tasks of cache, want 4", len(live))
	}

	patch(1)
	eventually(t, "cache scaled down to 1 slave", func() (bool, string) {
		inst, _ := get(t, s.api, "cache")
		live := liveMasterTasks(t, cluster.MasterURL(), "cache")
		return inst.Status == stateful.StatusRunning && len(inst.Tasks) == 2 && len(live) == 2, describe(inst)
	})
	inst, _ = get(t, s.api, "cache")
	for _, task := range inst.Tasks {
		if task.Ordinal > 1 {
			t.Errorf("scale-down kept %s instead of the lowest ordinals", task.Name)
		}
	}

	call(t, http.MethodDelete, s.api+"/v1/instances/cache", nil, http.StatusAccepted)
	eventually(t, "cache gone", func() (bool, string) {
		_, code := get(t, s.api, "cache")
		return code == http.StatusNotFound, fmt.Sprint("status ", code)
	})
	if live := liveMasterTasks(t, cluster.MasterURL(), "cache"); len(live) != 0 {
		t.Errorf("after the destroy the master still has %+v", live)
	}
	eventually(t, "no process of cache left", func() (bool, string) {
		pids := processesOf("cache")
		return len(pids) == 0, fmt.Sprint("pids ", pids)
	})
}

// TestAPIErrors goes through every 400, 404 and 409 of DESIGN §6 against
// the real service, and checks that a refused request changed nothing.
func TestAPIErrors(t *testing.T) {
	cluster := startCluster(t, 3)
	s := runScheduler(t, testConfig(t, cluster.MasterURL(), t.TempDir()), testworkload.New())
	api := s.api

	bad := []struct {
		name  string
		body  any
		field string
	}{
		{"bad name", map[string]any{"name": "Bad_Name", "type": "S"}, "name"},
		{"no type", map[string]any{"name": "x"}, "type"},
		{"unknown type", map[string]any{"name": "x", "type": "XL"}, "type"},
		{"S with slaves", map[string]any{"name": "x", "type": "S", "slaves": 2}, "slaves"},
		{"MS with 2 masters", map[string]any{"name": "x", "type": "MS", "masters": 2}, "masters"},
		{"negative cpu", map[string]any{"name": "x", "type": "S", "spec": map[string]any{"cpu": -1}}, "spec.cpu"},
		{"bad network", map[string]any{"name": "x", "type": "S", "spec": map[string]any{"network": "mesh"}}, "spec.network"},
		{"health on unknown port", map[string]any{"name": "x", "type": "S", "spec": map[string]any{"health": map[string]any{"tcp": "nope"}}}, "spec.health.tcp"},
		{"unknown field", map[string]any{"name": "x", "type": "S", "colour": "red"}, "colour"},
		{"not JSON", "{", ""},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			b := call(t, http.MethodPost, api+"/v1/instances", c.body, http.StatusBadRequest)
			var e struct{ Error, Field string }
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
				t.Fatalf("error body %s: %v", b, err)
			}
			if c.field != "" && e.Field != c.field {
				t.Errorf("field %q, want %q (%s)", e.Field, c.field, e.Error)
			}
		})
	}
	if b := call(t, http.MethodGet, api+"/v1/instances", nil, http.StatusOK); string(bytes.TrimSpace(b)) != "[]" {
		t.Fatalf("refused creates left instances: %s", b)
	}

	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		call(t, m, api+"/v1/instances/ghost", nil, http.StatusNotFound)
	}
	call(t, http.MethodPatch, api+"/v1/instances/ghost", map[string]any{"slaves": 1}, http.StatusNotFound)

	// A task that ignores SIGTERM keeps its instance DELETING for the
	// executor's kill grace period.
	stubborn := map[string]any{"name": "stubborn", "type": "MS", "slaves": 1,
		"spec": map[string]any{"command": "trap '' TERM; while true; do sleep 0.2; done",
			"health": map[string]any{"command": "true", "interval_s": 0.2, "timeout_s": 0.2}}}
	call(t, http.MethodPost, api+"/v1/instances", stubborn, http.StatusAccepted)
	call(t, http.MethodPost, api+"/v1/instances", stubborn, http.StatusConflict)
	waitRunning(t, api, "stubborn")
	call(t, http.MethodPatch, api+"/v1/instances/stubborn", map[string]any{"slaves": -1}, http.StatusBadRequest)
	call(t, http.MethodPatch, api+"/v1/instances/stubborn", map[string]any{"masters": 2}, http.StatusBadRequest)
	call(t, http.MethodPatch, api+"/v1/instances/stubborn", map[string]any{"spec": map[string]any{"mem": 0.0001, "cpu": "lots"}}, http.StatusBadRequest)
	if inst, _ := get(t, api, "stubborn"); inst.Generation != 1 || inst.Slaves != 1 {
		t.Fatalf("refused patches changed the instance: %s (generation %d)", describe(inst), inst.Generation)
	}

	call(t, http.MethodDelete, api+"/v1/instances/stubborn", nil, http.StatusAccepted)
	inst, _ := get(t, api, "stubborn")
	if inst == nil || inst.Status != stateful.StatusDeleting {
		t.Fatalf("right after DELETE the instance is %v, want DELETING", inst)
	}
	call(t, http.MethodPatch, api+"/v1/instances/stubborn", map[string]any{"slaves": 2}, http.StatusConflict)
	call(t, http.MethodPost, api+"/v1/instances", stubborn, http.StatusConflict)
	call(t, http.MethodDelete, api+"/v1/instances/stubborn", nil, http.StatusAccepted)
	eventually(t, "stubborn gone", func() (bool, string) {
		_, code := get(t, api, "stubborn")
		return code == http.StatusNotFound, fmt.Sprint(code)
	})
	// The name is free again.
	call(t, http.MethodPost, api+"/v1/instances", createBody("stubborn", stateful.TypeSingle, 0, 0), http.StatusAccepted)
	waitRunning(t, api, "stubborn")
}

// TestRollingSpecChange changes an MS instance's spec: the tasks are
// relaunched with the new spec one at a time (never two down at once),
// slaves first, and the master keeps its role.
func TestRollingSpecChange(t *testing.T) {
	cluster := startCluster(t, 3)
	s := runScheduler(t, testConfig(t, cluster.MasterURL(), t.TempDir()), testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("roll", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	before := waitRunning(t, s.api, "roll")

	call(t, http.MethodPatch, s.api+"/v1/instances/roll", map[string]any{"spec": map[string]any{"env": map[string]string{"VERSION": "2"}}}, http.StatusAccepted)
	maxDown := 0
	eventually(t, "every task relaunched with generation 2", func() (bool, string) {
		inst, _ := get(t, s.api, "roll")
		down, done := 0, 0
		for _, task := range inst.Tasks {
			if task.State != stateful.TaskRunning || task.Relaunch {
				down++
			}
			if task.Generation == inst.Generation && task.State == stateful.TaskRunning && task.Healthy {
				done++
			}
		}
		maxDown = max(maxDown, down)
		return inst.Generation == 2 && done == 3 && inst.Status == stateful.StatusRunning, describe(inst)
	})
	if maxDown > 1 {
		t.Errorf("%d tasks were down at once during the rolling change", maxDown)
	}
	after, _ := get(t, s.api, "roll")
	if after.Spec.Env["VERSION"] != "2" {
		t.Errorf("spec not changed: %+v", after.Spec)
	}
	for i, task := range after.Tasks {
		if task.Attempt != before.Tasks[i].Attempt+1 || task.Role != before.Tasks[i].Role {
			t.Errorf("%s: attempt %d role %s, before attempt %d role %s", task.Name, task.Attempt, task.Role, before.Tasks[i].Attempt, before.Tasks[i].Role)
		}
	}
}

// TestEmbeddedDefaults runs the framework the way DESIGN §7 promises with
// no setup: --master=local (an embedded localmesos) and embedded etcd.
func TestEmbeddedDefaults(t *testing.T) {
	cfg := testConfig(t, "local", t.TempDir())
	cfg.LocalAgents = 2
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("local", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	waitRunning(t, s.api, "local")
	call(t, http.MethodDelete, s.api+"/v1/instances/local", nil, http.StatusAccepted)
	eventually(t, "local gone", func() (bool, string) {
		_, code := get(t, s.api, "local")
		return code == http.StatusNotFound, fmt.Sprint(code)
	})
	if err := s.stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}

// TestServedExecutor has agents fetch the executor binary from the
// scheduler over HTTP, as on a real cluster.
func TestServedExecutor(t *testing.T) {
	cluster := startCluster(t, 1)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	cfg.ExecutorMode = "serve"
	cfg.ExecutorHTTP = freeAddr(t)
	cfg.Advertise = cfg.ExecutorHTTP
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("fetched", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	waitRunning(t, s.api, "fetched")
	sandboxes, _ := filepath.Glob(filepath.Join(cluster.WorkDir(), "*", "slaves", "*", "frameworks", "*", "executors", "fetched-0.1", "runs", "latest", "framework.test"))
	if len(sandboxes) != 1 {
		t.Errorf("the executor binary was not fetched into the sandbox: %v", sandboxes)
	}
}
