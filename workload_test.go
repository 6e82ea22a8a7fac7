package stateful

import (
	"context"
	"errors"
	"testing"
)

func TestChooseSuccessor(t *testing.T) {
	lost := &Task{Instance: "db", Ordinal: 0, Role: RoleMaster, State: TaskLost}
	slave := func(n int, state TaskState, healthy bool, offset string) *Task {
		t := &Task{Instance: "db", Ordinal: n, Role: RoleSlave, State: state, Healthy: healthy}
		if offset != "" {
			t.Stats = map[string]string{StatReplicationOffset: offset}
		}
		return t
	}
	tests := []struct {
		name  string
		tasks []*Task
		want  int // ordinal, -1 for none
	}{
		{"no slaves", []*Task{lost}, -1},
		{"no running slave", []*Task{lost, slave(1, TaskStaging, false, ""), slave(2, TaskFailed, false, "")}, -1},
		{"only running slave", []*Task{lost, slave(1, TaskStaging, true, "9"), slave(2, TaskRunning, false, "")}, 2},
		{"healthy beats offset", []*Task{slave(1, TaskRunning, false, "100"), slave(2, TaskRunning, true, "1")}, 2},
		{"largest offset", []*Task{slave(1, TaskRunning, true, "10"), slave(2, TaskRunning, true, "30"), slave(3, TaskRunning, true, "20")}, 2},
		{"missing offset counts least", []*Task{slave(1, TaskRunning, true, ""), slave(2, TaskRunning, true, "0")}, 2},
		{"garbage offset counts least", []*Task{slave(1, TaskRunning, true, "lots"), slave(2, TaskRunning, true, "0")}, 2},
		{"tie goes to smallest ordinal", []*Task{slave(3, TaskRunning, true, "5"), slave(1, TaskRunning, true, "5")}, 1},
		{"lost ordinal never chosen", []*Task{{Instance: "db", Ordinal: 0, Role: RoleSlave, State: TaskRunning, Healthy: true}}, -1},
		{"masters and peers never chosen", []*Task{{Instance: "db", Ordinal: 4, Role: RolePeer, State: TaskRunning}}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ChooseSuccessor(tc.tasks, lost)
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("chose ordinal %d, want none", got.Ordinal)
			case tc.want >= 0 && (got == nil || got.Ordinal != tc.want):
				t.Fatalf("chose %+v, want ordinal %d", got, tc.want)
			}
		})
	}
}

// recordingHandle implements Handle for the policy test, recording promotions.
type recordingHandle struct {
	tasks    []*Task
	promoted []int
	err      error
}

func (h *recordingHandle) Tasks(*Instance) []*Task { return h.tasks }
func (h *recordingHandle) Exec(context.Context, *Task, []string) (ExecResult, error) {
	return ExecResult{}, errors.New("not used")
}
func (h *recordingHandle) Promote(_ context.Context, _ *Instance, t *Task) error {
	h.promoted = append(h.promoted, t.Ordinal)
	return h.err
}
func (h *recordingHandle) Relaunch(context.Context, *Task) error { return errors.New("not used") }

func TestDefaultMasterLost(t *testing.T) {
	ctx := context.Background()
	lost := &Task{Instance: "db", Ordinal: 0, Role: RoleMaster, State: TaskFailed}
	tasks := []*Task{lost,
		{Instance: "db", Ordinal: 1, Role: RoleSlave, State: TaskRunning, Healthy: true},
		{Instance: "db", Ordinal: 2, Role: RoleSlave, State: TaskRunning, Healthy: true, Stats: map[string]string{StatReplicationOffset: "7"}},
	}

	h := &recordingHandle{tasks: tasks}
	ms := &Instance{Name: "db", Type: TypeMasterSlave, Masters: 1, Slaves: 2}
	if err := (BaseWorkload{}).MasterLost(ctx, h, ms, lost); err != nil {
		t.Fatal(err)
	}
	if len(h.promoted) != 1 || h.promoted[0] != 2 {
		t.Fatalf("promoted %v, want [2]", h.promoted)
	}

	h = &recordingHandle{tasks: tasks, err: errors.New("conflict")}
	if err := DefaultMasterLost(ctx, h, ms, lost); err == nil {
		t.Fatal("a failed promotion must be returned so the callback is retried")
	}

	for _, inst := range []*Instance{
		{Name: "db", Type: TypeSingle, Masters: 1},
		{Name: "db", Type: TypeCluster, Masters: 3},
	} {
		h = &recordingHandle{tasks: tasks}
		if err := DefaultMasterLost(ctx, h, inst, lost); err != nil || len(h.promoted) != 0 {
			t.Fatalf("type %s: promoted %v, err %v; want nothing", inst.Type, h.promoted, err)
		}
	}

	h = &recordingHandle{tasks: []*Task{lost}}
	if err := DefaultMasterLost(ctx, h, ms, lost); err != nil || len(h.promoted) != 0 {
		t.Fatalf("no slave: promoted %v, err %v; want nothing (relaunch in place)", h.promoted, err)
	}

	// A retry after a successful promotion: ordinal 2 already holds the
	// master role, so nothing more is promoted.
	promoted := []*Task{
		{Instance: "db", Ordinal: 0, Role: RoleSlave, State: TaskFailed},
		{Instance: "db", Ordinal: 1, Role: RoleSlave, State: TaskRunning, Healthy: true, Stats: map[string]string{StatReplicationOffset: "9"}},
		{Instance: "db", Ordinal: 2, Role: RoleMaster, State: TaskRunning, Healthy: true},
	}
	h = &recordingHandle{tasks: promoted}
	if err := DefaultMasterLost(ctx, h, ms, lost); err != nil || len(h.promoted) != 0 {
		t.Fatalf("retry after promotion: promoted %v, err %v; want nothing", h.promoted, err)
	}
}

func TestBaseWorkloadDefaultsAreUsable(t *testing.T) {
	d := BaseWorkload{}.Defaults()
	s := Spec{Command: "sleep 1000"}.WithDefaults(d)
	if err := s.Validate(); err != nil {
		t.Fatalf("a request naming only a command is invalid with BaseWorkload defaults: %v", err)
	}
	if err := (Spec{}).WithDefaults(d).Validate(); err == nil {
		t.Fatal("BaseWorkload defaults name no image or command, so an empty request must be refused")
	}
}
