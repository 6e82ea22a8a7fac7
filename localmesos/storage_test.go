package localmesos

// Storage operations as Mesos 1.12 does them (shared/mesos-storage.md,
// "What a faithful emulation must show", points 1-10 that concern
// reservations and volumes), each against a real cluster over HTTP with
// real task processes.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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

// stOpError waits for an operation's OPERATION_ERROR and checks its
// message and that it carries no uuid or agent_id.
func stOpError(t *testing.T, f *stFramework, id, message string) {
	t.Helper()
	st := f.awaitOperation(id)
	if schedStr(st, "state") != "OPERATION_ERROR" {
		t.Errorf("%s: state %s, want OPERATION_ERROR (%s)", id, schedStr(st, "state"), jsonString(st))
	}
	if got := schedStr(st, "message"); got != message {
		t.Errorf("%s: message\n%s\nwant\n%s", id, got, message)
	}
	if st["uuid"] != nil || st["agent_id"] != nil {
		t.Errorf("%s: OPERATION_ERROR with uuid or agent_id: %s", id, jsonString(st))
	}
}

// TestStorageInvalidWithID: checklist point 5. Every invalid operation
// with an id gets OPERATION_ERROR with Mesos' exact text (the agent
// suffix where Mesos adds it), no uuid and no agent_id, and changes
// nothing: at the end the agent holds only what the valid operations
// reserved.
func TestStorageInvalidWithID(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	f := stSubscribe(t, c, "errors", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	suffix := "; on agent " + agentID + " at slave(1)@" + c.Agents()[0].Address + " (" + c.Agents()[0].Hostname + ")"
	next := func() map[string]any { return f.awaitOffer("any", nil) }

	noPrincipal := reserved("cpus", 0.1, "db", "rec")
	delete(noPrincipal["reservations"].([]any)[0].(map[string]any), "principal")
	otherPrincipal := reserved("cpus", 0.1, "db", "rec")
	otherPrincipal["reservations"].([]any)[0].(map[string]any)["principal"] = "other"
	star := reserved("cpus", 0.1, "*", "rec")
	ro := volume(16, "db", "rec", "vol-ro", "data")
	ro["disk"].(map[string]any)["volume"].(map[string]any)["mode"] = "RO"
	badID := volume(16, "db", "rec", "a/b", "data")
	noVolume := volume(16, "db", "rec", "vol-novolume", "data")
	delete(noVolume["disk"].(map[string]any), "volume")
	volOther := volume(16, "db", "rec", "vol-other", "data")
	volOther["disk"].(map[string]any)["persistence"].(map[string]any)["principal"] = "other"
	withSource := opReserve("op-source", reserved("cpus", 0.1, "db", "rec"))
	withSource["reserve"].(map[string]any)["source"] = []any{unreserved("cpus", 0.1)}

	cases := []struct {
		name, id, message string
		ops               []map[string]any
	}{
		{"unreserve unreserved", "op-1", "Resource cpus(allocated: db):0.1 is not dynamically reserved" + suffix,
			[]map[string]any{opUnreserve("op-1", unreserved("cpus", 0.1))}},
		{"create on unreserved disk", "op-2", "Invalid resources: Invalid DiskInfo: Persistent volumes cannot be created from unreserved resources" + suffix,
			[]map[string]any{opCreate("op-2", map[string]any{"name": "disk", "type": "SCALAR", "scalar": map[string]any{"value": 16},
				"disk": map[string]any{"persistence": map[string]any{"id": "vol-unres", "principal": "ops"}, "volume": map[string]any{"container_path": "data", "mode": "RW"}}})}},
		{"reserve for another role", "op-3", "A reserve operation was attempted for a resource with role 'other', but the resource was allocated to role 'db'" + suffix,
			[]map[string]any{opReserve("op-3", reserved("cpus", 0.1, "other", "rec"))}},
		{"reserve '*'", "op-4", `Operation attempted with invalid resources: Resource 'cpus(allocated: db)(reservations: [(DYNAMIC,*,ops,{owner: rec})]):0.1' is invalid: Invalid reservation: role "*" cannot be reserved`,
			[]map[string]any{opReserve("op-4", star)}},
		{"reserve without principal", "op-5", "A reserve operation was attempted by principal 'ops', but there is a reserved resource in the request with no principal set" + suffix,
			[]map[string]any{opReserve("op-5", noPrincipal)}},
		{"reserve with another principal", "op-6", "A reserve operation was attempted by authenticated principal 'ops', which does not match a reserved resource in the request with principal 'other'" + suffix,
			[]map[string]any{opReserve("op-6", otherPrincipal)}},
		{"reserve with source", "op-source", "Operation attempted with invalid resources: Reservation updates are not yet implemented for the scheduler API.",
			[]map[string]any{withSource}},
		{"read-only volume", "op-7", "Not a persistent volume: Read-only persistent volume not supported" + suffix,
			[]map[string]any{opReserve("", reserved("disk", 16, "db", "rec")), opCreate("op-7", ro)}},
		{"bad persistence id", "op-8", "Invalid resources: Invalid DiskInfo: Invalid persistence ID for persistent volume: 'a/b' contains invalid characters" + suffix,
			[]map[string]any{opCreate("op-8", badID)}},
		{"volume without volume", "op-9", "Invalid resources: Invalid DiskInfo: Expecting 'volume' to be set for persistent volume" + suffix,
			[]map[string]any{opCreate("op-9", noVolume)}},
		{"volume of another principal", "op-10", "Create volume operation attempted by authenticated principal 'ops', which does not match a volume in the operation with principal 'other' set in 'disk.persistence'" + suffix,
			[]map[string]any{opCreate("op-10", volOther)}},
		{"destroy unknown volume", "op-11", "Persistent volumes not found" + suffix,
			[]map[string]any{opDestroy("op-11", volume(16, "db", "rec", "vol-nope", "data"))}},
		{"duplicate persistence id", "op-12", "Persistence ID 'vol-dup' is not unique" + suffix,
			[]map[string]any{opCreate("", volume(16, "db", "rec", "vol-dup", "data")), opReserve("", reserved("disk", 16, "db", "rec2")), opCreate("op-12", volume(16, "db", "rec2", "vol-dup", "data"))}},
		{"unreserve a volume", "op-13", "A dynamically reserved persistent volume disk(allocated: db)(reservations: [(DYNAMIC,db,ops,{owner: rec})])[vol-dup:data]:16 cannot be unreserved directly. Please destroy the persistent volume first then unreserve the resource" + suffix,
			[]map[string]any{opUnreserve("op-13", volume(16, "db", "rec", "vol-dup", "data"))}},
	}
	for _, tc := range cases {
		f.accept(o, 0, tc.ops...)
		stOpError(t, f, tc.id, tc.message)
		o = next()
	}
	// An operation naming an offer that is gone.
	f.mustPost(map[string]any{"type": "ACCEPT", "accept": map[string]any{
		"offer_ids":  []any{map[string]any{"value": "no-such-offer"}},
		"operations": []any{opReserve("op-14", reserved("cpus", 0.1, "db", "rec"))},
	}})
	stOpError(t, f, "op-14", "Operation attempted with invalid offers: Offer no-such-offer is no longer valid")

	// Only the valid operations changed anything: disk 16 (owner=rec, the
	// volume vol-dup) and disk 16 (owner=rec2).
	st := masterAgentState(t, c, agentID)
	if got := jsonString(schedPath(st, "reserved_resources", "db")); got != `{"cpus":0,"disk":32,"gpus":0,"mem":0}` {
		t.Errorf("reserved_resources.db %s", got)
	}
}

// TestStorageInvalidWithoutID: checklist point 4. Without an id an
// invalid operation is answered 202 and nothing else: no event, nothing
// reserved, and its resources are offered again only after the ACCEPT's
// refuse filter.
func TestStorageInvalidWithoutID(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	f := stSubscribe(t, c, "errors", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	start := time.Now()
	f.accept(o, 1, opUnreserve("", unreserved("cpus", 0.1)), opReserve("", reserved("cpus", 0.1, "other", "rec")))
	o = f.awaitOffer("any", nil)
	if d := time.Since(start); d < time.Second {
		t.Errorf("offered again after %v, want the 1 s refuse filter", d)
	}
	for _, fr := range append(f.s.backlog, f.s.drain(200*time.Millisecond)...) {
		if fr.typ() == "UPDATE_OPERATION_STATUS" {
			t.Errorf("unexpected event for an operation without id: %s", jsonString(fr.v))
		}
	}
	if scalarOf(o, "cpus", false) != 2 || offerHas(o, isReserved) {
		t.Errorf("offer after invalid operations: %s", jsonString(o["resources"]))
	}
	// A volume without its required mode does not even parse: 400, and
	// the offer stays outstanding.
	noMode := volume(16, "db", "rec", "vol-nomode", "data")
	delete(noMode["disk"].(map[string]any)["volume"].(map[string]any), "mode")
	code, body := f.post(map[string]any{"type": "ACCEPT", "accept": map[string]any{
		"offer_ids":  []any{o["id"]},
		"operations": []any{opReserve("", reserved("disk", 16, "db", "rec")), opCreate("op-nomode", noMode)},
	}})
	if code != http.StatusBadRequest || !strings.HasPrefix(body, "Failed to convert JSON into Call protobuf: ") || !strings.Contains(body, "mode") {
		t.Errorf("ACCEPT of a volume without mode: %d %q, want 400 naming the missing mode", code, body)
	}
	f.accept(o, 1) // give the offer back

	if st := masterAgentState(t, c, agentID); jsonString(st["reserved_resources"]) != `{}` {
		t.Errorf("reserved_resources %s", jsonString(st["reserved_resources"]))
	}
}

// TestStoragePipeline: checklist point 7 (storage-errors.jsonl case 7).
// RESERVE for a role the framework does not have is dropped; the CREATE
// on it then finds nothing to convert ("does not contain", no agent
// suffix); the LAUNCH that needs the volume gets TASK_ERROR.
func TestStoragePipeline(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	f := stSubscribe(t, c, "pipeline", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	suffix := "; on agent " + agentID + " at slave(1)@" + c.Agents()[0].Address + " (" + c.Agents()[0].Hostname + ")"
	vol := volume(8, "other", "rec", "vol-pipe", "data")
	f.accept(o, 1,
		opReserve("op-pipeline-reserve", reserved("disk", 8, "other", "rec")),
		opCreate("op-pipeline-create", vol),
		opLaunch(o, "pipe-task", "true", unreserved("cpus", 0.1), unreserved("mem", 32), vol))
	stOpError(t, f, "op-pipeline-reserve", "A reserve operation was attempted for a resource with role 'other', but the resource was allocated to role 'db'"+suffix)
	pool := "ports(allocated: db):[33100-33199]; cpus(allocated: db):2; mem(allocated: db):2048; disk(allocated: db):4096"
	st := f.awaitOperation("op-pipeline-create")
	want := pool + " does not contain disk(allocated: db)(reservations: [(DYNAMIC,other,ops,{owner: rec})]):8"
	msg := schedStr(st, "message")
	if schedStr(st, "state") != "OPERATION_ERROR" || !strings.HasSuffix(msg, " does not contain disk(allocated: db)(reservations: [(DYNAMIC,other,ops,{owner: rec})]):8") ||
		!sameResourceList(strings.TrimSuffix(msg, " does not contain disk(allocated: db)(reservations: [(DYNAMIC,other,ops,{owner: rec})]):8"), pool) {
		t.Errorf("CREATE status %s, want OPERATION_ERROR %q", jsonString(st), want)
	}
	u := f.awaitUpdate("pipe-task", "TASK_ERROR")
	const need = "Total resources cpus(allocated: db):0.1; mem(allocated: db):32; disk(allocated: db)(reservations: [(DYNAMIC,other,ops,{owner: rec})])[vol-pipe:data]:8 required by task and its executor is more than available "
	if m := schedStr(u, "message"); !strings.HasPrefix(m, need) || !sameResourceList(strings.TrimPrefix(m, need), pool) ||
		schedStr(u, "reason") != "REASON_TASK_INVALID" || schedStr(u, "source") != "SOURCE_MASTER" || u["uuid"] != nil {
		t.Errorf("TASK_ERROR %s", jsonString(u))
	}
}

// TestStorageVolumeRules: checklist point 8. A volume in use is not
// offered and cannot be destroyed; a volume cannot be unreserved before
// it is destroyed; DESTROY deletes the directory and leaves the disk
// reserved; UNRESERVE then returns it to '*'.
func TestStorageVolumeRules(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	f := stSubscribe(t, c, "rules", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	suffix := "; on agent " + agentID + " at slave(1)@" + c.Agents()[0].Address + " (" + c.Agents()[0].Hostname + ")"
	disk := reserved("disk", 16, "db", "rec")
	vol := volume(16, "db", "rec", "vol-v", "data")
	f.accept(o, 0, opReserve("", disk), opCreate("", vol),
		opLaunch(o, "sleeper", "sleep 600", unreserved("cpus", 0.1), unreserved("mem", 32), vol))
	f.awaitUpdate("sleeper", "TASK_RUNNING")

	o = f.awaitOffer("any", nil)
	if offerHas(o, hasVolume("vol-v")) {
		t.Errorf("volume in use offered: %s", jsonString(o["resources"]))
	}
	f.accept(o, 0, opDestroy("op-destroy-in-use", vol))
	stOpError(t, f, "op-destroy-in-use", "Persistent volumes in use"+suffix)
	o = f.awaitOffer("any", nil)
	f.accept(o, 0, opUnreserve("op-unreserve-volume", vol))
	stOpError(t, f, "op-unreserve-volume", "A dynamically reserved persistent volume disk(allocated: db)(reservations: [(DYNAMIC,db,ops,{owner: rec})])[vol-v:data]:16 cannot be unreserved directly. Please destroy the persistent volume first then unreserve the resource"+suffix)
	voldir := volumeDir(t, c, agentID, "db", "vol-v")
	if _, err := os.Stat(voldir); err != nil {
		t.Fatalf("volume directory: %v", err)
	}

	f.mustPost(map[string]any{"type": "KILL", "kill": map[string]any{"task_id": map[string]any{"value": "sleeper"}, "agent_id": o["agent_id"]}})
	f.awaitUpdate("sleeper", "TASK_KILLED")
	o = f.awaitOffer("with vol-v", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-v")) })
	f.accept(o, 0, opDestroy("op-destroy", vol))
	if st := f.awaitOperation("op-destroy"); schedStr(st, "state") != "OPERATION_FINISHED" {
		t.Fatalf("DESTROY: %s", jsonString(st))
	}
	if _, err := os.Stat(voldir); !os.IsNotExist(err) {
		t.Errorf("volume directory after DESTROY: %v, want it gone", err)
	}
	o = f.awaitOffer("reserved disk", func(o map[string]any) bool {
		return offerHas(o, func(r map[string]any) bool { return schedStr(r, "name") == "disk" && isReserved(r) })
	})
	if offerHas(o, func(r map[string]any) bool { return r["disk"] != nil }) {
		t.Errorf("disk still has disk info after DESTROY: %s", jsonString(o["resources"]))
	}
	f.accept(o, 0, opUnreserve("op-unreserve", disk))
	if st := f.awaitOperation("op-unreserve"); schedStr(st, "state") != "OPERATION_FINISHED" {
		t.Fatalf("UNRESERVE: %s", jsonString(st))
	}
	o = f.awaitOffer("all disk unreserved", func(o map[string]any) bool { return scalarOf(o, "disk", false) == 4096 })
	if offerHas(o, isReserved) {
		t.Errorf("reservations left: %s", jsonString(o["resources"]))
	}
}

// TestStorageFormats: checklist point 3. The same reservation is offered
// in each framework's format: reservations[] and no role with
// RESERVATION_REFINEMENT, role + reservation without; allocation_info only
// for MULTI_ROLE frameworks. The reservation is made by the operator
// endpoint.
func TestStorageFormats(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	agentID := c.Agents()[0].ID
	code, body := operatorPost(t, c, "/master/reserve", url.Values{"slaveId": {agentID}, "resources": {jsonString([]any{reserved("cpus", 0.5, "db", "op")})}})
	if code != http.StatusAccepted {
		t.Fatalf("reserve: %d %s", code, body)
	}
	for _, tc := range []struct {
		caps              []string
		refined, multiRol bool
	}{
		{[]string{"MULTI_ROLE", "RESERVATION_REFINEMENT"}, true, true},
		{[]string{"MULTI_ROLE"}, false, true},
		{[]string{"RESERVATION_REFINEMENT"}, true, false},
		{nil, false, false},
	} {
		f := stSubscribe(t, c, "format", []string{"db"}, "ops", tc.caps...)
		o := f.awaitOffer("reserved cpus", func(o map[string]any) bool { return scalarOf(o, "cpus", true) == 0.5 })
		for _, r := range asList(o["resources"]) {
			name, isRes := schedStr(r, "name"), isReserved(r.(map[string]any))
			hasAlloc := schedPath(r, "allocation_info") != nil
			if hasAlloc != tc.multiRol {
				t.Errorf("%v: %s allocation_info present %v", tc.caps, name, hasAlloc)
			}
			switch {
			case tc.refined && isRes:
				if schedPath(r, "role") != nil || schedPath(r, "reservation") != nil ||
					jsonString(schedPath(r, "reservations")) != `[{"labels":{"labels":[{"key":"owner","value":"op"}]},"principal":"ops","role":"db","type":"DYNAMIC"}]` {
					t.Errorf("%v: reserved %s as %s", tc.caps, name, jsonString(r))
				}
			case tc.refined:
				if schedPath(r, "role") != nil || len(asList(schedPath(r, "reservations"))) > 0 {
					t.Errorf("%v: unreserved %s as %s", tc.caps, name, jsonString(r))
				}
			case isRes:
				if schedStr(r, "role") != "db" || len(asList(schedPath(r, "reservations"))) > 0 ||
					jsonString(schedPath(r, "reservation")) != `{"labels":{"labels":[{"key":"owner","value":"op"}]},"principal":"ops"}` {
					t.Errorf("%v: reserved %s as %s", tc.caps, name, jsonString(r))
				}
			default:
				if schedStr(r, "role") != "*" {
					t.Errorf("%v: unreserved %s as %s", tc.caps, name, jsonString(r))
				}
			}
		}
		if (o["allocation_info"] != nil) != tc.multiRol {
			t.Errorf("%v: offer allocation_info %v", tc.caps, o["allocation_info"])
		}
		if tc.caps == nil {
			// A framework without either capability reserves in the
			// legacy format and gets the same feedback.
			legacyMem := map[string]any{"name": "mem", "type": "SCALAR", "scalar": map[string]any{"value": 16}, "role": "db", "reservation": map[string]any{"principal": "ops"}}
			f.accept(o, 0, opReserve("op-legacy", legacyMem))
			if st := f.awaitOperation("op-legacy"); schedStr(st, "state") != "OPERATION_FINISHED" {
				t.Errorf("legacy RESERVE: %s", jsonString(st))
			}
			o = f.awaitOffer("reserved mem", func(o map[string]any) bool { return scalarOf(o, "mem", true) == 16 })
			if !offerHas(o, func(r map[string]any) bool {
				return schedStr(r, "name") == "mem" && schedStr(r, "role") == "db" && schedStr(r, "reservation", "principal") == "ops"
			}) {
				t.Errorf("legacy reservation offered as %s", jsonString(o["resources"]))
			}
		}
		f.mustPost(map[string]any{"type": "TEARDOWN"})
		f.s.waitEnd(stWait)
	}
}

// TestStorageAgentRestartAndTeardown: checklist points 10 and 9. An agent
// restart (same work dir) rescinds the outstanding offer, keeps the
// checkpointing framework's task RUNNING without a new update, and keeps
// the reservations, the volume and its data. TEARDOWN of the framework
// keeps them too, and a second framework in the role is offered them and
// reads the data.
func TestStorageAgentRestartAndTeardown(t *testing.T) {
	cfg := storageConfig(t, 1)
	// As on Mesos, the agent is back well within its ping timeout, and
	// its executors have Mesos' 2 s to re-subscribe.
	cfg.AgentPingTimeout = 30 * time.Second
	cfg.ExecutorReregistrationTimeout = 2 * time.Second
	c := startCluster(t, cfg)
	f := stSubscribe(t, c, "keeper", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	cpus, mem := reserved("cpus", 0.1, "db", "rec"), reserved("mem", 32, "db", "rec")
	vol := volume(16, "db", "rec", "vol-keep", "data")
	f.accept(o, 0, opReserve("", cpus, mem, reserved("disk", 16, "db", "rec")), opCreate("", vol),
		opLaunch(o, "keeper", "echo kept > data/f && exec sleep 600", cpus, mem, vol))
	f.awaitUpdate("keeper", "TASK_RUNNING")
	held := f.awaitOffer("the rest", nil)
	voldir := volumeDir(t, c, agentID, "db", "vol-keep")
	execEventually(t, "the task writes its volume", func() bool {
		b, err := os.ReadFile(filepath.Join(voldir, "f"))
		return err == nil && strings.TrimSpace(string(b)) == "kept"
	})

	f.s.backlog = nil // acknowledged updates of the launch
	if err := c.RestartAgent(agentID); err != nil {
		t.Fatal(err)
	}
	f.await("RESCIND of the held offer", func(fr schedFrame) bool {
		return fr.typ() == "RESCIND" && schedStr(fr.v, "rescind", "offer_id", "value") == schedStr(held, "id", "value")
	})
	f.awaitOffer("from the restarted agent", func(o map[string]any) bool { return schedStr(o, "agent_id", "value") == agentID })
	for _, fr := range append(f.s.backlog, f.s.drain(300*time.Millisecond)...) {
		if fr.typ() == "UPDATE" {
			t.Errorf("update after the agent restart: %s", jsonString(fr.v))
		}
	}
	f.s.backlog = nil
	st := masterAgentState(t, c, agentID)
	if got := jsonString(schedPath(st, "reserved_resources", "db")); got != `{"cpus":0.1,"disk":16,"gpus":0,"mem":32}` {
		t.Errorf("reserved_resources.db after restart: %s", got)
	}
	if got := readFile(t, filepath.Join(voldir, "f")); got != "kept" {
		t.Errorf("volume after restart holds %q", got)
	}

	f.mustPost(map[string]any{"type": "TEARDOWN"})
	f.s.waitEnd(stWait)
	g := stSubscribe(t, c, "second", []string{"db"}, "ops", "MULTI_ROLE")
	o = g.awaitOffer("with vol-keep", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-keep")) })
	if got := schedStr(o, "agent_id", "value"); got != agentID {
		t.Errorf("volume offered by %s, want %s", got, agentID)
	}
	legacy := func(r map[string]any) map[string]any {
		l := map[string]any{"name": r["name"], "type": "SCALAR", "scalar": r["scalar"], "role": "db",
			"reservation": map[string]any{"principal": "ops", "labels": map[string]any{"labels": []any{map[string]any{"key": "owner", "value": "rec"}}}}}
		if r["disk"] != nil {
			l["disk"] = r["disk"]
		}
		return l
	}
	g.accept(o, 0, opLaunch(o, "reader", `test "$(cat data/f)" = kept`, legacy(cpus), legacy(mem), legacy(vol)))
	g.awaitUpdate("reader", "TASK_FINISHED")
}

// TestStorageOperatorEndpoints: /master/reserve, /master/create-volumes,
// /master/destroy-volumes and /master/unreserve as Mesos' operator HTTP
// endpoints take them (form-encoded slaveId and a JSON array), with their
// answers to bad input (which change nothing), the offer rescinded to
// make room, and /master/slaves listing reservations in both formats.
func TestStorageOperatorEndpoints(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	a := c.Agents()[0]
	agentID := a.ID
	desc := agentID + " at slave(1)@" + a.Address + " (" + a.Hostname + ")"
	legacyCPU := map[string]any{"name": "cpus", "type": "SCALAR", "scalar": map[string]any{"value": 1}, "role": "db", "reservation": map[string]any{"principal": "ops"}}
	vol := volume(16, "db", "rec", "vol-op", "data")
	disk := reserved("disk", 16, "db", "rec")
	form := func(field string, v any) url.Values { return url.Values{"slaveId": {agentID}, field: {jsonString(v)}} }

	// A framework holding everything: the reservation rescinds its offer.
	f := stSubscribe(t, c, "holder", []string{"*"}, "", "MULTI_ROLE")
	held := f.awaitOffer("any", nil)

	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
		body   string
	}{
		{"/master/reserve", url.Values{"resources": {"[]"}}, 400, "Missing 'slaveId' query parameter in the request body"},
		{"/master/reserve", url.Values{"slaveId": {agentID}}, 400, "Missing 'resources' query parameter in the request body"},
		{"/master/create-volumes", url.Values{"slaveId": {agentID}, "resources": {"[]"}}, 400, "Missing 'volumes' query parameter in the request body"},
		{"/master/reserve", url.Values{"slaveId": {agentID}, "resources": {"{nope"}}, 400, "Error in parsing 'resources' query parameter in the request body: "},
		{"/master/reserve", url.Values{"slaveId": {"no-such-agent"}, "resources": {jsonString([]any{legacyCPU})}}, 400, "No agent found with specified ID"},
		{"/master/reserve", form("resources", []any{reserved("cpus", 1, "*", "x")}), 400, `Resource 'cpus(reservations: [(DYNAMIC,*,ops,{owner: x})]):1' is invalid: Invalid reservation: role "*" cannot be reserved`},
		{"/master/unreserve", form("resources", []any{unreserved("cpus", 1)}), 400, "Invalid UNRESERVE operation on agent " + desc + ": Resource cpus:1 is not dynamically reserved"},
		{"/master/create-volumes", form("volumes", []any{vol}), 409, " does not contain disk(reservations: [(DYNAMIC,db,ops,{owner: rec})]):16"},
		{"/master/destroy-volumes", form("volumes", []any{vol}), 400, "Invalid DESTROY operation on agent " + desc + ": Persistent volumes not found"},
		{"/master/reserve", form("resources", []any{reserved("cpus", 100, "db", "x")}), 409, " does not contain cpus:100"},
	} {
		code, body := operatorPost(t, c, tc.path, tc.form)
		if code != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("POST %s %v: %d %q, want %d %q", tc.path, tc.form, code, body, tc.status, tc.body)
		}
	}
	if res, err := http.Get(c.MasterURL() + "/master/reserve"); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /master/reserve: %v %v, want 405", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	if st := masterAgentState(t, c, agentID); jsonString(st["reserved_resources"]) != `{}` {
		t.Fatalf("bad requests changed the agent: reserved_resources %s", jsonString(st["reserved_resources"]))
	}

	for _, step := range []struct{ path, field string }{{"/master/reserve", "resources"}} {
		if code, body := operatorPost(t, c, step.path, form(step.field, []any{legacyCPU, disk})); code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", step.path, code, body)
		}
	}
	f.await("RESCIND", func(fr schedFrame) bool {
		return fr.typ() == "RESCIND" && schedStr(fr.v, "rescind", "offer_id", "value") == schedStr(held, "id", "value")
	})
	// The '*' framework is offered what is left, never the reservation.
	rest := f.awaitOffer("after the reservation", nil)
	if offerHas(rest, isReserved) || scalarOf(rest, "cpus", false) != 1 || scalarOf(rest, "disk", false) != 4080 {
		t.Errorf("offer to role '*' after the reservation: %s", jsonString(rest["resources"]))
	}
	if code, body := operatorPost(t, c, "/master/create-volumes", form("volumes", []any{vol})); code != http.StatusAccepted {
		t.Fatalf("create-volumes: %d %s", code, body)
	}
	voldir := volumeDir(t, c, agentID, "db", "vol-op")
	execEventually(t, "the volume directory", func() bool { _, err := os.Stat(voldir); return err == nil })

	res, err := http.Get(c.MasterURL() + "/master/slaves")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Mesos writes doubles with a decimal point, as in /master/state.
	if !regexp.MustCompile(`"reserved_resources":\{"db":\{[^}]*"cpus":1\.0[,}]`).Match(raw) {
		t.Errorf("/master/slaves does not write the reserved cpus as Mesos does (1.0): %s", raw)
	}
	if !strings.Contains(string(raw), `"scalar":{"value":16.0},"role":"db"`) {
		t.Errorf("/master/slaves does not write the reserved disk in full as Mesos does (16.0): %s", raw)
	}
	var slaves map[string]any
	if err := json.Unmarshal(raw, &slaves); err != nil {
		t.Fatal(err)
	}
	full := schedPath(asList(slaves["slaves"])[0], "reserved_resources_full", "db")
	want := `[{"name":"cpus","reservation":{"principal":"ops"},"reservations":[{"principal":"ops","role":"db","type":"DYNAMIC"}],"role":"db","scalar":{"value":1},"type":"SCALAR"},` +
		`{"disk":{"persistence":{"id":"vol-op","principal":"ops"},"volume":{"container_path":"data","mode":"RW"}},"name":"disk","reservation":{"labels":{"labels":[{"key":"owner","value":"rec"}]},"principal":"ops"},"reservations":[{"labels":{"labels":[{"key":"owner","value":"rec"}]},"principal":"ops","role":"db","type":"DYNAMIC"}],"role":"db","scalar":{"value":16},"type":"SCALAR"}]`
	if got := jsonString(full); got != want {
		t.Errorf("reserved_resources_full.db\n%s\nwant\n%s", got, want)
	}

	if code, body := operatorPost(t, c, "/master/destroy-volumes", form("volumes", []any{vol})); code != http.StatusAccepted {
		t.Fatalf("destroy-volumes: %d %s", code, body)
	}
	execEventually(t, "the volume directory removed", func() bool { _, err := os.Stat(voldir); return os.IsNotExist(err) })
	if code, body := operatorPost(t, c, "/master/unreserve", form("resources", []any{legacyCPU, disk})); code != http.StatusAccepted {
		t.Fatalf("unreserve: %d %s", code, body)
	}
	if st := masterAgentState(t, c, agentID); jsonString(st["reserved_resources"]) != `{}` {
		t.Errorf("reserved_resources after unreserve: %s", jsonString(st["reserved_resources"]))
	}
}

// TestStorageReconcileOperations: RECONCILE_OPERATIONS is answered 202
// and with UPDATE_OPERATION_STATUS events without uuid (Mesos 1.8+,
// MESOS-9448): the latest status of an operation not acknowledged yet,
// OPERATION_UNKNOWN for one the master does not know, and nothing once
// acknowledged.
func TestStorageReconcileOperations(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	f := stSubscribe(t, c, "reconcile", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	f.accept(o, 0, opReserve("op-r", reserved("cpus", 0.1, "db", "rec")))
	st := f.awaitOperation("op-r")
	reconcile := func(ops ...map[string]any) {
		t.Helper()
		if ops == nil {
			ops = []map[string]any{}
		}
		if code, body := f.post(map[string]any{"type": "RECONCILE_OPERATIONS", "reconcile_operations": map[string]any{"operations": ops}}); code != http.StatusAccepted || body != "" {
			t.Fatalf("RECONCILE_OPERATIONS: %d %q, want 202 and no body", code, body)
		}
	}
	// Reconciliation answers carry no uuid; the retries of op-r's
	// OPERATION_FINISHED (every 0.5 s here) do.
	answer := func(id string) map[string]any {
		t.Helper()
		fr := f.await("reconciliation answer for "+id, func(fr schedFrame) bool {
			return fr.typ() == "UPDATE_OPERATION_STATUS" && schedStr(fr.v, "update_operation_status", "status", "operation_id", "value") == id &&
				schedPath(fr.v, "update_operation_status", "status", "uuid") == nil
		})
		st, _ := schedPath(fr.v, "update_operation_status", "status").(map[string]any)
		return st
	}
	reconcile(map[string]any{"operation_id": map[string]any{"value": "op-r"}},
		map[string]any{"operation_id": map[string]any{"value": "op-nope"}, "agent_id": map[string]any{"value": agentID}})
	if got := answer("op-r"); schedStr(got, "state") != "OPERATION_FINISHED" || schedStr(got, "agent_id", "value") != agentID {
		t.Errorf("explicit reconciliation of op-r: %s", jsonString(got))
	}
	if got := answer("op-nope"); schedStr(got, "state") != "OPERATION_UNKNOWN" || schedStr(got, "agent_id", "value") != agentID {
		t.Errorf("explicit reconciliation of op-nope: %s", jsonString(got))
	}
	reconcile()
	if got := answer("op-r"); schedStr(got, "state") != "OPERATION_FINISHED" {
		t.Errorf("implicit reconciliation: %s", jsonString(got))
	}
	f.ackOperation(st)
	reconcile()
	for _, fr := range f.s.drain(1500 * time.Millisecond) {
		// (A retry sent before the acknowledgement was handled has a uuid.)
		if fr.typ() == "UPDATE_OPERATION_STATUS" && schedPath(fr.v, "update_operation_status", "status", "uuid") == nil {
			t.Errorf("implicit reconciliation after the acknowledgement: %s", jsonString(fr.v))
		}
	}
}

// TestStorageMasterFailover: after a master failover the agents register
// again with their reservations and volumes, which the new master shows
// and offers.
func TestStorageMasterFailover(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	agentID := c.Agents()[0].ID
	form := func(field string, v any) url.Values { return url.Values{"slaveId": {agentID}, field: {jsonString(v)}} }
	vol := volume(16, "db", "rec", "vol-fo", "data")
	if code, body := operatorPost(t, c, "/master/reserve", form("resources", []any{reserved("disk", 16, "db", "rec")})); code != http.StatusAccepted {
		t.Fatalf("reserve: %d %s", code, body)
	}
	if code, body := operatorPost(t, c, "/master/create-volumes", form("volumes", []any{vol})); code != http.StatusAccepted {
		t.Fatalf("create-volumes: %d %s", code, body)
	}
	c.FailoverMaster()
	execEventually(t, "the agent back with its reservation", func() bool {
		res, err := http.Get(c.MasterURL() + "/master/state")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(res.Body).Decode(&v)
		for _, s := range asList(v["slaves"]) {
			if schedStr(s, "id") == agentID {
				return jsonString(schedPath(s, "reserved_resources", "db")) == `{"cpus":0,"disk":16,"gpus":0,"mem":0}`
			}
		}
		return false
	})
	f := stSubscribe(t, c, "after-failover", []string{"db"}, "ops", dbCaps...)
	f.awaitOffer("with vol-fo", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-fo")) })
}

// TestStorageSurvivesClusterRestart: a cluster started again on the same
// work dir (a new process, new agent IDs) comes back with the
// reservations and volumes and their data: they are checkpointed per
// agent work dir, not per agent ID, as on Mesos.
func TestStorageSurvivesClusterRestart(t *testing.T) {
	cfg := storageConfig(t, 1)
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	agentID := c.Agents()[0].ID
	form := func(field string, v any) url.Values { return url.Values{"slaveId": {agentID}, field: {jsonString(v)}} }
	if code, body := operatorPost(t, c, "/master/reserve", form("resources", []any{reserved("disk", 16, "db", "rec"), reserved("cpus", 0.1, "db", "rec")})); code != http.StatusAccepted {
		t.Fatalf("reserve: %d %s", code, body)
	}
	if code, body := operatorPost(t, c, "/master/create-volumes", form("volumes", []any{volume(16, "db", "rec", "vol-again", "data")})); code != http.StatusAccepted {
		t.Fatalf("create-volumes: %d %s", code, body)
	}
	voldir := volumeDir(t, c, agentID, "db", "vol-again")
	execEventually(t, "the volume directory", func() bool { return os.WriteFile(filepath.Join(voldir, "f"), []byte("again"), 0o644) == nil })
	c.Close()

	c = startCluster(t, cfg)
	newID := c.Agents()[0].ID
	f := stSubscribe(t, c, "again", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("with vol-again", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-again")) })
	if scalarOf(o, "cpus", true) != 0.1 {
		t.Errorf("reserved cpus after the restart: %s", jsonString(o["resources"]))
	}
	f.accept(o, 0, opLaunch(o, "reader", `test "$(cat data/f)" = again`, reserved("cpus", 0.1, "db", "rec"), volume(16, "db", "rec", "vol-again", "data")))
	f.awaitUpdate("reader", "TASK_FINISHED")
	if st := masterAgentState(t, c, newID); jsonString(schedPath(st, "reserved_resources", "db")) != `{"cpus":0.1,"disk":16,"gpus":0,"mem":0}` {
		t.Errorf("reserved_resources after the restart: %s", jsonString(st["reserved_resources"]))
	}
}

// TestStorageCustomExecutorVolumes: a custom executor's container gets
// the volume of its first task linked before it starts, and a later task
// that brings another volume to the running executor gets that one linked
// too (Mesos updates the container before delivering the task).
func TestStorageCustomExecutorVolumes(t *testing.T) {
	c := startCluster(t, storageConfig(t, 1))
	f := stSubscribe(t, c, "custom", []string{"db"}, "ops", dbCaps...)
	o := f.awaitOffer("any", nil)
	agentID := schedStr(o, "agent_id", "value")
	var command map[string]any
	if err := json.Unmarshal([]byte(schedExecutorCommand(t)), &command); err != nil {
		t.Fatal(err)
	}
	executor := map[string]any{
		"executor_id": map[string]any{"value": "ex"}, "type": "CUSTOM", "command": command,
		"resources": []any{unreserved("cpus", 0.1), unreserved("mem", 32)},
	}
	task := func(id string, vol map[string]any) map[string]any {
		return map[string]any{"type": "LAUNCH", "launch": map[string]any{"task_infos": []any{map[string]any{
			"name": id, "task_id": map[string]any{"value": id}, "agent_id": o["agent_id"], "executor": executor,
			"resources": []any{unreserved("cpus", 0.1), vol},
		}}}}
	}
	v1, v2 := volume(8, "db", "rec", "vol-a", "a"), volume(8, "db", "rec2", "vol-b", "b")
	f.accept(o, 0, opReserve("", reserved("disk", 8, "db", "rec"), reserved("disk", 8, "db", "rec2")), opCreate("", v1),
		opCreate("", v2), task("t1", v1))
	f.awaitUpdate("t1", "TASK_FINISHED")
	sandbox := filepath.Join(agentDir(t, c, agentID), "slaves", agentID, "frameworks", f.id, "executors", "ex", "runs", "latest")
	if target, err := os.Readlink(filepath.Join(sandbox, "a")); err != nil || target != volumeDir(t, c, agentID, "db", "vol-a") {
		t.Errorf("executor sandbox a -> %q (%v)", target, err)
	}
	o = f.awaitOffer("with vol-b", func(o map[string]any) bool { return offerHas(o, hasVolume("vol-b")) })
	f.accept(o, 0, task("t2", v2))
	f.awaitUpdate("t2", "TASK_FINISHED")
	if target, err := os.Readlink(filepath.Join(sandbox, "b")); err != nil || target != volumeDir(t, c, agentID, "db", "vol-b") {
		t.Errorf("executor sandbox b -> %q (%v), want the volume linked for the second task", target, err)
	}
	f.mustPost(map[string]any{"type": "TEARDOWN"})
	f.s.waitEnd(stWait)
}
