package localmesos

// Storage operations as Mesos 1.12 does them (shared/mesos-storage.md,
// "What a faithful emulation must show", points 1-10 that concern
// reservations and volumes), each against a real cluster over HTTP with
// real task processes.

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var dbCaps = []string{"MULTI_ROLE", "RESERVATION_REFINEMENT"}

// TestStorageReserveCreateLaunch: checklist points 1, 2, 6 and 8's
// happy path, the flow of reservations-volumes.jsonl. One ACCEPT reserves,
// creates a volume and launches a task on it; the task writes through
// <sandbox>/data into <agent work dir>/volumes/roles/db/vol-rv1; each
// operation with an id gets OPERATION_FINISHED (uuid, agent_id), re-sent
// until acknowledged. After the task ends only its agent offers the
// reservations (labels intact) and the volume as created, a second task
// reads the data, and DESTROY + UNRESERVE delete the data and return the
// resources to '*'.
func TestStorageReserveCreateLaunch(t *testing.T) {
	c := startCluster(t, storageConfig(t, 2))
	f := stSubscribe(t, c, "rv", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	cpus, mem, disk := reserved("cpus", 0.2, "db", "rec"), reserved("mem", 32, "db", "rec"), reserved("disk", 16, "db", "rec")
	vol := volume(16, "db", "rec", "vol-rv1", "data")
	f.accept(o, 1,
		opReserve("op-reserve-1", cpus, mem, disk),
		opCreate("op-create-1", vol),
		opLaunch(o, "writer", "echo persisted > data/f && test -s data/f && sleep 1", cpus, mem, vol))

	// Feedback in operation order, with uuid and agent_id, no message.
	res := f.awaitOperation("op-reserve-1")
	crt := f.awaitOperation("op-create-1")
	for _, st := range []map[string]any{res, crt} {
		if schedStr(st, "state") != "OPERATION_FINISHED" || schedStr(st, "uuid", "value") == "" || schedStr(st, "agent_id", "value") != agentID || st["message"] != nil {
			t.Errorf("operation status %s, want OPERATION_FINISHED with uuid and agent_id %s", jsonString(st), agentID)
		}
	}
	f.ackOperation(res)
	// Unacknowledged, the CREATE's status comes again with the same uuid.
	again := f.awaitOperation("op-create-1")
	if schedStr(again, "uuid", "value") != schedStr(crt, "uuid", "value") {
		t.Errorf("re-sent status has uuid %s, want %s", schedStr(again, "uuid", "value"), schedStr(crt, "uuid", "value"))
	}
	f.ackOperation(again)

	f.awaitUpdate("writer", "TASK_RUNNING")
	voldir := volumeDir(t, c, agentID, "db", "vol-rv1")
	link := filepath.Join(sandboxLatest(t, c, agentID, f.id, "writer"), "data")
	if target, err := os.Readlink(link); err != nil || target != voldir {
		t.Errorf("sandbox data: link to %q (%v), want a symlink to %s", target, err, voldir)
	}
	f.awaitUpdate("writer", "TASK_FINISHED")
	if got := readFile(t, filepath.Join(voldir, "f")); got != "persisted" {
		t.Errorf("volume holds %q, want persisted", got)
	}
	// Acknowledged: no further copy of either status.
	for _, fr := range f.s.drain(1500 * time.Millisecond) {
		if fr.typ() == "UPDATE_OPERATION_STATUS" {
			t.Errorf("operation status re-sent after its acknowledgement: %s", jsonString(fr.v))
		}
		f.s.backlog = append(f.s.backlog, fr)
	}

	// Checklist 2: the agent offers the reservations and the volume as
	// created; the unreserved amounts shrank by as much.
	re := f.awaitOffer("with vol-rv1", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-rv1")) })
	if got := schedStr(re, "agent_id", "value"); got != agentID {
		t.Errorf("volume offered by agent %s, want %s", got, agentID)
	}
	for _, r := range asList(re["resources"]) {
		if !isReserved(r.(map[string]any)) {
			continue
		}
		if got := jsonString(schedPath(r, "reservations")); got != `[{"labels":{"labels":[{"key":"owner","value":"rec"}]},"principal":"ops","role":"db","type":"DYNAMIC"}]` {
			t.Errorf("%s reservations %s", schedStr(r, "name"), got)
		}
		if schedPath(r, "role") != nil || schedStr(r, "allocation_info", "role") != "db" {
			t.Errorf("%s: role %v, allocation_info %v; want no role and allocation_info db", schedStr(r, "name"), schedPath(r, "role"), schedPath(r, "allocation_info"))
		}
		if schedStr(r, "name") == "disk" {
			if got := jsonString(schedPath(r, "disk")); got != `{"persistence":{"id":"vol-rv1","principal":"ops"},"volume":{"container_path":"data","mode":"RW"}}` {
				t.Errorf("volume offered as %s", got)
			}
		}
	}
	st := masterAgentState(t, c, agentID)
	if got := jsonString(schedPath(st, "reserved_resources", "db")); got != `{"cpus":0.2,"disk":16,"gpus":0,"mem":32}` {
		t.Errorf("reserved_resources.db %s", got)
	}
	if got := jsonString(st["unreserved_resources"]); got != `{"cpus":1.8,"disk":4080,"gpus":0,"mem":2016,"ports":"[33100-33199]"}` {
		t.Errorf("unreserved_resources %s", got)
	}

	// The data survived: a second task reads it on the offered resources.
	f.accept(re, 1, opLaunch(re, "reader", `test "$(cat data/f)" = persisted`, cpus, mem, vol))
	f.awaitUpdate("reader", "TASK_FINISHED")

	// DESTROY + UNRESERVE: the directory goes, the resources return to '*'.
	re = f.awaitOffer("with vol-rv1", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-rv1")) })
	f.accept(re, 1, opDestroy("op-destroy-1", vol), opUnreserve("op-unreserve-1", mem, cpus, disk))
	for _, id := range []string{"op-destroy-1", "op-unreserve-1"} {
		st := f.awaitOperation(id)
		if schedStr(st, "state") != "OPERATION_FINISHED" {
			t.Errorf("%s: %s", id, jsonString(st))
		}
		f.ackOperation(st)
	}
	if _, err := os.Stat(voldir); !os.IsNotExist(err) {
		t.Errorf("volume directory after DESTROY: %v, want it gone", err)
	}
	plain := f.awaitOffer("without reservations", func(o map[string]any) bool {
		return schedStr(o, "agent_id", "value") == agentID && !offerHas(o, isReserved)
	})
	if scalarOf(plain, "cpus", false) < 0.2 {
		t.Errorf("unreserved cpus %v after UNRESERVE", scalarOf(plain, "cpus", false))
	}
	if st := masterAgentState(t, c, agentID); jsonString(st["reserved_resources"]) != `{}` {
		t.Errorf("reserved_resources after UNRESERVE: %s", jsonString(st["reserved_resources"]))
	}
}

// silence unused imports while the file grows.
var _ = strings.Contains
var _ = url.Values{}
var _ = http.StatusOK
