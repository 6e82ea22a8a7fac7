package framework_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/httplib"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// outage is how long the etcd outage tests keep etcd away: ten leader
// TTLs of the test configuration, so the leadership surely lapses.
const outage = 20 * time.Second

// TestEtcdOutage runs a lone scheduler with the embedded Mesos cluster
// (--master=local) on an external etcd, which it stops for 20 s and then
// freezes (SIGSTOP) for 20 s. Throughout, the scheduler keeps running and
// its tasks too (the same processes), GET answers from the cache marked
// stale, a create is refused at once with a 503 JSON error, and the health
// check names the lost leadership; once etcd is back the scheduler leads
// again, reads are fresh and a create completes.
func TestEtcdOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps etcd away for 40 s")
	}
	etcd := startEtcdProcess(t)
	cfg := testConfig(t, "local", t.TempDir())
	cfg.Etcd = etcd.client
	s := runScheduler(t, cfg, testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("ha", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	before := waitRunning(t, s.api, "ha")
	pids := processesOf("ha")
	slices.Sort(pids)
	if len(pids) == 0 {
		t.Fatal("no process of ha found")
	}

	for _, fault := range []struct {
		name       string
		begin, end func()
	}{
		{"stopped", etcd.stop, etcd.start},
		{"frozen", etcd.freeze, etcd.thaw},
	} {
		t.Logf("etcd %s for %v", fault.name, outage)
		fault.begin()
		began := time.Now()

		eventually(t, "GET marked stale", func() (bool, string) {
			code, hdr, body := getWithHeaders(t, s.api+"/v1/instances/ha")
			return code == http.StatusOK && hdr.Get(httplib.HeaderStale) == "true" && hdr.Get(httplib.HeaderAsOf) != "",
				fmt.Sprintf("%d stale=%q as-of=%q %s", code, hdr.Get(httplib.HeaderStale), hdr.Get(httplib.HeaderAsOf), body)
		})
		sent := time.Now()
		code, body, err := do(http.MethodPost, s.api+"/v1/instances", createBody("during-"+fault.name, stateful.TypeSingle, 1, 0))
		took := time.Since(sent)
		var apiErr struct {
			Error string `json:"error"`
		}
		switch {
		case err != nil:
			t.Errorf("POST while etcd is %s: %v", fault.name, err)
		case code != http.StatusServiceUnavailable || json.Unmarshal(body, &apiErr) != nil || apiErr.Error == "":
			t.Errorf("POST while etcd is %s: %d %s, want 503 with a JSON error", fault.name, code, body)
		case took > 6*time.Second:
			t.Errorf("POST while etcd is %s took %v to be refused", fault.name, took)
		}

		leaderLost := false
		for time.Since(began) < outage {
			select {
			case <-s.stopped:
				t.Fatalf("the scheduler stopped while etcd was %s: %v", fault.name, s.err)
			default:
			}
			inst, code := get(t, s.api, "ha")
			if inst == nil {
				t.Fatalf("GET ha while etcd is %s: %d", fault.name, code)
			}
			sameAttempts(t, before, inst)
			if now := processesOf("ha"); !samePids(pids, now) {
				t.Fatalf("the processes of ha changed while etcd was %s: %v → %v", fault.name, pids, now)
			}
			code, hb, _ := do(http.MethodGet, s.api+"/v1/health", nil)
			if code == http.StatusServiceUnavailable && strings.Contains(string(hb), `"component":"leader"`) {
				leaderLost = true
			}
			time.Sleep(500 * time.Millisecond) // the outage's pace, not a synchronisation
		}
		if !leaderLost {
			t.Errorf("the health check never reported the lost leadership while etcd was %s", fault.name)
		}
		fault.end()

		s.waitHealthy(t)
		eventually(t, "GET fresh again", func() (bool, string) {
			code, hdr, body := getWithHeaders(t, s.api+"/v1/instances/ha")
			return code == http.StatusOK && hdr.Get(httplib.HeaderStale) == "", fmt.Sprintf("%d stale=%q %s", code, hdr.Get(httplib.HeaderStale), body)
		})
		name := "after-" + fault.name
		call(t, http.MethodPost, s.api+"/v1/instances", createBody(name, stateful.TypeSingle, 1, 0), http.StatusAccepted)
		waitRunning(t, s.api, name)
		sameAttempts(t, before, waitRunning(t, s.api, "ha"))
		if now := processesOf("ha"); !samePids(pids, now) {
			t.Errorf("the processes of ha changed after etcd was %s: %v → %v", fault.name, pids, now)
		}
		if _, code := get(t, s.api, "during-"+fault.name); code != http.StatusNotFound {
			t.Errorf("the create refused while etcd was %s exists: %d", fault.name, code)
		}
	}
}

func samePids(want, got []string) bool {
	got = slices.Clone(got)
	slices.Sort(got)
	return slices.Equal(want, got)
}

// getWithHeaders sends a GET and returns the status, headers and body.
func getWithHeaders(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, resp.Header, b.String()
}

// TestSchedulerStarved freezes the scheduler process (SIGSTOP) for several
// leader TTLs, as a machine whose load starves its lease renewals would:
// etcd expires its lease. Resumed, the scheduler finds its leadership
// lost; it must not exit but campaign again, lead, keep every task (same
// attempts) and complete a create.
func TestSchedulerStarved(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	etcd := statemgrtest.StartEtcd(t)
	cluster := startCluster(t, 3)
	p := newSubprocess(t, t.TempDir(), "--master="+cluster.MasterURL(), "--etcd="+strings.Join(etcd.Endpoints(), ","),
		"--etcd-user="+statemgr.EmbeddedUser, "--etcd-password-file="+etcd.PasswordFile())
	p.start()
	call(t, http.MethodPost, p.api+"/v1/instances", createBody("busy", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	before := waitRunning(t, p.api, "busy")
	leases, err := etcd.Client().Leases(context.Background())
	if err != nil || len(leases.Leases) == 0 {
		t.Fatalf("leases: %v %v", leases, err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The test framework's leader TTL is 1 s: wait until etcd dropped
	// the lease, then a little longer.
	eventually(t, "the frozen scheduler's lease expired", func() (bool, string) {
		for _, l := range leases.Leases {
			ttl, err := etcd.Client().TimeToLive(context.Background(), l.ID)
			if err != nil || ttl.TTL > 0 {
				return false, fmt.Sprintf("lease %x: %v %v", l.ID, ttl, err)
			}
		}
		return true, ""
	})
	time.Sleep(time.Second) // frozen a while past the expiry, not a synchronisation
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	eventually(t, "a new lease: the scheduler campaigned again", func() (bool, string) {
		select {
		case <-p.exited:
			t.Fatalf("the scheduler exited after losing its leadership: %s\n%s", p.cmd.ProcessState, p.logTail())
		default:
		}
		now, err := etcd.Client().Leases(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, l := range now.Leases {
			if !slices.ContainsFunc(leases.Leases, func(o clientv3.LeaseStatus) bool { return o.ID == l.ID }) {
				return true, ""
			}
		}
		return false, fmt.Sprint(now.Leases)
	})
	eventually(t, "healthy again", func() (bool, string) {
		code, body, err := do(http.MethodGet, p.api+"/v1/health", nil)
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
	})
	call(t, http.MethodPost, p.api+"/v1/instances", createBody("later", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	waitRunning(t, p.api, "later")
	after := waitRunning(t, p.api, "busy")
	sameAttempts(t, before, after)
	checkNoDuplicates(t, cluster, after)
}

// TestEtcdOutageTwoSchedulers freezes the etcd of a leader and its standby
// for several leader TTLs: both lose their sessions. Afterwards exactly one
// of them leads (healthy) while the other stands by (503 naming the
// leader, writes refused), neither exits, the tasks are the same
// attempts, and a create through the leader completes.
func TestEtcdOutageTwoSchedulers(t *testing.T) {
	if testing.Short() {
		t.Skip("freezes etcd")
	}
	etcd := startEtcdProcess(t)
	cluster := startCluster(t, 3)
	config := func() framework.Config {
		cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
		cfg.Etcd = etcd.client
		return cfg
	}
	w := testworkload.New()
	first := runScheduler(t, config(), w)
	call(t, http.MethodPost, first.api+"/v1/instances", createBody("both", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	before := waitRunning(t, first.api, "both")
	standby := startScheduler(t, config(), w)

	etcd.freeze()
	time.Sleep(5 * config().LeaderTTL) // the outage, not a synchronisation
	etcd.thaw()

	var leader, other *scheduler
	eventually(t, "one scheduler leads, the other stands by", func() (bool, string) {
		var healthy, standing []*scheduler
		for _, s := range []*scheduler{first, standby} {
			select {
			case <-s.stopped:
				t.Fatalf("a scheduler stopped: %v", s.err)
			default:
			}
			if !s.serving() {
				standing = append(standing, s) // never led: no API
				continue
			}
			code, body, err := do(http.MethodGet, s.api+"/v1/health", nil)
			switch {
			case err == nil && code == http.StatusOK:
				healthy = append(healthy, s)
			case err == nil && code == http.StatusServiceUnavailable && strings.Contains(string(body), `"component":"leader"`):
				standing = append(standing, s)
			}
		}
		if len(healthy) == 1 && len(standing) == 1 {
			leader, other = healthy[0], standing[0]
			return true, ""
		}
		return false, fmt.Sprintf("%d healthy, %d standing by", len(healthy), len(standing))
	})
	if other.serving() {
		code, body, err := do(http.MethodPost, other.api+"/v1/instances", createBody("refused", stateful.TypeSingle, 1, 0))
		if err != nil || code != http.StatusServiceUnavailable {
			t.Errorf("POST to the standby: %d %s %v, want 503", code, body, err)
		}
	}
	sameAttempts(t, before, waitRunning(t, leader.api, "both"))
	call(t, http.MethodPost, leader.api+"/v1/instances", createBody("after", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	waitRunning(t, leader.api, "after")
	checkNoDuplicates(t, cluster, waitRunning(t, leader.api, "both"))
	if _, code := get(t, leader.api, "refused"); code != http.StatusNotFound {
		t.Errorf("the create refused by the standby exists: %d", code)
	}
}
