package statemgr_test

import (
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// TestStaleWhenEtcdIsGone: a Store whose etcd stops answering says its
// cache is stale within a fraction of the session TTL, keeps serving reads
// from it, and tells since when nothing was confirmed.
func TestStaleWhenEtcdIsGone(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e, statemgr.WithSessionTTL(time.Second))
	if err := s.SetFrameworkID(t.Context(), "fw-1"); err != nil {
		t.Fatal(err)
	}
	if s.Stale() {
		t.Fatal("stale while etcd answers")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for !s.Stale() {
		if time.Now().After(deadline) {
			t.Fatalf("not stale 30 s after etcd stopped (confirmed %v)", s.Confirmed())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := s.Confirmed(); c.After(stopped) {
		t.Errorf("confirmed at %v, after etcd stopped at %v", c, stopped)
	}
	if got := s.FrameworkID(); got != "fw-1" {
		t.Errorf("the cache serves %q, want fw-1", got)
	}
}
