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
