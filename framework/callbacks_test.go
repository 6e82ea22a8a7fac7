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

// TestEveryCallbackAtItsMoment follows one MS instance through creation,
// the loss of a slave and the loss of its master, with callbacks that fail
// and panic on the way, and checks each callback of stateful.Workload:
//
//   - Start: once per instance, before any task is prepared; retried after
//     an error, never repeated after success;
//   - StartMaster/StartSlave: once per attempt, before the attempt's Config
//     (retried after a panic);
//   - Config: once per launch, after StartMaster/StartSlave;
//   - MasterRunning/SlaveRunning: once per attempt, after it is RUNNING and
//     healthy (SlaveRunning retried after an error; it Execs in the slave,
//     and refuses while the master is not RUNNING yet: a slave may come up
//     first, Mesos orders nothing between agents);
//   - SlaveLost: when a slave's attempt ends, then the slave is relaunched;
//   - MasterLost: when the master's attempt ends: the default failover
//     promotes the slave, and the old master comes back as a slave.
//
// A scheduler whose callbacks fail or panic keeps running throughout.
func TestEveryCallbackAtItsMoment(t *testing.T) {
	cluster := startCluster(t, 3)
	w := testworkload.New()
	w.Fail("Start", 1)
	w.Fail("StartMaster", -1) // a panic
	w.Fail("SlaveRunning", 1)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	cfg.ExecutorStatsInterval = 200 * time.Millisecond
	s := runScheduler(t, cfg, w)

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("cb", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	inst := waitRunning(t, s.api, "cb")
	waitCall(t, w, "MasterRunning", "cb-0", 1)
	waitCall(t, w, "SlaveRunning", "cb-1", 1)
	calls := w.Calls()
	checkCalls(t, calls, map[string][]string{
		"cb":   {"Start: err", "Start"},
		"cb-0": {"StartMaster#0: panic", "StartMaster#0", "Config#1", "MasterRunning#1"},
		"cb-1": {"StartSlave#0", "Config#1", "SlaveRunning#1: err", "SlaveRunning#1"},
	})
	if got := succeeded(calls, "SlaveRunning", "cb-1"); !strings.HasPrefix(got.Detail, "exit 0:") {
		t.Errorf("SlaveRunning's Exec in the slave: %+v", got)
	}
	eventually(t, "stats of cb-0 in GET", func() (bool, string) {
		inst, _ := get(t, s.api, "cb")
		return inst.Tasks[0].Stats["reported_by"] == "cb-0", fmt.Sprint(inst.Tasks[0].Stats)
	})

	// The slave's executor dies: SlaveLost, then a new attempt.
	killExecutor(t, cluster, inst.Tasks[1])
	eventually(t, "cb-1 relaunched", func() (bool, string) {
		inst, _ := get(t, s.api, "cb")
		t1 := inst.Tasks[1]
		return inst.Status == stateful.StatusRunning && t1.Attempt == 2 && t1.State == stateful.TaskRunning, describe(inst)
	})
	waitCall(t, w, "SlaveRunning", "cb-1", 2)
	checkCalls(t, w.Calls()[len(calls):], map[string][]string{
		"cb-1": {"SlaveLost#1", "StartSlave#1", "Config#2", "SlaveRunning#2"},
	})
	calls = w.Calls()

	// The master's executor dies: MasterLost promotes cb-1, and cb-0
	// comes back as its slave.
	inst, _ = get(t, s.api, "cb")
	killExecutor(t, cluster, inst.Tasks[0])
	eventually(t, "failover to cb-1", func() (bool, string) {
		inst, _ := get(t, s.api, "cb")
		ok := inst.Status == stateful.StatusRunning && inst.MasterOrdinal == 1 &&
			inst.Tasks[0].Role == stateful.RoleSlave && inst.Tasks[1].Role == stateful.RoleMaster &&
			inst.Tasks[0].Attempt == 2 && inst.Tasks[0].State == stateful.TaskRunning
		return ok, describe(inst)
	})
	waitCall(t, w, "SlaveRunning", "cb-0", 2)
	checkCalls(t, w.Calls()[len(calls):], map[string][]string{
		"cb-0": {"MasterLost#1", "StartSlave#1", "Config#2", "SlaveRunning#2"},
	})
}

// checkCalls checks the callbacks of instance "cb": for the instance and
// each task, the sequence of calls summarised as
// "<callback>#<attempt>[: err|panic]" (the attempt the task had when
// called; Config sees the attempt being launched) must be exactly want's.
// The instance's successful Start must come before any task's callback.
// SlaveRunning's refusals while the master is not running are left out:
// how many there are depends only on which task Mesos starts first.
func checkCalls(t *testing.T, calls []testworkload.Call, want map[string][]string) {
	t.Helper()
	got := map[string][]string{}
	started := -1
	for i, c := range calls {
		if c.Instance != "cb" {
			continue
		}
		if c.Callback == "SlaveRunning" && c.Err == testworkload.ErrMasterNotRunning.Error() {
			continue
		}
		key, s := c.Instance, c.Callback
		if c.Task != "" {
			key = c.Task
			s += fmt.Sprintf("#%d", c.Attempt)
			if started < 0 && want["cb"] != nil {
				t.Errorf("%s of %s called before Start succeeded", c.Callback, c.Task)
			}
		} else if c.Callback == "Start" && c.Err == "" {
			started = i
		}
		switch c.Err {
		case "":
		case "panic":
			s += ": panic"
		default:
			s += ": err"
		}
		got[key] = append(got[key], s)
	}
	for key := range got {
		if _, ok := want[key]; !ok {
			want[key] = nil
		}
	}
	for key, w := range want {
		if strings.Join(got[key], ", ") != strings.Join(w, ", ") {
			t.Errorf("callbacks of %s:\n  %s\nwant:\n  %s", key, strings.Join(got[key], ", "), strings.Join(w, ", "))
		}
	}
}

// waitCall waits until callback has succeeded for the task's attempt.
func waitCall(t *testing.T, w *testworkload.Workload, callback, task string, attempt int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s of %s attempt %d", callback, task, attempt), func() (bool, string) {
		c := succeeded(w.Calls(), callback, task)
		return c.Attempt == attempt, fmt.Sprintf("last success %+v", c)
	})
}

// succeeded returns the last successful call of callback for task.
func succeeded(calls []testworkload.Call, callback, task string) testworkload.Call {
	var out testworkload.Call
	for _, c := range calls {
		if c.Callback == callback && c.Task == task && c.Err == "" {
			out = c
		}
	}
	return out
}
