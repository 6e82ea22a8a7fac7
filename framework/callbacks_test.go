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
//     healthy (SlaveRunning retried after an error; it Execs in the slave);
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
	calls := w.Calls()
	checkCalls(t, calls, []string{
		"Start: err", "Start",
		"StartMaster cb-0#1: panic", "StartMaster cb-0#1", "StartSlave cb-1#1",
		"Config cb-0#1", "Config cb-1#1",
		"MasterRunning cb-0#1",
		"SlaveRunning cb-1#1: err", "SlaveRunning cb-1#1",
	})
	if got := succeeded(calls, "SlaveRunning", "cb-1"); !strings.HasPrefix(got.Detail, "exit 0:") {
		t.Errorf("SlaveRunning's Exec in the slave: %+v", got)
	}
	eventually(t, "stats of cb-0 in GET", func() (bool, string) {
		inst, _ := get(t, s.api, "cb")
		return inst.Tasks[0].Stats["reported_by"] == "cb-0", fmt.Sprint(inst.Tasks[0].Stats)
	})

	// The slave's executor dies: SlaveLost, then a new attempt.
	slave := inst.Tasks[1]
	killExecutor(t, cluster, slave)
	eventually(t, "cb-1 relaunched", func() (bool, string) {
		inst, _ := get(t, s.api, "cb")
		t1 := inst.Tasks[1]
		return inst.Status == stateful.StatusRunning && t1.Attempt == 2 && t1.State == stateful.TaskRunning, describe(inst)
	})
	checkCalls(t, w.Calls()[len(calls):], []string{
		"SlaveLost cb-1#1", "StartSlave cb-1#1", "Config cb-1#2", "SlaveRunning cb-1#2",
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
	checkCalls(t, w.Calls()[len(calls):], []string{
		"MasterLost cb-0#1", "StartSlave cb-0#1", "Config cb-0#2", "SlaveRunning cb-0#2",
	})
	for _, c := range w.Calls() {
		if c.Callback == "Start" && c.Err == "" && c.Instance == "cb" && c != w.Calls()[1] {
			t.Errorf("Start called again: %+v", c)
		}
	}
}

// checkCalls checks that calls, restricted to the instance "cb" and
// summarised as "<callback> <task>#<attempt>[: err|panic]", are exactly
// want.
func checkCalls(t *testing.T, calls []testworkload.Call, want []string) {
	t.Helper()
	var got []string
	for _, c := range calls {
		if c.Instance != "cb" {
			continue
		}
		s := c.Callback
		if c.Task != "" {
			attempt := c.Attempt
			if c.Callback == "Config" {
				// Config sees the attempt being launched.
				s += fmt.Sprintf(" %s#%d", c.Task, attempt)
			} else {
				s += fmt.Sprintf(" %s#%d", c.Task, max(attempt, 1))
			}
		}
		switch c.Err {
		case "":
		case "panic":
			s += ": panic"
		default:
			s += ": err"
		}
		got = append(got, s)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("callbacks:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
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
