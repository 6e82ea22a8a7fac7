package framework_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/localmesos"
)

// reservedResource is one reserved resource as the master's
// /master/slaves shows it (reserved_resources_full).
type reservedResource struct {
	Agent       string
	Name        string
	Role        string
	ResourceID  string // the stateful.resource_id label
	Framework   string // the stateful.framework label
	Persistence string // the volume's persistence ID, for a volume
}

// masterReservations lists every dynamically reserved resource the master
// knows, by agent.
func masterReservations(t *testing.T, masterURL string) []reservedResource {
	t.Helper()
	code, b, err := do(http.MethodGet, masterURL+"/master/slaves", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /master/slaves: %d %v", code, err)
	}
	type label struct{ Key, Value string }
	var state struct {
		Slaves []struct {
			ID       string `json:"id"`
			Reserved map[string][]struct {
				Name        string `json:"name"`
				Role        string `json:"role"`
				Reservation *struct {
					Labels struct {
						Labels []label `json:"labels"`
					} `json:"labels"`
				} `json:"reservation"`
				Disk struct {
					Persistence struct {
						ID string `json:"id"`
					} `json:"persistence"`
				} `json:"disk"`
			} `json:"reserved_resources_full"`
		} `json:"slaves"`
	}
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatalf("decode /master/slaves: %v", err)
	}
	var out []reservedResource
	for _, s := range state.Slaves {
		for _, rs := range s.Reserved {
			for _, r := range rs {
				if r.Reservation == nil {
					continue // static
				}
				rr := reservedResource{Agent: s.ID, Name: r.Name, Role: r.Role, Persistence: r.Disk.Persistence.ID}
				for _, l := range r.Reservation.Labels.Labels {
					switch l.Key {
					case "stateful.resource_id":
						rr.ResourceID = l.Value
					case "stateful.framework":
						rr.Framework = l.Value
					}
				}
				out = append(out, rr)
			}
		}
	}
	return out
}

// volumesOn lists the persistence IDs the master shows, sorted.
func volumesOn(rs []reservedResource) []string {
	var out []string
	for _, r := range rs {
		if r.Persistence != "" {
			out = append(out, r.Agent+"/"+r.Persistence)
		}
	}
	sort.Strings(out)
	return out
}

// volumeDir is where the agent keeps a persistent volume of role.
func volumeDir(t *testing.T, c *localmesos.Cluster, role, persistenceID string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(c.WorkDir(), "agent-*", "volumes", "roles", role, persistenceID))
	if len(m) != 1 {
		t.Fatalf("volume %s of role %s: found %v", persistenceID, role, m)
	}
	return m[0]
}

// TestReservationLifecycle: each ordinal's first launch reserves its
// resources and creates its volume; a relaunch reuses both (same agent,
// same data); delete releases everything, and a new instance of the same
// name starts empty.
func TestReservationLifecycle(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	s := runScheduler(t, cfg, testworkload.New())
	role := "e2e" // derived from the name

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("kept", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	inst := waitRunning(t, s.api, "kept")
	first := map[int]stateful.Reservation{}
	for _, task := range inst.Tasks {
		r := task.Reservation
		if r == nil || r.PersistenceID == "" || r.AgentID != task.AgentID || r.Role != role || r.DiskMB != 16 || r.ContainerPath == "" || !r.Confirmed {
			t.Fatalf("%s: GET shows reservation %+v on agent %s", task.Name, r, task.AgentID)
		}
		first[task.Ordinal] = *r
	}
	reserved := masterReservations(t, cluster.MasterURL())
	vols := volumesOn(reserved)
	if len(vols) != 2 {
		t.Fatalf("the master shows volumes %v, want one per ordinal: %+v", vols, reserved)
	}
	for _, r := range reserved {
		if r.Role != role || r.Framework != "e2e" || r.ResourceID == "" {
			t.Errorf("reserved resource %+v: want role %s with the framework's labels", r, role)
		}
	}

	// Data written to ordinal 1's volume survives the loss of its task.
	slave := inst.Tasks[1]
	dir := volumeDir(t, cluster, role, slave.Reservation.PersistenceID)
	// The task works in its volume (the process runtime's working directory).
	if cwd := workloadDir(t, slave.TaskID); cwd != dir {
		t.Errorf("%s works in %q, want its volume %q", slave.Name, cwd, dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	killExecutor(t, cluster, slave)
	eventually(t, "kept-1 relaunched", func() (bool, string) {
		inst, _ := get(t, s.api, "kept")
		tk := inst.Tasks[1]
		return tk.Attempt > slave.Attempt && tk.State == stateful.TaskRunning, describe(inst)
	})
	inst, _ = get(t, s.api, "kept")
	again := inst.Tasks[1]
	if *again.Reservation != first[1] || again.AgentID != slave.AgentID {
		t.Errorf("relaunch of kept-1: reservation %+v on %s, want %+v on %s", again.Reservation, again.AgentID, first[1], slave.AgentID)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "marker")); err != nil || string(b) != "kept" {
		t.Errorf("the volume lost its data across the relaunch: %q %v", b, err)
	}
	if now := volumesOn(masterReservations(t, cluster.MasterURL())); fmt.Sprint(now) != fmt.Sprint(vols) {
		t.Errorf("volumes after the relaunch %v, want the same %v", now, vols)
	}

	call(t, http.MethodDelete, s.api+"/v1/instances/kept", nil, http.StatusAccepted)
	eventually(t, "kept gone", func() (bool, string) {
		_, code := get(t, s.api, "kept")
		return code == http.StatusNotFound, fmt.Sprint("status ", code)
	})
	if left := masterReservations(t, cluster.MasterURL()); len(left) != 0 {
		t.Errorf("after the delete the master still holds %+v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the volume directory %s is still there: %v", dir, err)
	}

	// The same name again starts empty, on new volumes.
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("kept", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	inst = waitRunning(t, s.api, "kept")
	for _, task := range inst.Tasks {
		if task.Reservation == nil || task.Reservation.PersistenceID == first[task.Ordinal].PersistenceID {
			t.Errorf("%s after re-create: reservation %+v, want a new one", task.Name, task.Reservation)
			continue
		}
		d := volumeDir(t, cluster, role, task.Reservation.PersistenceID)
		if _, err := os.Stat(filepath.Join(d, "marker")); !os.IsNotExist(err) {
			t.Errorf("%s: the new volume holds the old data", task.Name)
		}
	}
	if n := strings.Count(fmt.Sprint(volumesOn(masterReservations(t, cluster.MasterURL()))), "/"); n != 2 {
		t.Errorf("after re-create the master shows %d volumes, want 2", n)
	}
}

// hasReservation reports whether the master still holds any resource of
// the reservation.
func hasReservation(rs []reservedResource, id string) bool {
	for _, r := range rs {
		if r.ResourceID == id {
			return true
		}
	}
	return false
}

// TestReplace replaces a slave and then the master of an MS instance:
// each replaced ordinal runs again on a new reservation and volume, its
// old ones are released, and replacing the master fails over first.
func TestReplace(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	s := runScheduler(t, cfg, testworkload.New())

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("swap", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	inst := waitRunning(t, s.api, "swap")

	replace := func(ordinal int) {
		t.Helper()
		before := inst.Tasks[ordinal]
		old := *before.Reservation
		call(t, http.MethodPost, fmt.Sprintf("%s/v1/instances/swap/tasks/%d/replace", s.api, ordinal), nil, http.StatusAccepted)
		eventually(t, fmt.Sprintf("swap-%d replaced", ordinal), func() (bool, string) {
			inst, _ = get(t, s.api, "swap")
			tk := inst.Tasks[ordinal]
			done := inst.Status == stateful.StatusRunning && tk.Attempt > before.Attempt && tk.Reservation != nil &&
				tk.Reservation.ResourceID != old.ResourceID && !tk.Replace &&
				!hasReservation(masterReservations(t, cluster.MasterURL()), old.ResourceID)
			return done, fmt.Sprintf("%s; ordinal %d: attempt %d (before %d), reservation %+v (old %s), replace %v, old still held %v", describe(inst), ordinal, tk.Attempt, before.Attempt, tk.Reservation, old.ResourceID, tk.Replace, hasReservation(masterReservations(t, cluster.MasterURL()), old.ResourceID))
		})
		if m, _ := filepath.Glob(filepath.Join(cluster.WorkDir(), "agent-*", "volumes", "roles", "e2e", old.PersistenceID)); len(m) != 0 {
			t.Errorf("the replaced volume %s is still on disk: %v", old.PersistenceID, m)
		}
	}

	replace(1)
	if inst.MasterOrdinal != 0 {
		t.Errorf("replacing the slave moved the master to %d", inst.MasterOrdinal)
	}
	replace(0)
	if inst.MasterOrdinal != 1 || inst.Tasks[0].Role != stateful.RoleSlave {
		t.Errorf("replacing the master: master ordinal %d, ordinal 0 is %s; want a failover to 1", inst.MasterOrdinal, inst.Tasks[0].Role)
	}
	if n := len(volumesOn(masterReservations(t, cluster.MasterURL()))); n != 2 {
		t.Errorf("after two replaces the master shows %d volumes, want 2", n)
	}
}

// TestReplaceBadInput: every bad replace or uninstall request is a 4xx
// JSON error and changes nothing.
func TestReplaceBadInput(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("firm", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	before := waitRunning(t, s.api, "firm")

	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{http.MethodPost, "/v1/instances/firm/tasks/abc/replace", nil, http.StatusBadRequest},
		{http.MethodPost, "/v1/instances/firm/tasks/-1/replace", nil, http.StatusBadRequest},
		{http.MethodPost, "/v1/instances/firm/tasks/007/replace", nil, http.StatusBadRequest},
		{http.MethodPost, "/v1/instances/firm/tasks/10000/replace", nil, http.StatusBadRequest},
		{http.MethodPost, "/v1/instances/Firm/tasks/0/replace", nil, http.StatusBadRequest},
		{http.MethodPost, "/v1/instances/firm/tasks/0/replace", map[string]any{"force": true}, http.StatusBadRequest},
		{http.MethodPost, "/v1/instances/firm/tasks/1/replace", nil, http.StatusNotFound},
		{http.MethodPost, "/v1/instances/nope/tasks/0/replace", nil, http.StatusNotFound},
		{http.MethodGet, "/v1/instances/firm/tasks/0/replace", nil, http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/uninstall", map[string]any{"all": true}, http.StatusBadRequest},
		{http.MethodDelete, "/v1/uninstall", nil, http.StatusMethodNotAllowed},
	} {
		code, body, err := do(tc.method, s.api+tc.path, tc.body)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		if code != tc.want || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tc.method, tc.path, code, body, tc.want)
		}
	}
	after, _ := get(t, s.api, "firm")
	if a, b := after.Tasks[0], before.Tasks[0]; a.Attempt != b.Attempt || a.Replace || *a.Reservation != *b.Reservation || after.Status != stateful.StatusRunning {
		t.Errorf("bad requests changed the instance: before %+v, after %+v", b, a)
	}
}

// TestAutoReplaceAfterAgentLoss: a slave whose agent is removed waits for
// its reservation for --replace-after, then runs elsewhere on a new one.
func TestAutoReplaceAfterAgentLoss(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	cfg.Creator.ReplaceAfter = 2 * time.Second
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("lost", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	inst := waitRunning(t, s.api, "lost")
	slave := inst.Tasks[1]
	if err := cluster.RemoveAgent(slave.AgentID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "lost-1 replaced on another agent", func() (bool, string) {
		inst, _ = get(t, s.api, "lost")
		tk := inst.Tasks[1]
		return inst.Status == stateful.StatusRunning && tk.AgentID != slave.AgentID && tk.Reservation != nil &&
			tk.Reservation.AgentID == tk.AgentID && tk.Reservation.ResourceID != slave.Reservation.ResourceID, describe(inst)
	})
}

// TestUninstall deletes every instance with its reservations and volumes,
// tears the framework down and stops the scheduler cleanly.
func TestUninstall(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("one", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("two", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	waitRunning(t, s.api, "one")
	waitRunning(t, s.api, "two")
	if n := len(volumesOn(masterReservations(t, cluster.MasterURL()))); n != 3 {
		t.Fatalf("%d volumes before the uninstall, want 3", n)
	}

	call(t, http.MethodPost, s.api+"/v1/uninstall", nil, http.StatusAccepted)
	select {
	case <-s.stopped:
		if s.err != nil {
			t.Errorf("after the uninstall Run returned %v, want nil", s.err)
		}
	case <-time.After(stepTimeout):
		t.Fatal("the scheduler still runs a minute after the uninstall")
	}
	if left := masterReservations(t, cluster.MasterURL()); len(left) != 0 {
		t.Errorf("after the uninstall the master holds %+v", left)
	}
	_, b, err := do(http.MethodGet, cluster.MasterURL()+"/master/state", nil)
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Frameworks []struct {
			ID string `json:"id"`
		} `json:"frameworks"`
		Completed []struct {
			ID string `json:"id"`
		} `json:"completed_frameworks"`
	}
	if err := json.Unmarshal(b, &state); err != nil || len(state.Frameworks) != 0 || len(state.Completed) != 1 {
		t.Errorf("after the uninstall the master has frameworks %+v, completed %+v (%v)", state.Frameworks, state.Completed, err)
	}
}

// TestScaleDownReleases: the reservations and volumes of ordinals a
// scale-down removes are released, though nothing else is queued.
func TestScaleDownReleases(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("shrink", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	inst := waitRunning(t, s.api, "shrink")
	kept := inst.Tasks[0].Reservation.ResourceID
	call(t, http.MethodPatch, s.api+"/v1/instances/shrink", map[string]any{"slaves": 0}, http.StatusAccepted)
	eventually(t, "only shrink-0's reservation left", func() (bool, string) {
		rs := masterReservations(t, cluster.MasterURL())
		for _, r := range rs {
			if r.ResourceID != kept {
				return false, fmt.Sprintf("%+v", rs)
			}
		}
		return len(rs) > 0, fmt.Sprintf("%+v", rs)
	})
}

// workloadDir is the working directory of the workload process of a task
// attempt: the child of its executor (redis-server overwrites its own
// environment with its process title, so it cannot be found by that).
func workloadDir(t *testing.T, taskID string) string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !strings.Contains("\x00"+string(env), "\x00MESOS_EXECUTOR_ID="+taskID+"\x00") {
			continue
		}
		// Its other children (the process runtime's watchdog) work in
		// the sandbox, where the executor does.
		own, _ := os.Readlink(filepath.Join(d, "cwd"))
		kids, _ := filepath.Glob(filepath.Join(d, "task", "*", "children"))
		for _, k := range kids {
			b, _ := os.ReadFile(k)
			for _, pid := range strings.Fields(string(b)) {
				if cwd, err := os.Readlink(filepath.Join("/proc", pid, "cwd")); err == nil && cwd != own {
					return cwd
				}
			}
		}
	}
	t.Fatalf("no workload process of %s outside its sandbox", taskID)
	return ""
}
