package master

import (
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// TestAgentLoss replays agent-loss.jsonl's four scenarios: RESCIND at once;
// TASK_LOST "Agent <host> disconnected" at once for frameworks that do not
// checkpoint; after the ping timeout TASK_LOST/TASK_UNREACHABLE "health
// check timed out" with unreachable_time, then FAILURE{agent_id}; later
// reconciliation and KILL answer "Task is unreachable", implicit
// reconciliation nothing.
func TestAgentLoss(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pa, ckpt   bool
		state      string // after the ping timeout
		reconciled string
	}{
		{"not-partition-aware-checkpoint", false, true, "TASK_LOST", "TASK_LOST"},
		{"partition-aware-checkpoint", true, true, "TASK_UNREACHABLE", "TASK_UNREACHABLE"},
		{"not-partition-aware-nocheckpoint", false, false, "", "TASK_LOST"},
		{"partition-aware-nocheckpoint", true, false, "", "TASK_UNREACHABLE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, testConfig())
			a := c.addAgent(0)
			caps := `[{"type":"MULTI_ROLE"}]`
			if tc.pa {
				caps = `[{"type":"MULTI_ROLE"},{"type":"PARTITION_AWARE"}]`
			}
			ckpt := "false"
			if tc.ckpt {
				ckpt = "true"
			}
			s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"loss","failover_timeout":60,"checkpoint":` + ckpt + `,"roles":["*"],"capabilities":` + caps + `}}}`)
			s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
			o := s.offers()[0]
			s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "sleeper", a.id)))
			a.waitFor(t, "RunTask sleeper")
			c.sendUpdate(a.id, s.fid, "sleeper", mesos.TASK_RUNNING, mesos.TASK_RUNNING, "sleeper")
			s.next("UPDATE")
			kept := s.offers()[0] // the leftovers, kept outstanding

			c.m.AgentDisconnected(mesos.AgentID{Value: a.id})
			f := s.next("RESCIND")
			if str(f, "rescind", "offer_id", "value") != offerID(kept) {
				t.Fatalf("RESCIND %v, want offer %s", f, offerID(kept))
			}
			if !tc.ckpt {
				checkUpdate(t, s.next("UPDATE"), "sleeper", "TASK_LOST", "REASON_AGENT_DISCONNECTED", "Agent 127.0.0.1 disconnected", a.id)
			}
			if tc.state != "" {
				up := s.next("UPDATE")
				checkUpdate(t, up, "sleeper", tc.state, "REASON_AGENT_REMOVED", "health check timed out", a.id)
				if path(up, "update", "status", "unreachable_time", "nanoseconds") == nil {
					t.Fatalf("no unreachable_time: %v", up)
				}
			}
			fail := s.next("FAILURE")
			if str(fail, "failure", "agent_id", "value") != a.id || path(fail, "failure", "executor_id") != nil || path(fail, "failure", "status") != nil {
				t.Fatalf("FAILURE %v", fail)
			}

			for _, call := range []struct{ typ, body string }{
				{"RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"sleeper"},"agent_id":{"value":"` + a.id + `"}}]}`},
				{"KILL", `"kill":{"task_id":{"value":"sleeper"},"agent_id":{"value":"` + a.id + `"}}`},
			} {
				s.expectStatus(202, c.callOn(s, call.typ, call.body))
				up := s.next("UPDATE")
				checkUpdate(t, up, "sleeper", tc.reconciled, "REASON_RECONCILIATION", "Reconciliation: Task is unreachable", a.id)
				if path(up, "update", "status", "unreachable_time", "nanoseconds") == nil {
					t.Fatalf("%s answer without unreachable_time: %v", call.typ, up)
				}
			}
			s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[]}`))
			s.quiet(100 * time.Millisecond)

			// Status updates from the removed agent are ignored.
			c.sendUpdate(a.id, s.fid, "sleeper", mesos.TASK_FINISHED, mesos.TASK_FINISHED, "sleeper")
			s.quiet(100 * time.Millisecond)

			if tc.ckpt {
				// The agent comes back with the task: TASK_LOST was not
				// final.
				c.m.RegisterAgent(wire.Registration{
					Agent: a, Address: "127.0.0.1:5051", Reregistration: true,
					Info:       mesos.AgentInfo{ID: &mesos.AgentID{Value: a.id}, Hostname: "127.0.0.1", Resources: testAgentResources()},
					Frameworks: []mesos.FrameworkInfo{{ID: &mesos.FrameworkID{Value: s.fid}, User: "root", Name: "loss", Checkpoint: proto.Bool(true)}},
					Tasks: []mesos.Task{{Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper"}, FrameworkID: mesos.FrameworkID{Value: s.fid},
						AgentID: mesos.AgentID{Value: a.id}, State: mesos.TASK_RUNNING.Enum(), Resources: allocatedTo(launchResources(), "*")}},
				})
				checkUpdate(t, s.next("UPDATE"), "sleeper", "TASK_RUNNING", "REASON_AGENT_REREGISTERED", "Unreachable agent re-reregistered", a.id)
				s.expectStatus(202, c.callOn(s, "RECONCILE", `"reconcile":{"tasks":[]}`))
				checkUpdate(t, s.next("UPDATE"), "sleeper", "TASK_RUNNING", "REASON_RECONCILIATION", "Reconciliation: Latest task state", a.id)
				o := s.offers()[0]
				if offerCPUs(o) != 1.9 {
					t.Fatalf("offer after re-registration %v: the task's resources must be in use", o)
				}
			}
		})
	}
}

func launchResources() []mesos.Resource {
	return []mesos.Resource{
		{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}},
		{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 32}},
	}
}

// TestAgentReconnectsInTime: an agent that re-registers before the ping
// timeout keeps its tasks; a KILL sent while it was away is resent.
func TestAgentReconnectsInTime(t *testing.T) {
	cfg := testConfig()
	cfg.AgentPingTimeout = 5 * time.Second
	c := newTestCluster(t, cfg)
	a := c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"r","checkpoint":true,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "sleeper", a.id)))
	a.waitFor(t, "RunTask sleeper")
	s.offers()
	c.m.AgentDisconnected(mesos.AgentID{Value: a.id})
	s.next("RESCIND")
	s.expectStatus(202, c.callOn(s, "KILL", `"kill":{"task_id":{"value":"sleeper"}}`))
	s.quiet(100*time.Millisecond, "OFFERS")
	if a.has("KillTask") {
		t.Fatal("KILL sent to a disconnected agent")
	}
	c.m.RegisterAgent(wire.Registration{
		Agent: a, Address: "127.0.0.1:5051", Reregistration: true,
		Info:       mesos.AgentInfo{ID: &mesos.AgentID{Value: a.id}, Hostname: "127.0.0.1", Resources: testAgentResources()},
		Frameworks: []mesos.FrameworkInfo{{ID: &mesos.FrameworkID{Value: s.fid}, User: "root", Name: "r", Checkpoint: proto.Bool(true)}},
		Tasks: []mesos.Task{{Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper"}, FrameworkID: mesos.FrameworkID{Value: s.fid},
			AgentID: mesos.AgentID{Value: a.id}, State: mesos.TASK_RUNNING.Enum(), Resources: allocatedTo(launchResources(), "*")}},
	})
	a.waitFor(t, "KillTask sleeper")
	s.quiet(200*time.Millisecond, "OFFERS")
}

// TestMasterFailover: streams end without an event, the master gets a new
// ID, frameworks re-subscribe with their IDs, reconciliation is silent
// until the agent re-registers, and the agent's tasks come back.
func TestMasterFailover(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"mf","failover_timeout":60,"checkpoint":true,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"},{"type":"PARTITION_AWARE"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "sleeper", a.id)))
	a.waitFor(t, "RunTask sleeper")
	c.sendUpdate(a.id, s.fid, "sleeper", mesos.TASK_RUNNING, mesos.TASK_RUNNING, "sleeper")
	s.next("UPDATE")

	oldID := c.m.ID()
	c.m.Failover()
	s.ended()
	if c.m.ID() == oldID {
		t.Fatal("master ID unchanged after failover")
	}
	if r := c.callOn(s, "REVIVE", ""); r.status != 400 || r.body != "Framework cannot be found" {
		t.Fatalf("after failover: %d %q", r.status, r.body)
	}
	b := c.subscribe(`{"type":"SUBSCRIBE","framework_id":{"value":"` + s.fid + `"},"subscribe":{"framework_info":{"user":"root","name":"mf","id":{"value":"` + s.fid + `"},"failover_timeout":60,"checkpoint":true,"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"},{"type":"PARTITION_AWARE"}]}}}`)
	sub := b.next("SUBSCRIBED")
	b.fid = str(sub, "subscribed", "framework_id", "value")
	if b.fid != s.fid || str(sub, "subscribed", "master_info", "id") != c.m.ID() {
		t.Fatalf("SUBSCRIBED after failover %v", sub)
	}
	// The agent has not re-registered: no answer, with or without agent.
	b.expectStatus(202, c.callOn(b, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"sleeper"},"agent_id":{"value":"`+a.id+`"}}]}`))
	b.expectStatus(202, c.callOn(b, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"sleeper"}}]}`))
	b.quiet(200 * time.Millisecond)

	c.m.RegisterAgent(wire.Registration{
		Agent: a, Address: "127.0.0.1:5051", Reregistration: true,
		Info:       mesos.AgentInfo{ID: &mesos.AgentID{Value: a.id}, Hostname: "127.0.0.1", Resources: testAgentResources()},
		Frameworks: []mesos.FrameworkInfo{{ID: &mesos.FrameworkID{Value: s.fid}, User: "root", Name: "mf", Checkpoint: proto.Bool(true)}},
		Tasks: []mesos.Task{{Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper"}, FrameworkID: mesos.FrameworkID{Value: s.fid},
			AgentID: mesos.AgentID{Value: a.id}, State: mesos.TASK_RUNNING.Enum(), Resources: allocatedTo(launchResources(), "*")}},
	})
	b.expectStatus(202, c.callOn(b, "RECONCILE", `"reconcile":{"tasks":[{"task_id":{"value":"sleeper"}}]}`))
	checkUpdate(t, b.next("UPDATE"), "sleeper", "TASK_RUNNING", "REASON_RECONCILIATION", "Reconciliation: Latest task state", a.id)
	if cpus := offerCPUs(b.offers()[0]); cpus != 1.9 {
		t.Fatalf("offer after re-registration: %v cpus", cpus)
	}
}

// TestRecoveredFrameworkFromAgent: after a master failover, an agent's
// re-registration brings back a framework the master does not know; it
// can re-subscribe with its ID and its tasks are there.
func TestRecoveredFrameworkFromAgent(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	c.m.Failover()
	fid := "old-master-0000"
	c.m.RegisterAgent(wire.Registration{
		Agent: a, Address: "127.0.0.1:5051", Reregistration: true,
		Info:       mesos.AgentInfo{ID: &mesos.AgentID{Value: a.id}, Hostname: "127.0.0.1", Resources: testAgentResources()},
		Frameworks: []mesos.FrameworkInfo{{ID: &mesos.FrameworkID{Value: fid}, User: "root", Name: "rec", Roles: []string{"*"}, Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}}},
		Tasks: []mesos.Task{{Name: "t", TaskID: mesos.TaskID{Value: "t"}, FrameworkID: mesos.FrameworkID{Value: fid},
			AgentID: mesos.AgentID{Value: a.id}, State: mesos.TASK_RUNNING.Enum(), Resources: launchResources()}},
	})
	// Calls before re-subscribing: 403, the framework is known but not
	// subscribed.
	waitUntil(t, "recovered framework", func() bool {
		return c.post(`{"framework_id":{"value":"`+fid+`"},"type":"REVIVE"}`, nil).status == 403
	})
	b := c.subscribe(`{"type":"SUBSCRIBE","framework_id":{"value":"` + fid + `"},"subscribe":{"framework_info":{"user":"root","name":"rec","id":{"value":"` + fid + `"},"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	b.fid = str(b.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	b.expectStatus(202, c.callOn(b, "RECONCILE", `"reconcile":{"tasks":[]}`))
	checkUpdate(t, b.next("UPDATE"), "t", "TASK_RUNNING", "REASON_RECONCILIATION", "Reconciliation: Latest task state", a.id)
}
