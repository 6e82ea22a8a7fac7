package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

func (m *execMaster) nextOperationUpdate(t testing.TB) wire.OperationUpdate {
	t.Helper()
	return nextRecord(t, m, "an operation status", "op", func() []wire.OperationUpdate { return m.opUpdates })
}

// testVolume is disk reserved for role by ops and made volume id, in the
// master's (legacy) format.
func testVolume(role, id string) mesos.Resource {
	return mesos.Resource{
		Name: "disk", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 16},
		Role:        proto.String(role),
		Reservation: &mesos.Resource_ReservationInfo{Principal: proto.String("ops")},
		Disk: &mesos.Resource_DiskInfo{
			Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id, Principal: proto.String("ops")},
			Volume:      &mesos.Volume{ContainerPath: "data", Mode: mesos.RW.Enum()},
		},
	}
}

// TestApplyOperationCheckpoints: a CREATE makes the volume directory
// (a hierarchical role's slash written as a space) and is checkpointed
// before OPERATION_FINISHED goes out; a new agent process on the same work
// dir, even under a new agent ID, registers with the checkpointed
// resources; a DESTROY removes the directory with its data.
func TestApplyOperationCheckpoints(t *testing.T) {
	h := newExecHarness(t, nil)
	vol := testVolume("db/sub", "vol-1")
	fid := mesos.FrameworkID{Value: "fw-1"}
	h.agent.ApplyOperation(wire.ApplyOperation{
		FrameworkID:  &fid,
		Operation:    mesos.Offer_Operation{Type: mesos.Offer_Operation_CREATE, ID: &mesos.OperationID{Value: "op-1"}},
		Checkpointed: []mesos.Resource{vol},
	})
	u := h.master.nextOperationUpdate(t)
	st := u.Status
	if u.FrameworkID.Value != "fw-1" || st.GetOperationID().GetValue() != "op-1" || st.State != mesos.OPERATION_FINISHED ||
		len(st.GetUUID().GetValue()) != 16 || st.GetAgentID().GetValue() != h.agent.ID().Value {
		t.Fatalf("operation status %+v", u)
	}
	dir := filepath.Join(h.workDir, "volumes", "roles", "db sub", "vol-1")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644); err != nil {
		t.Fatalf("volume directory: %v", err)
	}

	// Another agent process on the same work dir (the first one is gone).
	h.agent.Close()
	m := newExecMaster()
	a, err := New(Config{ID: mesos.AgentID{Value: "new-id-S0"}, IP: "127.0.0.3", WorkDir: h.workDir}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	reg := m.nextRegistration(t)
	if len(reg.Checkpointed) != 1 || !proto.Equal(&reg.Checkpointed[0], &vol) {
		t.Fatalf("registration with checkpointed %v, want %v", reg.Checkpointed, vol)
	}

	// DESTROY, without an operation ID: no status, the data goes.
	a.ApplyOperation(wire.ApplyOperation{FrameworkID: &fid, Operation: mesos.Offer_Operation{Type: mesos.Offer_Operation_DESTROY}})
	execWaitFile(t, filepath.Join(h.workDir, "meta", "resources", "resources.json"), func(s string) bool { return !strings.Contains(s, "vol-1") })
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume directory after DESTROY: %v", err)
	}
	// An operation with an ID after it: its status is the first one.
	a.ApplyOperation(wire.ApplyOperation{FrameworkID: &fid, Operation: mesos.Offer_Operation{Type: mesos.Offer_Operation_UNRESERVE, ID: &mesos.OperationID{Value: "op-2"}}})
	if u := m.nextOperationUpdate(t); u.Status.GetOperationID().GetValue() != "op-2" {
		t.Errorf("first operation status is for %q, want op-2 (none for an operation without ID)", u.Status.GetOperationID().GetValue())
	}
}

// TestCorruptResourceCheckpoint: an agent refuses to start on a
// checkpoint it cannot read, naming the file, rather than registering
// without its reservations.
func TestCorruptResourceCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "meta", "resources", "resources.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{ID: mesos.AgentID{Value: "corrupt-S0"}, IP: "127.0.0.3", WorkDir: dir}, newExecMaster())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Start = %v, want an error naming %s", err, path)
	}
}

// TestCheckpointCrashPoints: a crash at any point of an operation on the
// agent (directories first, then the checkpoint written to a temporary
// file and renamed) leaves a work dir from which a new agent registers
// with either the old or the new set, never a mix or a doubled
// reservation, and with a directory for every volume it reports.
func TestCheckpointCrashPoints(t *testing.T) {
	reservedDisk := testVolume("db", "vol-1")
	reservedDisk.Disk = nil
	vol := testVolume("db", "vol-1")
	for _, tc := range []struct {
		name       string
		checkpoint []mesos.Resource // renamed into place
		temp       []mesos.Resource // written but not renamed (nil: none)
		dirs       []string         // volume directories on disk
		want       []mesos.Resource
		wantDirs   []string
	}{
		{"CREATE: after mkdir, before the checkpoint", []mesos.Resource{reservedDisk}, nil, []string{"vol-1"}, []mesos.Resource{reservedDisk}, nil},
		{"CREATE: temporary file written, not renamed", []mesos.Resource{reservedDisk}, []mesos.Resource{vol}, []string{"vol-1"}, []mesos.Resource{reservedDisk}, nil},
		{"CREATE: after the rename", []mesos.Resource{vol}, nil, []string{"vol-1"}, []mesos.Resource{vol}, []string{"vol-1"}},
		{"DESTROY: directory removed, checkpoint not yet written", []mesos.Resource{vol}, nil, nil, []mesos.Resource{vol}, []string{"vol-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writer := &Agent{cfg: Config{WorkDir: dir}}
			if err := writer.writeCheckpointedResources(tc.checkpoint); err != nil {
				t.Fatal(err)
			}
			if tc.temp != nil {
				b, _ := json.Marshal(checkpointFile{Resources: tc.temp})
				if err := os.WriteFile(filepath.Join(dir, "meta", "resources", "resources.json.tmp"), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(dir, "volumes", "roles", "db", d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m := newExecMaster()
			a, err := New(Config{ID: mesos.AgentID{Value: "crash-S0"}, IP: "127.0.0.3", WorkDir: dir}, m)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			reg := m.nextRegistration(t)
			if len(reg.Checkpointed) != len(tc.want) {
				t.Fatalf("registered with %v, want %v", reg.Checkpointed, tc.want)
			}
			for i := range tc.want {
				if !proto.Equal(&reg.Checkpointed[i], &tc.want[i]) {
					t.Errorf("registered with %v, want %v", reg.Checkpointed, tc.want)
				}
			}
			for _, d := range tc.wantDirs {
				if _, err := os.Stat(filepath.Join(dir, "volumes", "roles", "db", d)); err != nil {
					t.Errorf("volume directory %s: %v", d, err)
				}
			}
		})
	}
}
