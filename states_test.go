package stateful

import (
	"testing"
	"time"
)

func TestTaskStates(t *testing.T) {
	tests := []struct {
		s                           TaskState
		terminal, launched, running bool
	}{
		{TaskQueued, false, false, false},
		{TaskStaging, false, true, false},
		{TaskStarting, false, true, false},
		{TaskRunning, false, true, true},
		{TaskKilling, false, true, false},
		{TaskFinished, true, false, false},
		{TaskFailed, true, false, false},
		{TaskKilled, true, false, false},
		{TaskError, true, false, false},
		{TaskLost, true, false, false},
		{TaskDropped, true, false, false},
		{TaskUnreachable, false, true, false},
		{TaskGone, true, false, false},
		{TaskGoneByOperator, true, false, false},
		{TaskUnknown, false, true, false},
	}
	if len(tests) != len(taskStates) {
		t.Fatalf("table covers %d states, package knows %d", len(tests), len(taskStates))
	}
	for _, tc := range tests {
		if got, err := ParseTaskState(string(tc.s)); err != nil || got != tc.s {
			t.Errorf("ParseTaskState(%q) = %q, %v", tc.s, got, err)
		}
		if tc.s.IsTerminal() != tc.terminal || tc.s.IsLaunched() != tc.launched || tc.s.IsRunning() != tc.running {
			t.Errorf("%s: terminal=%v launched=%v running=%v, want %v %v %v", tc.s,
				tc.s.IsTerminal(), tc.s.IsLaunched(), tc.s.IsRunning(), tc.terminal, tc.launched, tc.running)
		}
		if tc.s.IsQueued() != (tc.s == TaskQueued) {
			t.Errorf("%s: IsQueued wrong", tc.s)
		}
	}
	for _, bad := range []string{"", "RUNNING", "task_running", "TASK_RUNNING "} {
		if _, err := ParseTaskState(bad); err == nil {
			t.Errorf("ParseTaskState(%q) accepted it", bad)
		}
		if TaskState(bad).Valid() {
			t.Errorf("TaskState(%q).Valid()", bad)
		}
	}
}

func TestEnumsValid(t *testing.T) {
	for _, v := range []InstanceType{TypeSingle, TypeMasterSlave, TypeCluster} {
		if !v.Valid() {
			t.Errorf("%q invalid", v)
		}
	}
	for _, v := range []InstanceStatus{StatusCreating, StatusRunning, StatusDegraded, StatusDeleting} {
		if !v.Valid() {
			t.Errorf("%q invalid", v)
		}
	}
	for _, v := range []Role{RoleMaster, RoleSlave, RolePeer} {
		if !v.Valid() {
			t.Errorf("%q invalid", v)
		}
	}
	if InstanceType("ms").Valid() || InstanceStatus("running").Valid() || Role("Master").Valid() {
		t.Error("wrong-case values accepted")
	}
}

func TestInitialTasks(t *testing.T) {
	now := time.Now()
	tests := []struct {
		inst  Instance
		roles []Role
	}{
		{Instance{Name: "s", Type: TypeSingle, Masters: 1}, []Role{RoleMaster}},
		{Instance{Name: "ms", Type: TypeMasterSlave, Masters: 1, Slaves: 2, Generation: 3}, []Role{RoleMaster, RoleSlave, RoleSlave}},
		{Instance{Name: "c", Type: TypeCluster, Masters: 3}, []Role{RolePeer, RolePeer, RolePeer}},
	}
	for _, tc := range tests {
		tasks := tc.inst.InitialTasks(now)
		if len(tasks) != len(tc.roles) {
			t.Fatalf("%s: %d tasks, want %d", tc.inst.Name, len(tasks), len(tc.roles))
		}
		for i, task := range tasks {
			if task.Role != tc.roles[i] || task.Ordinal != i || task.State != TaskQueued ||
				task.Name != TaskName(tc.inst.Name, i) || task.Generation != tc.inst.Generation || !task.QueuedAt.Equal(now) {
				t.Errorf("%s task %d = %+v", tc.inst.Name, i, task)
			}
			if err := task.Validate(); err != nil {
				t.Errorf("%s task %d invalid: %v", tc.inst.Name, i, err)
			}
		}
	}
}

func TestRequeueAndNextTaskID(t *testing.T) {
	task := &Task{Instance: "db", Ordinal: 1, Name: "db-1", Role: RoleSlave, State: TaskFailed,
		TaskID: "db-1.2", Attempt: 2, AgentID: "a1", Host: "h1", Healthy: true,
		Ports: map[string]int{"p": 1}, Stats: map[string]string{"x": "y"}, Reason: "R", Message: "boom"}
	now := time.Now()
	task.Requeue(now)
	if task.State != TaskQueued || task.Healthy || task.AgentID != "" || task.Host != "" || task.Ports != nil ||
		task.Stats != nil || task.Reason != "" || !task.QueuedAt.Equal(now) {
		t.Fatalf("requeue left the old attempt: %+v", task)
	}
	if task.StickyAgentID != "a1" || task.StickyHost != "h1" {
		t.Fatalf("sticky agent = %q/%q, want a1/h1", task.StickyAgentID, task.StickyHost)
	}
	if id, n := task.NextTaskID(); id != "db-1.3" || n != 3 {
		t.Fatalf("NextTaskID = %q, %d", id, n)
	}
	// A second requeue before any launch keeps the sticky agent.
	task.Requeue(now)
	if task.StickyAgentID != "a1" {
		t.Fatalf("sticky agent lost: %+v", task)
	}
}
