package framework_test

import (
	"fmt"
	"net/http"
	"testing"

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
	s := runScheduler(t, testConfig(t, cluster.MasterURL(), t.TempDir()), w)

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
