package localmesos

// Helpers for the storage tests (storage_*_test.go): a JSON scheduler the
// way the recordings of reservations-volumes.jsonl and storage-errors.jsonl
// drive Mesos (curl-like calls, every task update acknowledged as it
// arrives), and builders for reserved resources and volumes in both
// formats.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const stWait = 45 * time.Second

// stFramework is one JSON framework subscribed to a cluster.
type stFramework struct {
	t     *testing.T
	c     *Cluster
	s     *schedStream
	id    string
	acked map[string]bool
}

// stSubscribe subscribes a checkpointing framework with roles, principal
// and capabilities (e.g. "MULTI_ROLE", "RESERVATION_REFINEMENT").
func stSubscribe(t *testing.T, c *Cluster, name string, roles []string, principal string, caps ...string) *stFramework {
	t.Helper()
	info := map[string]any{"user": "root", "name": name, "checkpoint": true, "failover_timeout": 60}
	if principal != "" {
		info["principal"] = principal
	}
	multi := false
	var cl []any
	for _, c := range caps {
		cl = append(cl, map[string]any{"type": c})
		multi = multi || c == "MULTI_ROLE"
	}
	if len(cl) > 0 {
		info["capabilities"] = cl
	}
	if multi {
		info["roles"] = roles
	} else {
		info["role"] = roles[0]
	}
	body, _ := json.Marshal(map[string]any{"type": "SUBSCRIBE", "subscribe": map[string]any{"framework_info": info}})
	req, _ := http.NewRequest(http.MethodPost, c.MasterURL()+"/api/v1/scheduler", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, b)
	}
	f := &stFramework{t: t, c: c, s: schedOpenStream(t, res, false), acked: map[string]bool{}}
	sub := f.s.take("SUBSCRIBED", stWait, func(fr schedFrame) bool { return fr.typ() == "SUBSCRIBED" })
	f.id = schedStr(sub.v, "subscribed", "framework_id", "value")
	return f
}

// post sends a call (the JSON of Call without framework_id) and returns
// the status code and body.
func (f *stFramework) post(call map[string]any) (int, string) {
	f.t.Helper()
	call["framework_id"] = map[string]any{"value": f.id}
	body, _ := json.Marshal(call)
	req, _ := http.NewRequest(http.MethodPost, f.c.MasterURL()+"/api/v1/scheduler", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Mesos-Stream-Id", f.s.streamID)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mustPost sends a call that must be answered 202.
func (f *stFramework) mustPost(call map[string]any) {
	f.t.Helper()
	if code, body := f.post(call); code != http.StatusAccepted {
		f.t.Fatalf("%v: %d %s", call["type"], code, body)
	}
}

// accept sends ACCEPT of one offer with operations and refuse_seconds.
func (f *stFramework) accept(offer map[string]any, refuse float64, ops ...map[string]any) {
	f.t.Helper()
	f.mustPost(map[string]any{"type": "ACCEPT", "accept": map[string]any{
		"offer_ids":  []any{offer["id"]},
		"operations": ops,
		"filters":    map[string]any{"refuse_seconds": refuse},
	}})
}

// needsAck: a task update with a uuid not acknowledged yet.
func (f *stFramework) needsAck(fr schedFrame) bool {
	if fr.typ() != "UPDATE" {
		return false
	}
	u := schedStr(fr.v, "update", "status", "uuid")
	return u != "" && !f.acked[u]
}

func (f *stFramework) ack(fr schedFrame) {
	f.t.Helper()
	st := schedPath(fr.v, "update", "status")
	u := schedStr(st, "uuid")
	f.acked[u] = true
	f.mustPost(map[string]any{"type": "ACKNOWLEDGE", "acknowledge": map[string]any{
		"agent_id": schedPath(st, "agent_id"), "task_id": schedPath(st, "task_id"), "uuid": u,
	}})
}

// await returns the first event match accepts, acknowledging task
// updates on the way (as the recording client did).
func (f *stFramework) await(what string, match func(schedFrame) bool) schedFrame {
	f.t.Helper()
	for {
		fr := f.s.take(what, stWait, func(fr schedFrame) bool { return match(fr) || f.needsAck(fr) })
		if f.needsAck(fr) {
			f.ack(fr)
		}
		if match(fr) {
			return fr
		}
		f.s.backlog = append(f.s.backlog, fr) // acknowledged, kept for later

	}
}

// awaitUpdate waits for task's update in state and returns its status.
func (f *stFramework) awaitUpdate(task, state string) map[string]any {
	f.t.Helper()
	fr := f.await("UPDATE "+task+" "+state, func(fr schedFrame) bool {
		return fr.typ() == "UPDATE" && schedStr(fr.v, "update", "status", "task_id", "value") == task && schedStr(fr.v, "update", "status", "state") == state
	})
	st, _ := schedPath(fr.v, "update", "status").(map[string]any)
	return st
}

// awaitOperation waits for an UPDATE_OPERATION_STATUS of operation id.
func (f *stFramework) awaitOperation(id string) map[string]any {
	f.t.Helper()
	fr := f.await("UPDATE_OPERATION_STATUS "+id, func(fr schedFrame) bool {
		return fr.typ() == "UPDATE_OPERATION_STATUS" && schedStr(fr.v, "update_operation_status", "status", "operation_id", "value") == id
	})
	st, _ := schedPath(fr.v, "update_operation_status", "status").(map[string]any)
	return st
}

// ackOperation acknowledges an OPERATION_FINISHED as the recording
// client did: agent_id, the uuid's base64 string, operation_id.
func (f *stFramework) ackOperation(st map[string]any) {
	f.t.Helper()
	f.mustPost(map[string]any{"type": "ACKNOWLEDGE_OPERATION_STATUS", "acknowledge_operation_status": map[string]any{
		"agent_id": st["agent_id"], "uuid": schedStr(st, "uuid", "value"), "operation_id": st["operation_id"],
	}})
}

// awaitOffer waits for an offer that match accepts (any offer if nil).
func (f *stFramework) awaitOffer(what string, match func(map[string]any) bool) map[string]any {
	f.t.Helper()
	var found map[string]any
	f.await("offer "+what, func(fr schedFrame) bool {
		if fr.typ() != "OFFERS" {
			return false
		}
		for _, o := range asList(schedPath(fr.v, "offers", "offers")) {
			om, _ := o.(map[string]any)
			if match == nil || match(om) {
				found = om
				return true
			}
		}
		return false
	})
	return found
}

// offerHas reports whether an offer has a resource match accepts.
func offerHas(o map[string]any, match func(map[string]any) bool) bool {
	for _, r := range asList(o["resources"]) {
		if rm, _ := r.(map[string]any); match(rm) {
			return true
		}
	}
	return false
}

func hasVolume(id string) func(map[string]any) bool {
	return func(r map[string]any) bool { return schedStr(r, "disk", "persistence", "id") == id }
}

func isReserved(r map[string]any) bool {
	return len(asList(r["reservations"])) > 0 || (schedStr(r, "role") != "" && schedStr(r, "role") != "*")
}

// scalarOf sums an offer's unreserved (or reserved) scalar name.
func scalarOf(o map[string]any, name string, reserved bool) float64 {
	var total float64
	for _, r := range asList(o["resources"]) {
		rm, _ := r.(map[string]any)
		if schedStr(rm, "name") != name || isReserved(rm) != reserved {
			continue
		}
		v, _ := schedPath(rm, "scalar", "value").(json.Number).Float64()
		total += v
	}
	return total
}

// reserved is a scalar dynamically reserved for role by principal ops,
// labelled owner=<owner>, in the refinement format.
func reserved(name string, v float64, role, owner string) map[string]any {
	return map[string]any{
		"name": name, "type": "SCALAR", "scalar": map[string]any{"value": v},
		"reservations": []any{map[string]any{"type": "DYNAMIC", "role": role, "principal": "ops",
			"labels": map[string]any{"labels": []any{map[string]any{"key": "owner", "value": owner}}}}},
	}
}

// unreserved is a plain scalar.
func unreserved(name string, v float64) map[string]any {
	return map[string]any{"name": name, "type": "SCALAR", "scalar": map[string]any{"value": v}}
}

// volume is reserved disk made a persistent volume.
func volume(v float64, role, owner, id, path string) map[string]any {
	r := reserved("disk", v, role, owner)
	r["disk"] = map[string]any{"persistence": map[string]any{"id": id, "principal": "ops"}, "volume": map[string]any{"container_path": path, "mode": "RW"}}
	return r
}

func opReserve(id string, rs ...map[string]any) map[string]any {
	return withID(map[string]any{"type": "RESERVE", "reserve": map[string]any{"resources": rs}}, id)
}

func opUnreserve(id string, rs ...map[string]any) map[string]any {
	return withID(map[string]any{"type": "UNRESERVE", "unreserve": map[string]any{"resources": rs}}, id)
}

func opCreate(id string, vols ...map[string]any) map[string]any {
	return withID(map[string]any{"type": "CREATE", "create": map[string]any{"volumes": vols}}, id)
}

func opDestroy(id string, vols ...map[string]any) map[string]any {
	return withID(map[string]any{"type": "DESTROY", "destroy": map[string]any{"volumes": vols}}, id)
}

func withID(op map[string]any, id string) map[string]any {
	if id != "" {
		op["id"] = map[string]any{"value": id}
	}
	return op
}

// opLaunch is a LAUNCH of one shell command task on the offer's agent.
func opLaunch(offer map[string]any, task, command string, rs ...map[string]any) map[string]any {
	return map[string]any{"type": "LAUNCH", "launch": map[string]any{"task_infos": []any{map[string]any{
		"name": task, "task_id": map[string]any{"value": task}, "agent_id": offer["agent_id"],
		"resources": rs, "command": map[string]any{"value": command, "shell": true},
	}}}}
}

// agentDir is the work dir of the agent with this ID.
func agentDir(t *testing.T, c *Cluster, agentID string) string {
	t.Helper()
	for i, a := range c.Agents() {
		if a.ID == agentID {
			return filepath.Join(c.WorkDir(), fmt.Sprintf("agent-%d", i))
		}
	}
	t.Fatalf("no agent %s", agentID)
	return ""
}

// volumeDir is where Mesos keeps a volume: <agent work dir>/volumes/roles/<role>/<id>.
func volumeDir(t *testing.T, c *Cluster, agentID, role, id string) string {
	return filepath.Join(agentDir(t, c, agentID), "volumes", "roles", role, id)
}

// sandboxLatest is runs/latest of a command task's executor.
func sandboxLatest(t *testing.T, c *Cluster, agentID, frameworkID, task string) string {
	return filepath.Join(agentDir(t, c, agentID), "slaves", agentID, "frameworks", frameworkID, "executors", task, "runs", "latest")
}

// masterAgentState is the agent's entry in GET /master/state.
func masterAgentState(t *testing.T, c *Cluster, agentID string) map[string]any {
	t.Helper()
	res, err := http.Get(c.MasterURL() + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// Numbers as float64: Mesos writes doubles with a decimal point
	// (16.0); the comparisons below are about values, not their spelling.
	var v map[string]any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	for _, s := range asList(v["slaves"]) {
		if schedStr(s, "id") == agentID {
			sm, _ := s.(map[string]any)
			return sm
		}
	}
	t.Fatalf("agent %s not in /master/state", agentID)
	return nil
}

// operatorPost posts a form to an operator endpoint.
func operatorPost(t *testing.T, c *Cluster, path string, form url.Values) (int, string) {
	t.Helper()
	res, err := http.PostForm(c.MasterURL()+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// storageConfig is the cluster of the storage recordings: agents with
// cpus:2;mem:2048;disk:4096, and operation statuses re-sent every 0.5 s
// so that the retry is seen quickly.
func storageConfig(t *testing.T, agents int) Config {
	cfg := schedConfig(t)
	cfg.Agents = agents
	cfg.SharePorts = true
	cfg.Resources = "cpus:2;mem:2048;disk:4096;ports:[33100-33199]"
	cfg.StatusUpdateRetryInterval = 500 * time.Millisecond
	return cfg
}
