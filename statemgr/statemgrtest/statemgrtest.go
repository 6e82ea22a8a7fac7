// Package statemgrtest starts the real state store for tests of any
// package: an embedded etcd in the test's temporary directory and, on it, a
// Store that is already the elected leader. Everything is stopped by the
// test's cleanup.
package statemgrtest

import (
	"context"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/statemgr"
)

// Framework is the framework name NewStore uses.
const Framework = "test"

// StartEtcd starts an embedded etcd with its data in a fresh t.TempDir()
// and stops it when the test ends.
func StartEtcd(t testing.TB) *statemgr.Embedded {
	t.Helper()
	return StartEtcdIn(t, t.TempDir())
}

// StartEtcdIn is StartEtcd with a given data directory, e.g. to restart on
// the data of an earlier server.
func StartEtcdIn(t testing.TB, dir string) *statemgr.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := statemgr.StartEmbedded(ctx, dir)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close embedded etcd: %v", err)
		}
	})
	return e
}

// NewStore starts an embedded etcd and returns a Store of Framework on it
// that has won the leader election, so it can write at once.
func NewStore(t testing.TB, opts ...statemgr.Option) *statemgr.Store {
	t.Helper()
	return NewLeader(t, StartEtcd(t), opts...)
}

// NewLeader returns a Store of Framework on e that has won the leader
// election. It waits at most 30 s for the election.
func NewLeader(t testing.TB, e *statemgr.Embedded, opts ...statemgr.Option) *statemgr.Store {
	t.Helper()
	s := NewFollower(t, e, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Campaign(ctx); err != nil {
		t.Fatalf("campaign: %v", err)
	}
	return s
}

// NewFollower returns a Store of Framework on e that has not campaigned: it
// reads (and follows others' writes) but cannot write.
func NewFollower(t testing.TB, e *statemgr.Embedded, opts ...statemgr.Option) *statemgr.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := statemgr.New(ctx, e.Client(), Framework, opts...)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}
