package statemgrtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/backend"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/mesos-stateful/stateful/statemgr"
)

// NeverCommittedDir makes dir what a kill -9 during the very first start
// of an embedded etcd leaves when it lands after etcd created its WAL and
// database but before raft wrote anything: a WAL holding only its metadata
// (hard state {Term:0 Vote:0 Commit:0}, no entries), the file pipeline's
// preallocated 0.tmp, and an empty database. etcd restarts such a member
// with no cluster membership, so on its own it never becomes ready.
func NeverCommittedDir(t testing.TB, dir string) {
	t.Helper()
	writeWAL(t, dir, raftpb.HardState{}, nil)
}

// UnelectableDir makes dir a member that, like NeverCommittedDir, never
// becomes ready, but whose WAL holds an entry: not provably empty, so
// StartEmbedded must not repair it by itself.
func UnelectableDir(t testing.TB, dir string) {
	t.Helper()
	writeWAL(t, dir, raftpb.HardState{Term: 1}, []raftpb.Entry{{Term: 1, Index: 1, Type: raftpb.EntryNormal}})
}

// writeWAL writes dir/member as the embedded etcd lays it out, with the
// member and cluster IDs an embedded etcd on dir would have (read from a
// scratch server's WAL, so they match whatever StartEmbedded configures),
// and the given raft state.
func writeWAL(t testing.TB, dir string, hs raftpb.HardState, ents []raftpb.Entry) {
	t.Helper()
	lg := zap.NewNop()
	meta := embeddedMetadata(t)
	member := filepath.Join(dir, "member")
	if err := os.MkdirAll(filepath.Join(member, "snap"), 0o700); err != nil {
		t.Fatal(err)
	}
	be := backend.NewDefaultBackend(lg, filepath.Join(member, "snap", "db"))
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := wal.Create(lg, filepath.Join(member, "wal"), meta)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 || hs.Term != 0 || hs.Commit != 0 {
		if err := w.Save(hs, ents); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The pipeline's next segment, preallocated at the time of the kill
	// (Close above removed the one this WAL had allocated).
	if err := os.WriteFile(filepath.Join(member, "wal", "0.tmp"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
}

// embeddedMetadata returns the WAL metadata (member and cluster ID) of an
// embedded etcd, from a server started in a scratch directory.
func embeddedMetadata(t testing.TB) []byte {
	t.Helper()
	scratch := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := statemgr.StartEmbedded(ctx, scratch)
	if err != nil {
		t.Fatalf("start a scratch embedded etcd: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := wal.OpenForRead(zap.NewNop(), filepath.Join(scratch, "member", "wal"), walpb.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	meta, _, _, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return meta
}
