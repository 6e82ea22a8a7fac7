package master

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func taskJSON(id, agent, resources, extra string) string {
	return `{"name":"` + id + `","task_id":{"value":"` + id + `"},"agent_id":{"value":"` + agent + `"},"resources":` + resources + extra + `}`
}

const smallResources = `[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}]`

func acceptTasks(offer string, tasks ...string) string {
	return `"accept":{"offer_ids":[{"value":"` + offer + `"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[` + strings.Join(tasks, ",") + `]}}],"filters":{"refuse_seconds":0}}`
}

// TestLaunchValidation: every invalid task gets TASK_ERROR with
// REASON_TASK_INVALID and Mesos' message; the valid ones still launch.
func TestLaunchValidation(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("validation", "")
	o := s.offers()[0]
	cmd := `,"command":{"value":"true"}`
	exec := `,"executor":{"executor_id":{"value":"e1"},"command":{"value":"./exec"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.05}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}]}`
	cases := []struct{ task, msg string }{
		{taskJSON("", a.id, smallResources, cmd), "ID must not be empty"},
		{taskJSON("..", a.id, smallResources, cmd), "'..' is disallowed"},
		{taskJSON("a/b", a.id, smallResources, cmd), "'a/b' contains invalid characters"},
		{taskJSON("wrong-agent", "other", smallResources, cmd), "Task uses invalid agent other while agent " + a.id + " is expected"},
		{taskJSON("no-resources", a.id, `[]`, cmd), "Task uses no resources"},
		{taskJSON("both", a.id, smallResources, cmd+exec), "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"},
		{taskJSON("neither", a.id, smallResources, ""), "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"},
		{taskJSON("too-big", a.id, `[{"name":"cpus","type":"SCALAR","scalar":{"value":100}}]`, cmd),
			"Total resources cpus(allocated: *):100 required by task and its executor is more than available cpus(allocated: *):2; mem(allocated: *):2048; disk(allocated: *):4096; ports(allocated: *):[31000-31099]"},
		{taskJSON("bad-kill", a.id, smallResources, cmd+`,"kill_policy":{"grace_period":{"nanoseconds":-1}}`), "Task's 'kill_policy.grace_period' must be non-negative"},
		{taskJSON("bad-env", a.id, smallResources, `,"command":{"value":"true","environment":{"variables":[{"name":"X"}]}}`), "Task's `CommandInfo` is invalid: Environment variable 'X' of type 'VALUE' must have a value set"},
		{taskJSON("no-exec-cmd", a.id, smallResources, `,"executor":{"executor_id":{"value":"e2"},"type":"CUSTOM"}`), "'ExecutorInfo.command' must be set for 'CUSTOM' executor"},
		{taskJSON("default-exec", a.id, smallResources, `,"executor":{"executor_id":{"value":"e3"},"type":"DEFAULT"}`), "'ExecutorInfo.type' must be 'CUSTOM'"},
	}
	var tasks []string
	for _, tc := range cases {
		tasks = append(tasks, tc.task)
	}
	tasks = append(tasks, taskJSON("good", a.id, smallResources, cmd))
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o), tasks...)))
	for _, tc := range cases {
		f := s.next("UPDATE")
		st := path(f, "update", "status")
		if str(st, "state") != "TASK_ERROR" || str(st, "reason") != "REASON_TASK_INVALID" || str(st, "message") != tc.msg {
			t.Errorf("got %s %s %q\nwant TASK_ERROR REASON_TASK_INVALID %q", str(st, "state"), str(st, "reason"), str(st, "message"), tc.msg)
		}
		if str(st, "source") != "SOURCE_MASTER" || path(st, "uuid") != nil {
			t.Errorf("TASK_ERROR must come from the master without uuid: %v", f)
		}
	}
	a.waitFor(t, "RunTask good")
	if a.has("RunTask both") || a.has("RunTask too-big") {
		t.Fatal("an invalid task was launched")
	}

	// Duplicate ID of a live task.
	o = s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o), taskJSON("good", a.id, smallResources, cmd))))
	f := s.next("UPDATE")
	if got := str(f, "update", "status", "message"); got != "Task has duplicate ID: good" {
		t.Fatalf("duplicate: %q", got)
	}

	// An invalid resource fails every task of the operation.
	o = s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o),
		taskJSON("r1", a.id, `[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]`, cmd),
		taskJSON("r2", a.id, smallResources, cmd))))
	for _, id := range []string{"r1", "r2"} {
		f := s.next("UPDATE")
		if str(f, "update", "status", "task_id", "value") != id || str(f, "update", "status", "state") != "TASK_ERROR" {
			t.Fatalf("invalid resource: %v", f)
		}
	}
}

// TestCustomExecutor: executor resources are charged once, offers list
// live executors, a live executor needs an identical ExecutorInfo, and its
// exit is a FAILURE with the status (command executors give none).
func TestCustomExecutor(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("custom", "")
	o := s.offers()[0]
	exec := `,"executor":{"type":"CUSTOM","executor_id":{"value":"recexec"},"name":"recexec","command":{"value":"/bin/exec","shell":true},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.05}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}]}`
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o), taskJSON("task-1", a.id, smallResources, exec))))
	a.waitFor(t, "RunTask task-1")
	a.mu.Lock()
	e := a.execs[0]
	a.mu.Unlock()
	if e == nil || e.GetFrameworkID().GetValue() != s.fid || e.Resources[0].GetAllocationInfo().GetRole() != "*" {
		t.Fatalf("executor sent to the agent %v: want framework_id and allocation_info injected", e)
	}
	o = s.offers()[0]
	if got := offerCPUs(o); got != 1.85 {
		t.Fatalf("offer after first launch: %v cpus, want 1.85 (task and executor charged)", got)
	}
	if ids := path(o, "executor_ids").([]any); len(ids) != 1 || str(ids[0], "value") != "recexec" {
		t.Fatalf("executor_ids %v", path(o, "executor_ids"))
	}
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o), taskJSON("task-2", a.id, smallResources, exec))))
	a.waitFor(t, "RunTask task-2")
	o = s.offers()[0]
	if got := offerCPUs(o); got != 1.75 {
		t.Fatalf("offer after second launch: %v cpus, want 1.75 (executor not charged twice)", got)
	}
	// A different ExecutorInfo under the same ID is refused.
	other := strings.Replace(exec, "/bin/exec", "/bin/other", 1)
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o), taskJSON("task-3", a.id, smallResources, other))))
	f := s.next("UPDATE")
	if !strings.HasPrefix(str(f, "update", "status", "message"), "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.") {
		t.Fatalf("incompatible executor: %v", f)
	}

	// MESSAGE both ways.
	s.expectStatus(202, c.callOn(s, "MESSAGE", `"message":{"agent_id":{"value":"`+a.id+`"},"executor_id":{"value":"recexec"},"data":"aGVsbG8="}`))
	a.waitFor(t, "FrameworkMessage recexec hello")
	c.m.ExecutorMessage(mesos.AgentID{Value: a.id}, mesos.FrameworkID{Value: s.fid}, mesos.ExecutorID{Value: "recexec"}, []byte("echo"))
	m := s.next("MESSAGE")
	if str(m, "message", "executor_id", "value") != "recexec" || str(m, "message", "data") != "ZWNobw==" || str(m, "message", "agent_id", "value") != a.id {
		t.Fatalf("MESSAGE %v", m)
	}

	// SHUTDOWN is forwarded.
	s.expectStatus(202, c.callOn(s, "SHUTDOWN", `"shutdown":{"executor_id":{"value":"recexec"},"agent_id":{"value":"`+a.id+`"}}`))
	a.waitFor(t, "ShutdownExecutor recexec")

	// The executor exits (status 0): FAILURE with executor_id and status.
	c.m.ExecutorExited(mesos.AgentID{Value: a.id}, mesos.FrameworkID{Value: s.fid}, mesos.ExecutorID{Value: "recexec"}, 0)
	fail := s.next("FAILURE")
	if str(fail, "failure", "executor_id", "value") != "recexec" || fmt.Sprint(path(fail, "failure", "status")) != "0" {
		t.Fatalf("FAILURE %v", fail)
	}
	// A command executor's exit is not reported.
	c.m.ExecutorExited(mesos.AgentID{Value: a.id}, mesos.FrameworkID{Value: s.fid}, mesos.ExecutorID{Value: "cmd"}, 0)
	s.quiet(100*time.Millisecond, "OFFERS")
}

// TestUnsupportedOperations: GROW_VOLUME and SHRINK_VOLUME are refused
// with 501, naming the operation, and nothing changes.
func TestUnsupportedOperations(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("reserve", "")
	o := s.offers()[0]
	for _, op := range []string{"GROW_VOLUME", "SHRINK_VOLUME"} {
		body := `"accept":{"offer_ids":[{"value":"` + offerID(o) + `"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[]}},{"type":"` + op + `"}]}`
		r := c.callOn(s, "ACCEPT", body)
		if r.status != http.StatusNotImplemented || !strings.Contains(r.body, "does not support the "+op+" offer operation") {
			t.Fatalf("%s: %d %q", op, r.status, r.body)
		}
	}
	// The offer is still valid.
	s.expectStatus(202, c.callOn(s, "ACCEPT", acceptTasks(offerID(o), taskJSON("t", a.id, smallResources, `,"command":{"value":"true"}`))))
	a.waitFor(t, "RunTask t")
}

// TestOfferFormats: the resource format follows the framework's
// capabilities, as recorded in the transcripts.
func TestOfferFormats(t *testing.T) {
	for _, tc := range []struct {
		name       string
		caps       string
		role       bool
		allocation bool
	}{
		{"MULTI_ROLE", `[{"type":"MULTI_ROLE"}]`, true, true},
		{"RESERVATION_REFINEMENT", `[{"type":"RESERVATION_REFINEMENT"}]`, false, false},
		{"both", `[{"type":"MULTI_ROLE"},{"type":"RESERVATION_REFINEMENT"}]`, false, true},
		{"none", `[]`, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, testConfig())
			c.addAgent(0)
			roles := `"role":"*"`
			if strings.Contains(tc.caps, "MULTI_ROLE") {
				roles = `"roles":["*"]`
			}
			s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"fmt",` + roles + `,"capabilities":` + tc.caps + `}}}`)
			s.next("SUBSCRIBED")
			o := s.offers()[0]
			if (path(o, "allocation_info") != nil) != tc.allocation {
				t.Errorf("offer allocation_info %v", path(o, "allocation_info"))
			}
			for _, r := range path(o, "resources").([]any) {
				if (str(r, "role") == "*") != tc.role {
					t.Errorf("resource role %v", r)
				}
				if (path(r, "allocation_info") != nil) != tc.allocation {
					t.Errorf("resource allocation_info %v", r)
				}
				if path(r, "reservations") != nil {
					t.Errorf("unreserved resource with reservations %v", r)
				}
			}
			if str(o, "hostname") != "127.0.0.1" || str(o, "url", "path") != "/slave(1)" {
				t.Errorf("offer %v", o)
			}
		})
	}
}

// TestLaunchGroup: all tasks of a group launch together or none does; a
// group for the DEFAULT executor, which localmesos does not have, is
// refused with 501 and changes nothing.
func TestLaunchGroup(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("group", "")
	o := s.offers()[0]
	resources := `"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32}},{"name":"disk","type":"SCALAR","scalar":{"value":32}}]`
	executor := `{"type":"DEFAULT","executor_id":{"value":"default"},"framework_id":{"value":"` + s.fid + `"},` + resources + `}`
	group := func(offer string, tasks ...string) string {
		return `"accept":{"offer_ids":[{"value":"` + offer + `"}],"operations":[{"type":"LAUNCH_GROUP","launch_group":{"executor":` + executor + `,"task_group":{"tasks":[` + strings.Join(tasks, ",") + `]}}}],"filters":{"refuse_seconds":0}}`
	}
	cmd := `,"command":{"value":"true"}`
	s.expectStatus(501, c.callOn(s, "ACCEPT", group(offerID(o), taskJSON("d1", a.id, smallResources, cmd))))
	// Nothing changed: the offer is still outstanding and can be used.
	executor = `{"type":"CUSTOM","executor_id":{"value":"custom"},"framework_id":{"value":"` + s.fid + `"},"command":{"value":"true"},` + resources + `}`
	s.expectStatus(202, c.callOn(s, "ACCEPT", group(offerID(o),
		taskJSON("g1", a.id, smallResources, cmd), taskJSON("g2", a.id, `[]`, cmd))))
	for range 2 {
		f := s.next("UPDATE")
		if str(f, "update", "status", "reason") != "REASON_TASK_GROUP_INVALID" || str(f, "update", "status", "message") != "Task 'g2' is invalid: Task uses no resources" {
			t.Fatalf("group refusal %v", f)
		}
	}
	o = s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", group(offerID(o),
		taskJSON("g1", a.id, smallResources, cmd), taskJSON("g2", a.id, smallResources, cmd))))
	a.waitFor(t, "RunTaskGroup g1,g2")
	o = s.offers()[0]
	if got := offerCPUs(o); got != 1.7 {
		t.Fatalf("after the group: %v cpus, want 1.7", got)
	}
}

// TestFairness: frameworks with equal shares take turns (Mesos' DRF
// sorter breaks ties by the number of allocations made).
func TestFairness(t *testing.T) {
	c := newTestCluster(t, testConfig())
	c.addAgent(0)
	s1 := c.subscribeFramework("one", "")
	o := s1.offers()[0]
	s2 := c.subscribeFramework("two", "")
	s1.expectStatus(202, c.callOn(s1, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":0}}`))
	o = s2.offers()[0]
	s2.expectStatus(202, c.callOn(s2, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":0}}`))
	o = s1.offers()[0]
	s1.expectStatus(202, c.callOn(s1, "DECLINE", `"decline":{"offer_ids":[{"value":"`+offerID(o)+`"}],"filters":{"refuse_seconds":0}}`))
	s2.offers()
}
