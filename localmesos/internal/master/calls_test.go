package master

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// checkUpdate compares a master-generated UPDATE with the transcripts:
// SOURCE_MASTER, a timestamp, never a uuid.
func checkUpdate(t *testing.T, f map[string]any, task, state, reason, message, agent string) {
	t.Helper()
	st := path(f, "update", "status")
	got := []string{str(st, "task_id", "value"), str(st, "state"), str(st, "reason"), str(st, "message"), str(st, "agent_id", "value")}
	want := []string{task, state, reason, message, agent}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("update %v\n got  %q\n want %q", f, got, want)
		}
	}
	if str(st, "source") != "SOURCE_MASTER" || path(st, "uuid") != nil || path(st, "timestamp") == nil {
		t.Fatalf("master update must have SOURCE_MASTER, a timestamp and no uuid: %v", f)
	}
}

const ghostLaunch = `"accept":{"offer_ids":[{"value":"no-such-offer"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"ghost","task_id":{"value":"ghost"},"agent_id":{"value":"%AGENT%"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}],"command":{"value":"true"}}]}}]}`

// TestUnknownOffersAndTasks replays the asynchronous outcomes of
// scheduler-errors.jsonl for a framework with and without PARTITION_AWARE.
func TestUnknownOffersAndTasks(t *testing.T) {
	for _, pa := range []bool{false, true} {
		name, extra := "not-partition-aware", ""
		lost := func(s string) string { return "TASK_LOST" }
		if pa {
			name, extra = "partition-aware", `,{"type":"PARTITION_AWARE"}`
			lost = func(s string) string { return s }
		}
		t.Run(name, func(t *testing.T) {
			c := newTestCluster(t, testConfig())
			a := c.addAgent(0)
			s := c.subscribeFramework("errors", extra)
			s.offers()

			s.expectStatus(202, c.callOn(s, "ACCEPT", strings.ReplaceAll(ghostLaunch, "%AGENT%", a.id)))
			checkUpdate(t, s.next("UPDATE"), "ghost", lost("TASK_DROPPED"), "REASON_INVALID_OFFERS", "Task launched with invalid offers: Offer no-such-offer is no longer valid", a.id)

			s.expectStatus(202, c.callOn(s, "ACCEPT", `"accept":{"offer_ids":[{"value":"no-such-offer-2"}],"operations":[]}`))
			s.expectStatus(202, c.callOn(s, "DECLINE", `"decline":{"offer_ids":[{"value":"no-such-offer"}]}`))

			s.expectStatus(202, c.callOn(s, "KILL", `"kill":{"task_id":{"value":"nope"}}`))
			checkUpdate(t, s.next("UPDATE"), "nope", lost("TASK_UNKNOWN"), "REASON_RECONCILIATION", "Reconciliation: Task is unknown", "")

			s.expectStatus(202, c.callOn(s, "KILL", `"kill":{"task_id":{"value":"nope2"},"agent_id":{"value":"`+a.id+`"}}`))
			checkUpdate(t, s.next("UPDATE"), "nope2", lost("TASK_GONE"), "REASON_RECONCILIATION", "Reconciliation: Task is unknown to the agent", a.id)

			s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"nope"}}]}`))
			checkUpdate(t, s.next("UPDATE"), "nope", lost("TASK_UNKNOWN"), "REASON_RECONCILIATION", "Reconciliation: Task is unknown", "")

			s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"nope"},"agent_id":{"value":"`+a.id+`"}}]}`))
			checkUpdate(t, s.next("UPDATE"), "nope", lost("TASK_GONE"), "REASON_RECONCILIATION", "Reconciliation: Task is unknown to the agent", a.id)

			s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"nope"},"agent_id":{"value":"no-such-agent"}}]}`))
			checkUpdate(t, s.next("UPDATE"), "nope", lost("TASK_UNKNOWN"), "REASON_RECONCILIATION", "Reconciliation: Task is unknown", "no-such-agent")

			// ACKNOWLEDGE of an unknown task: forwarded to the agent
			// (which ignores it), nothing for the scheduler.
			uuid := base64.StdEncoding.EncodeToString(newUUIDBytes())
			s.expectStatus(202, c.callOn(s, "ACKNOWLEDGE", `"acknowledge":{"agent_id":{"value":"`+a.id+`"},"task_id":{"value":"nope"},"uuid":"`+uuid+`"}`))
			s.quiet(100 * time.Millisecond)
		})
	}
}

// TestTaskLifecycleAndReconciliation: the reported state is the status
// update state; a finished and acknowledged task is unknown.
func TestTaskLifecycleAndReconciliation(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("recon", "")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "quick", a.id)))
	a.waitFor(t, "RunTask quick")

	// STAGING until the agent says otherwise.
	s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"quick"}}]}`))
	checkUpdate(t, s.next("UPDATE"), "quick", "TASK_STAGING", "REASON_RECONCILIATION", "Reconciliation: Latest task state", a.id)

	running := c.sendUpdate(a.id, s.fid, "quick", mesos.TASK_RUNNING, mesos.TASK_FINISHED, "quick")
	up := s.next("UPDATE")
	if str(up, "update", "status", "state") != "TASK_RUNNING" {
		t.Fatalf("got %v", up)
	}
	// The agent already knows the task finished: reconciliation still
	// reports RUNNING (not acknowledged yet), but the resources are free.
	s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[]}`))
	checkUpdate(t, s.next("UPDATE"), "quick", "TASK_RUNNING", "REASON_RECONCILIATION", "Reconciliation: Latest task state", a.id)
	var used map[string]any
	c.m.call(func() { used = stateResources(c.m.agents[a.id].used()) })
	if used["cpus"] != 0.0 {
		t.Fatalf("terminal latest state must free the task's resources: used %v", used)
	}

	ack := func(uuid []byte) {
		s.expectStatus(202, c.callOn(s, "ACKNOWLEDGE", `"acknowledge":{"agent_id":{"value":"`+a.id+`"},"task_id":{"value":"quick"},"uuid":"`+base64.StdEncoding.EncodeToString(uuid)+`"}`))
	}
	ack(running)
	finished := c.sendUpdate(a.id, s.fid, "quick", mesos.TASK_FINISHED, mesos.TASK_FINISHED, "quick")
	if up := s.next("UPDATE"); str(up, "update", "status", "state") != "TASK_FINISHED" {
		t.Fatalf("got %v", up)
	}
	ack(finished)
	a.waitFor(t, "Acknowledge quick")

	s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"quick"}}]}`))
	checkUpdate(t, s.next("UPDATE"), "quick", "TASK_LOST", "REASON_RECONCILIATION", "Reconciliation: Task is unknown", "")
	s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"quick"},"agent_id":{"value":"`+a.id+`"}}]}`))
	checkUpdate(t, s.next("UPDATE"), "quick", "TASK_LOST", "REASON_RECONCILIATION", "Reconciliation: Task is unknown to the agent", a.id)
	// Implicit reconciliation with no live task answers nothing.
	s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[]}`))
	s.quiet(100*time.Millisecond, "OFFERS")
}

func offerCPUs(o any) float64 {
	for _, r := range path(o, "resources").([]any) {
		if str(r, "name") == "cpus" {
			v, _ := path(r, "scalar", "value").(json.Number).Float64()
			return v
		}
	}
	return 0
}

// TestDeclineSuppressRevive: refusal filters, SUPPRESS and REVIVE.
func TestDeclineSuppressRevive(t *testing.T) {
	c := newTestCluster(t, testConfig())
	c.addAgent(0)
	s := c.subscribeFramework("offers", "")
	o := s.offers()[0]

	start := time.Now()
	s.expectStatus(202, c.callOn(s, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":0.3}}`))
	o = s.offers()[0]
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("offer came back after %v despite a 0.3 s filter", d)
	}

	// Without filters the default 5 s applies; REVIVE clears it at once.
	s.expectStatus(202, c.callOn(s, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}]}`))
	s.quiet(500 * time.Millisecond)
	s.expectStatus(202, c.callOn(s, "REVIVE", ""))
	o = s.offers()[0]

	// SUPPRESS: no offers even for declined resources, until REVIVE.
	s.expectStatus(202, c.callOn(s, "SUPPRESS", ""))
	s.expectStatus(202, c.callOn(s, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":0}}`))
	s.quiet(300 * time.Millisecond)
	// A role the framework does not have drops the whole call.
	s.expectStatus(202, c.callOn(s, "REVIVE", `"revive":{"roles":["other"]}`))
	s.quiet(200 * time.Millisecond)
	s.expectStatus(202, c.callOn(s, "REVIVE", `"revive":{"roles":["*"]}`))
	o = s.offers()[0]

	// A filter blocks only subsets of what was refused: an offer that
	// grows (here: the task's resources are freed) gets through.
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "t1", c.m.ID()+"-S0")+``))
	c.agents[c.m.ID()+"-S0"].waitFor(t, "RunTask t1")
	o = s.offers()[0] // leftovers, refuse_seconds 0
	if offerCPUs(o) != 1.9 {
		t.Fatalf("leftover offer %v", o)
	}
	s.expectStatus(202, c.callOn(s, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":60}}`))
	s.quiet(200 * time.Millisecond)
	c.sendUpdate(c.m.ID()+"-S0", s.fid, "t1", mesos.TASK_FINISHED, mesos.TASK_FINISHED, "t1")
	s.next("UPDATE")
	o = s.offers()[0]
	if offerCPUs(o) != 2 {
		t.Fatalf("offer after the task finished %v, want all 2 cpus", o)
	}
}

// TestTeardown: the stream ends without an event, agents shut the
// framework down, later calls get 400 and re-subscribing is refused.
func TestTeardown(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("teardown", "")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "t1", a.id)))
	a.waitFor(t, "RunTask t1")
	s.expectStatus(202, c.callOn(s, "TEARDOWN", ""))
	s.ended()
	a.waitFor(t, "ShutdownFramework "+s.fid)
	if r := c.callOn(s, "REVIVE", ""); r.status != 400 || r.body != "Framework cannot be found" {
		t.Fatalf("after teardown: %d %q", r.status, r.body)
	}
	s2 := c.subscribe(`{"type":"SUBSCRIBE","framework_id":{"value":"` + s.fid + `"},"subscribe":{"framework_info":{"user":"root","name":"teardown","id":{"value":"` + s.fid + `"},"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	if got := str(s2.next("ERROR"), "error", "message"); got != "Framework has been removed" {
		t.Fatalf("ERROR %q", got)
	}
	s2.ended()
	// Its resources are free at once: a new framework gets all of them.
	s3 := c.subscribeFramework("next", "")
	if cpus := offerCPUs(s3.offers()[0]); cpus != 2 {
		t.Fatalf("next framework offered %v cpus", cpus)
	}
}
