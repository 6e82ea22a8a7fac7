package statemgr_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// A kill -9 during the very first start can leave a member that never
// committed anything; the next start moves it aside and starts afresh.
func TestStartRepairsANeverCommittedMember(t *testing.T) {
	dir := t.TempDir()
	statemgrtest.NeverCommittedDir(t, dir)

	start := time.Now()
	e := statemgrtest.StartEtcdIn(t, dir)
	t.Logf("started in %v", time.Since(start).Round(time.Millisecond))

	// It serves: a write and a read.
	ctx := ctxT(t)
	if _, err := e.Client().Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put on the repaired etcd: %v", err)
	}
	// The old member is kept, renamed, for whoever wants to look.
	aside, err := filepath.Glob(filepath.Join(dir, "member.never-committed-*"))
	if err != nil || len(aside) != 1 {
		t.Fatalf("moved-aside members %v (%v), want exactly one", aside, err)
	}
	if _, err := os.Stat(filepath.Join(aside[0], "wal", "0.tmp")); err != nil {
		t.Errorf("the moved-aside member lost its files: %v", err)
	}
}

// A member that does not become ready and cannot be proved empty is not
// touched: the start fails within its deadline, naming the directory and
// what to do, and does not hang in stopping the half-started server.
func TestStartOfAnUnelectableMemberFailsInBoundedTime(t *testing.T) {
	dir := t.TempDir()
	statemgrtest.UnelectableDir(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	e, err := statemgr.StartEmbedded(ctx, dir)
	took := time.Since(start)
	if err == nil {
		e.Close()
		t.Fatal("StartEmbedded succeeded on a member with no cluster membership")
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
	// 3 s to become ready, and the half-started server stops at once
	// (not after the 15 s bound on a stop that hangs).
	if took > 8*time.Second {
		t.Errorf("StartEmbedded took %v to fail", took)
	}
	for _, want := range []string{dir, "move it aside", "etcd.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "did not stop") {
		t.Errorf("the half-started server did not stop: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "member.never-committed-*")); len(m) != 0 {
		t.Errorf("a member holding an entry was moved aside: %v", m)
	}
}

// A data directory whose database another process holds is refused at
// once; etcd itself would wait for the lock forever.
func TestStartOnADirectoryInUseFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	e := statemgrtest.StartEtcdIn(t, dir)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Stand in for another process: an flock on its own open file
	// description conflicts with any other, even in this process.
	f, err := os.Open(filepath.Join(dir, "member", "snap", "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	e2, err := statemgr.StartEmbedded(ctxT(t), dir)
	if err == nil {
		e2.Close()
		t.Fatal("StartEmbedded succeeded on a directory whose database is locked")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to fail", took)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("error %q does not name the directory and the cause", err)
	}
}
