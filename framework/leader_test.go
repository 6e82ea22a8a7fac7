package framework_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// TestLeadership runs two schedulers of one framework on one etcd: the
// second waits while the first leads (its API is not served), takes over
// when the first stops, and finds the instance as it was (same attempts).
// When its own leadership ends behind its back (its lease revoked, as an
// expired one would be), it does not stop: it campaigns, leads again, the
// tasks are the same attempts, and a new create completes.
func TestLeadership(t *testing.T) {
	etcd := statemgrtest.StartEtcd(t)
	cluster := startCluster(t, 3)
	config := func() framework.Config {
		cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
		cfg.Etcd = strings.Join(etcd.Endpoints(), ",")
		cfg.EtcdUser, cfg.EtcdPasswordFile = statemgr.EmbeddedUser, etcd.PasswordFile()
		return cfg
	}
	w := testworkload.New()
	first := runScheduler(t, config(), w)
	call(t, http.MethodPost, first.api+"/v1/instances", createBody("kept", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)

	standby := startScheduler(t, config(), w)
	before := waitRunning(t, first.api, "kept")
	if standby.serving() {
		t.Fatalf("the standby serves the API at %s while the first scheduler leads", standby.api)
	}

	if err := first.stop(); err != nil {
		t.Fatalf("first scheduler: %v", err)
	}
	standby.waitHealthy(t)
	after := waitRunning(t, standby.api, "kept")
	sameAttempts(t, before, after)

	// End the standby's term behind its back, as an expired lease would.
	leases, err := etcd.Client().Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Leases {
		if _, err := etcd.Client().Revoke(context.Background(), l.ID); err != nil {
			t.Fatal(err)
		}
	}
	revoked := map[int64]bool{}
	for _, l := range leases.Leases {
		revoked[int64(l.ID)] = true
	}
	eventually(t, "a new lease: the scheduler campaigned again", func() (bool, string) {
		select {
		case <-standby.stopped:
			t.Fatalf("the scheduler stopped after losing its leadership: %v", standby.err)
		default:
		}
		now, err := etcd.Client().Leases(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, l := range now.Leases {
			if !revoked[int64(l.ID)] {
				return true, ""
			}
		}
		return false, fmt.Sprintf("leases %v", now.Leases)
	})
	standby.waitHealthy(t)
	sameAttempts(t, before, waitRunning(t, standby.api, "kept"))
	call(t, http.MethodPost, standby.api+"/v1/instances", createBody("later", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	waitRunning(t, standby.api, "later")
}

// sameAttempts fails the test if a task of after is another attempt than
// the same ordinal in before.
func sameAttempts(t *testing.T, before, after *stateful.Instance) {
	t.Helper()
	for i, task := range after.Tasks {
		if task.TaskID != before.Tasks[i].TaskID {
			t.Errorf("%s relaunched: %s → %s", task.Name, before.Tasks[i].TaskID, task.TaskID)
		}
	}
}

// TestEmbeddedRestart stops a --master=local framework and starts it again
// on the same data directory: the embedded cluster is new (its tasks died
// with the old one), and the framework relaunches the instance it finds in
// its state.
func TestEmbeddedRestart(t *testing.T) {
	dataDir := t.TempDir()
	cfg := testConfig(t, "local", dataDir)
	cfg.LocalAgents = 1
	w := testworkload.New()
	s := runScheduler(t, cfg, w)
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("again", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	before := waitRunning(t, s.api, "again")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s = runScheduler(t, cfg, w)
	var after *stateful.Instance
	eventually(t, "again relaunched", func() (bool, string) {
		after = waitRunning(t, s.api, "again")
		return after.Tasks[0].Attempt > before.Tasks[0].Attempt, describe(after)
	})
}
