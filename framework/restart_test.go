package framework_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
)

// restartSnapshot is what must not change across a scheduler restart.
type restartSnapshot struct {
	taskIDs []string
	pids    []string
}

func snapshotOf(t *testing.T, api, name string) restartSnapshot {
	t.Helper()
	inst, code := get(t, api, name)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d", name, code)
	}
	var s restartSnapshot
	for _, task := range inst.Tasks {
		s.taskIDs = append(s.taskIDs, task.TaskID)
	}
	sort.Strings(s.taskIDs)
	s.pids = processesOf(name)
	sort.Strings(s.pids)
	return s
}

// checkTakenBack waits until the master runs the instance's tasks again
// (its agents re-registered, with the very attempts of before) and the
// restarted scheduler shows the instance RUNNING, and checks that the
// scheduler took every task back: the same attempts, the same processes,
// nothing relaunched. It returns how long the wait took.
func checkTakenBack(t *testing.T, api, masterURL, name string, before restartSnapshot, since time.Time) time.Duration {
	t.Helper()
	eventually(t, "the master runs "+name+"'s tasks again", func() (bool, string) {
		var ids []string
		for _, mt := range liveMasterTasks(t, masterURL, name) {
			if mt.State == "TASK_RUNNING" {
				ids = append(ids, mt.ID)
			}
		}
		sort.Strings(ids)
		return slices.Equal(ids, before.taskIDs), fmt.Sprint("running ", ids, ", want ", before.taskIDs)
	})
	inst := waitRunning(t, api, name)
	took := time.Since(since)
	after := snapshotOf(t, api, name)
	if !slices.Equal(after.taskIDs, before.taskIDs) {
		t.Errorf("task IDs %v after the restart, want %v (relaunched)\n%s", after.taskIDs, before.taskIDs, describe(inst))
	}
	if !slices.Equal(after.pids, before.pids) {
		t.Errorf("processes %v after the restart, want %v", after.pids, before.pids)
	}
	return took
}

// TestRestartTakesTasksBack: a scheduler killed with SIGKILL and started
// again on the same data dir re-subscribes with its framework ID and takes
// every running task back: same task IDs and processes, 0 relaunches,
// RUNNING within 5 s of the restart (the README's promise).
func TestRestartTakesTasksBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	cluster := startCluster(t, 3)
	p := startSubprocess(t, cluster, t.TempDir())
	call(t, http.MethodPost, p.api+"/v1/instances", createBody("stay", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	waitRunning(t, p.api, "stay")
	before := snapshotOf(t, p.api, "stay")
	if len(before.pids) < 3 {
		t.Fatalf("found processes %v of stay, want at least one per task", before.pids)
	}

	p.crash()
	start := time.Now()
	p.start()
	took := checkTakenBack(t, p.api, cluster.MasterURL(), "stay", before, start)
	t.Logf("RUNNING again %v after the restart began", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("RUNNING again only %v after the restart, want within 5 s", took)
	}
}

// TestRestartEmbeddedKeepsTasks: with --master=local the embedded cluster
// goes down with the scheduler; its executors live on, and the next start
// on the same data dir recovers them, after a SIGKILL and after a stop
// told to keep tasks (--local-keep-tasks): 0 relaunches.
func TestRestartEmbeddedKeepsTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	checkTestPorts(t)
	dataDir := t.TempDir()
	masterAddr := freeAddr(t)
	_, port, _ := strings.Cut(masterAddr, ":")
	p := newSubprocess(t, dataDir,
		"--master=local", "--local-port="+port, "--local-agents=3", "--local-resources="+testResources,
		"--local-keep-tasks", "--etcd=embedded", "--name=keep",
	)
	t.Cleanup(func() {
		// Leave nothing running: this stop must not keep the tasks.
		p.stop()
		p.args = slices.DeleteFunc(p.args, func(a string) bool { return a == "--local-keep-tasks" })
		p.start()
		p.stop()
	})
	p.start()
	call(t, http.MethodPost, p.api+"/v1/instances", createBody("kept", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	waitRunning(t, p.api, "kept")
	before := snapshotOf(t, p.api, "kept")

	p.crash()
	start := time.Now()
	p.start()
	took := checkTakenBack(t, p.api, "http://"+masterAddr, "kept", before, start)
	t.Logf("after SIGKILL: RUNNING again %v after the restart began", took.Round(time.Millisecond))

	p.stop()
	start = time.Now()
	p.start()
	took = checkTakenBack(t, p.api, "http://"+masterAddr, "kept", before, start)
	t.Logf("after a stop keeping tasks: RUNNING again %v after the restart began", took.Round(time.Millisecond))
}
