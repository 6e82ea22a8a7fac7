package master

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

func resubscribeBody(fid, name string, failover string) string {
	return `{"type":"SUBSCRIBE","framework_id":{"value":"` + fid + `"},"subscribe":{"framework_info":{"user":"root","name":"` + name + `","id":{"value":"` + fid + `"},"failover_timeout":` + failover + `,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`
}

// TestFrameworkFailover replays scheduler-failover.jsonl: 403 while
// disconnected, re-SUBSCRIBE keeps tasks and makes the agent resend,
// a second SUBSCRIBE fails the first over, and an expired
// failover_timeout removes the framework.
func TestFrameworkFailover(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"failover","failover_timeout":30,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "sleeper", a.id)))
	a.waitFor(t, "RunTask sleeper")

	s.close()
	waitUntil(t, "framework disconnected", func() bool {
		var connected bool
		c.m.call(func() { connected = c.m.frameworks[s.fid].connected() })
		return !connected
	})
	if r := c.callOn(s, "REVIVE", ""); r.status != 403 || r.body != "Framework is not subscribed" {
		t.Fatalf("while disconnected: %d %q", r.status, r.body)
	}
	if r := c.post(`{"framework_id":{"value":"`+s.fid+`"},"type":"REVIVE"}`, nil); r.status != 403 {
		t.Fatalf("while disconnected, no stream id: %d %q", r.status, r.body)
	}
	// Updates for a disconnected framework are dropped.
	c.sendUpdate(a.id, s.fid, "sleeper", mesos.TASK_STARTING, mesos.TASK_STARTING, "sleeper")

	b := c.subscribe(resubscribeBody(s.fid, "failover", "30"))
	b.fid = str(b.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	if b.fid != s.fid || b.streamID == s.streamID {
		t.Fatalf("re-subscription: id %s (want %s), stream %s", b.fid, s.fid, b.streamID)
	}
	a.waitFor(t, "UpdateFramework "+s.fid)
	b.offers()
	// The task survived: reconciliation knows it, in the state the agent
	// reported (the update itself was dropped while disconnected).
	b.expectStatus(202, c.callOn(b, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"sleeper"}}]}`))
	checkUpdate(t, b.next("UPDATE"), "sleeper", "TASK_STARTING", "REASON_RECONCILIATION", "Reconciliation: Latest task state", a.id)
	if r := c.callOn(s, "REVIVE", ""); r.status != 400 || r.body != "The stream ID '"+s.streamID+"' included in this request didn't match the stream ID currently associated with framework ID "+s.fid {
		t.Fatalf("old stream id: %d %q", r.status, r.body)
	}

	// A second SUBSCRIBE while B is open: B hears ERROR and ends.
	cs := c.subscribe(resubscribeBody(s.fid, "failover", "30"))
	if got := str(b.next("ERROR"), "error", "message"); got != "Framework failed over" {
		t.Fatalf("old stream got ERROR %q", got)
	}
	b.ended()
	cs.fid = str(cs.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	cs.offers()
	cs.expectStatus(202, c.callOn(cs, "REVIVE", ""))
	if r := c.callOn(b, "REVIVE", ""); r.status != 400 {
		t.Fatalf("B's stream id after failover to C: %d", r.status)
	}

	// failover_timeout 0.3: removed once it expires.
	d := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"short","failover_timeout":0.3,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	d.fid = str(d.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	d.close()
	waitUntil(t, "403 while within failover_timeout", func() bool { return c.callOn(d, "REVIVE", "").status == 403 })
	waitUntil(t, "400 after failover_timeout", func() bool {
		r := c.callOn(d, "REVIVE", "")
		return r.status == 400 && r.body == "Framework cannot be found"
	})
	e := c.subscribe(resubscribeBody(d.fid, "short", "0.3"))
	if got := str(e.next("ERROR"), "error", "message"); got != "Framework has been removed" {
		t.Fatalf("ERROR %q", got)
	}
	e.ended()

	// failover_timeout 0 (the default): removed at once, tasks killed.
	z := c.subscribeFramework("zero", "")
	z.close()
	waitUntil(t, "framework with failover_timeout 0 removed", func() bool {
		return c.callOn(z, "REVIVE", "").status == 400
	})
	a.waitFor(t, "ShutdownFramework "+z.fid)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResubscribeGetsUnacknowledgedUpdate: after re-subscription the agent
// is told (UpdateFramework) and its resent update reaches the new stream.
func TestResubscribeGetsUnacknowledgedUpdate(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"f","failover_timeout":30,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "t", a.id)))
	a.waitFor(t, "RunTask t")
	uuid := c.sendUpdate(a.id, s.fid, "t", mesos.TASK_STARTING, mesos.TASK_RUNNING, "t")
	s.next("UPDATE")
	s.close()
	waitUntil(t, "disconnect", func() bool { return c.callOn(s, "REVIVE", "").status == 403 })
	b := c.subscribe(resubscribeBody(s.fid, "f", "30"))
	b.fid = s.fid
	b.next("SUBSCRIBED")
	a.waitFor(t, "UpdateFramework")
	// The agent resends the same update (same uuid).
	c.m.StatusUpdate(mesos.AgentID{Value: a.id}, wire.StatusUpdate{FrameworkID: mesos.FrameworkID{Value: s.fid}, LatestState: mesos.TASK_RUNNING, Status: mesos.TaskStatus{
		TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_STARTING.Enum(), Source: mesos.SOURCE_EXECUTOR.Enum(), UUID: uuid, AgentID: &mesos.AgentID{Value: a.id}, Timestamp: proto.Float64(1),
	}})
	up := b.next("UPDATE")
	if str(up, "update", "status", "uuid") != base64.StdEncoding.EncodeToString(uuid) || str(up, "update", "status", "state") != "TASK_STARTING" {
		t.Fatalf("resent update %v", up)
	}
}

// TestDisconnectClearsFilters: Mesos' allocator drops an inactive
// framework's refusal filters, so a re-subscribed scheduler gets offers at
// once; SUBSCRIBE's suppressed_roles replace the suppressed set.
func TestDisconnectClearsFilters(t *testing.T) {
	c := newTestCluster(t, testConfig())
	c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"f","failover_timeout":30,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":600}}`))
	s.quiet(200 * time.Millisecond)
	s.close()
	waitUntil(t, "disconnect", func() bool { return c.callOn(s, "REVIVE", "").status == 403 })
	// Without the filter the offer comes back at once, not in 600 s.
	b := c.subscribe(resubscribeBody(s.fid, "f", "30"))
	b.fid = s.fid
	b.next("SUBSCRIBED")
	b.offers()

	// A re-subscription with suppressed_roles gets nothing until REVIVE.
	cs := c.subscribe(`{"type":"SUBSCRIBE","framework_id":{"value":"` + s.fid + `"},"subscribe":{"framework_info":{"user":"root","name":"f","id":{"value":"` + s.fid + `"},"failover_timeout":30,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]},"suppressed_roles":["*"]}}`)
	cs.fid = s.fid
	cs.next("SUBSCRIBED")
	cs.quiet(300 * time.Millisecond)
	cs.expectStatus(202, c.callOn(cs, "REVIVE", ""))
	cs.offers()
}
