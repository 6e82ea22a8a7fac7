package stateful

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// designExample is the instance document of DESIGN §6, a contract that
// scripts and the CLI read.
const designExample = `{"name": "cache1", "type": "MS", "masters": 1, "slaves": 2, "status": "RUNNING",
 "generation": 1, "spec": {"cpu": 0.5, "mem": 256, "disk": 512, "image": "redis:7"},
 "tasks": [{"ordinal": 0, "name": "cache1-0", "role": "master", "state": "TASK_RUNNING",
            "healthy": true, "task_id": "cache1-0.1", "agent_id": "...", "host": "127.0.0.2",
            "ports": {"redis": 31001}, "stats": {"role": "master"}, "message": ""}]}`

func TestInstanceJSONMatchesDesign(t *testing.T) {
	var inst Instance
	if err := json.Unmarshal([]byte(designExample), &inst); err != nil {
		t.Fatal(err)
	}
	want := Instance{
		Name: "cache1", Type: TypeMasterSlave, Masters: 1, Slaves: 2, Status: StatusRunning, Generation: 1,
		Spec: Spec{CPU: 0.5, Mem: 256, Disk: 512, Image: "redis:7"},
		Tasks: []*Task{{
			Ordinal: 0, Name: "cache1-0", Role: RoleMaster, State: TaskRunning, Healthy: true,
			TaskID: "cache1-0.1", AgentID: "...", Host: "127.0.0.2",
			Ports: map[string]int{"redis": 31001}, Stats: map[string]string{"role": "master"},
		}},
	}
	if !reflect.DeepEqual(inst, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", inst, want)
	}

	// Encoding gives back every field of the example with the same value
	// (more fields may be added: the document is a superset).
	out, err := json.Marshal(&inst)
	if err != nil {
		t.Fatal(err)
	}
	var got, example map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(designExample), &example); err != nil {
		t.Fatal(err)
	}
	assertSuperset(t, "", got, example)
}

func assertSuperset(t *testing.T, path string, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Fatalf("%s: got %T, want an object", path, got)
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				t.Fatalf("%s.%s missing from the encoded document", path, k)
			}
			assertSuperset(t, path+"."+k, gv, v)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			t.Fatalf("%s: got %v, want %v", path, got, want)
		}
		for i := range w {
			assertSuperset(t, path, g[i], w[i])
		}
	default:
		if got != want {
			t.Fatalf("%s = %v, want %v", path, got, want)
		}
	}
}

func TestInstanceJSONRoundTripAllFields(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	inst := validInstance()
	inst.Status, inst.Generation, inst.MasterOrdinal, inst.Message = StatusDegraded, 4, 2, "replacing cache1-0"
	inst.CreatedAt, inst.UpdatedAt = now, now.Add(time.Minute)
	inst.Tasks = inst.InitialTasks(now)
	task := inst.Tasks[1]
	task.State, task.Healthy, task.TaskID, task.Attempt = TaskRunning, true, "cache1-1.2", 2
	task.AgentID, task.Host, task.Ports, task.Stats = "agent-1", "127.0.0.3", map[string]int{"redis": 31002}, map[string]string{"replication_offset": "42"}
	task.Message, task.Reason, task.StickyAgentID, task.StickyHost, task.Unplaced = "ok", "REASON_X", "agent-1", "127.0.0.3", "mem"

	data, err := json.Marshal(inst)
	if err != nil {
		t.Fatal(err)
	}
	var back Instance
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, inst) {
		t.Fatalf("round trip changed the instance:\n%s\n%+v", data, back)
	}
}

func TestSpecJSONFieldNames(t *testing.T) {
	data, err := json.Marshal(validSpec())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cpu", "mem", "disk", "image", "command", "network", "ports", "env", "volume", "health"} {
		if _, ok := m[k]; !ok {
			t.Errorf("spec JSON lacks %q: %s", k, data)
		}
	}
	health := m["health"].(map[string]any)
	for _, k := range []string{"tcp", "interval_s", "grace_s", "timeout_s"} {
		if _, ok := health[k]; !ok {
			t.Errorf("health JSON lacks %q: %s", k, data)
		}
	}
}

func TestCloneSharesNothing(t *testing.T) {
	inst := validInstance()
	inst.Tasks = inst.InitialTasks(time.Now())
	inst.Tasks[0].Ports = map[string]int{"redis": 1}
	inst.Tasks[0].Stats = map[string]string{"a": "b"}
	c := inst.Clone()
	if !reflect.DeepEqual(c, inst) {
		t.Fatal("clone differs")
	}
	c.Spec.Ports[0] = "x"
	c.Spec.Env["REDIS_ARGS"] = "x"
	c.Spec.Health.TCP = "x"
	c.Tasks[0].Ports["redis"] = 2
	c.Tasks[0].Stats["a"] = "x"
	c.Tasks[1].State = TaskRunning
	if inst.Spec.Ports[0] != "redis" || inst.Spec.Env["REDIS_ARGS"] == "x" || inst.Spec.Health.TCP != "redis" ||
		inst.Tasks[0].Ports["redis"] != 1 || inst.Tasks[0].Stats["a"] != "b" || inst.Tasks[1].State != TaskQueued {
		t.Fatal("clone shares memory with the original")
	}
}
