package framework_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// TestLeadership runs two schedulers of one framework on one etcd: the
// second waits while the first leads (its API is not served), takes over
// when the first stops, finds the instance as it was (same attempts), and
// stops with ErrLeadershipLost when its own leadership ends.
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
	for i, task := range after.Tasks {
		if task.TaskID != before.Tasks[i].TaskID {
			t.Errorf("%s relaunched by the takeover: %s → %s", task.Name, before.Tasks[i].TaskID, task.TaskID)
		}
	}

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
	select {
	case <-standby.stopped:
		if !errors.Is(standby.err, framework.ErrLeadershipLost) {
			t.Errorf("Run returned %v, want ErrLeadershipLost", standby.err)
		}
		standby.err = nil // checked: the cleanup's stop must not report it
	case <-time.After(stepTimeout):
		t.Fatal("the scheduler kept running after losing its leadership")
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
