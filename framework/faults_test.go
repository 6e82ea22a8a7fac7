package framework_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
)

// TestAgentLoss removes the agent that runs an MS instance's master (as a
// host failure would): once Mesos declares it unreachable, MasterLost
// promotes a slave, every task that ran there is relaunched on another
// agent, and the instance is RUNNING again, spread over the agents left.
func TestAgentLoss(t *testing.T) {
	cluster := startCluster(t, 4)
	w := testworkload.New()
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	// Spread over the agents left is checked: a task waiting for a
	// sibling-free agent on a loaded machine must not share one instead.
	cfg.Offers.Policy.CoLocateAfter = time.Hour
	s := runScheduler(t, cfg, w)

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("ha", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("solo", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	before := waitRunning(t, s.api, "ha")
	soloBefore := waitRunning(t, s.api, "solo")
	lost := before.Tasks[before.MasterOrdinal].AgentID
	if err := cluster.RemoveAgent(lost); err != nil {
		t.Fatal(err)
	}

	eventually(t, "ha failed over and complete again", func() (bool, string) {
		inst, _ := get(t, s.api, "ha")
		if inst.Status != stateful.StatusRunning || inst.MasterOrdinal == before.MasterOrdinal {
			return false, describe(inst)
		}
		for _, task := range inst.Tasks {
			if task.AgentID == lost || task.State != stateful.TaskRunning {
				return false, describe(inst)
			}
		}
		return true, ""
	})
	after, _ := get(t, s.api, "ha")
	agents := map[string]bool{}
	for _, task := range after.Tasks {
		if agents[task.AgentID] {
			t.Errorf("two tasks of ha on agent %s: %s", task.AgentID, describe(after))
		}
		agents[task.AgentID] = true
	}
	old := after.Tasks[before.MasterOrdinal]
	if old.Role != stateful.RoleSlave || old.Attempt != 2 {
		t.Errorf("the lost master should be back as a slave in its second attempt: %+v", old)
	}
	if !called(w.Calls(), "MasterLost", before.Tasks[before.MasterOrdinal].Name) {
		t.Errorf("MasterLost was not called for %s", before.Tasks[before.MasterOrdinal].Name)
	}
	if soloBefore.Tasks[0].AgentID == lost {
		waitRunning(t, s.api, "solo")
		if !called(w.Calls(), "MasterLost", "solo-0") {
			t.Errorf("MasterLost was not called for solo-0, which ran on the lost agent")
		}
	}
	for _, name := range []string{"ha", "solo"} {
		inst, _ := get(t, s.api, name)
		if live := liveMasterTasks(t, cluster.MasterURL(), name); countRunning(live) != inst.TaskCount() {
			t.Errorf("the master runs %v for %s, want %d running", live, name, inst.TaskCount())
		}
	}
}

// TestMasterFailover fails the Mesos master over while the scheduler runs:
// the scheduler re-subscribes with its framework ID and reconciles, and the
// tasks stay the same attempts, RUNNING.
func TestMasterFailover(t *testing.T) {
	cluster := startCluster(t, 3)
	w := testworkload.New()
	s := runScheduler(t, testConfig(t, cluster.MasterURL(), t.TempDir()), w)

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("steady", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	before := waitRunning(t, s.api, "steady")
	fid := frameworkID(t, cluster.MasterURL())

	cluster.FailoverMaster()
	eventually(t, "re-subscribed and the tasks reconciled", func() (bool, string) {
		live := liveMasterTasks(t, cluster.MasterURL(), "steady")
		code, body, _ := do(http.MethodGet, s.api+"/v1/health", nil)
		return code == http.StatusOK && countRunning(live) == 3, fmt.Sprintf("health %d %s; master has %v", code, body, live)
	})
	if got := frameworkID(t, cluster.MasterURL()); got != fid {
		t.Errorf("framework ID changed from %s to %s", fid, got)
	}
	after := waitRunning(t, s.api, "steady")
	for i, task := range after.Tasks {
		if task.TaskID != before.Tasks[i].TaskID {
			t.Errorf("%s was relaunched (%s → %s); a master failover must not cost a task", task.Name, before.Tasks[i].TaskID, task.TaskID)
		}
	}
	for _, c := range w.Calls() {
		if c.Callback == "MasterLost" || c.Callback == "SlaveLost" {
			t.Errorf("unexpected %+v", c)
		}
	}

	// Without a master, the health check says why.
	cluster.Close()
	eventually(t, "health 503 naming mesos", func() (bool, string) {
		code, body, err := do(http.MethodGet, s.api+"/v1/health", nil)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusServiceUnavailable && strings.Contains(string(body), `"component":"mesos"`), fmt.Sprintf("%d %s", code, body)
	})
}

func called(calls []testworkload.Call, callback, task string) bool {
	for _, c := range calls {
		if c.Callback == callback && c.Task == task && c.Err == "" {
			return true
		}
	}
	return false
}

func countRunning(tasks []masterTask) int {
	n := 0
	for _, t := range tasks {
		if t.State == string(stateful.TaskRunning) {
			n++
		}
	}
	return n
}
