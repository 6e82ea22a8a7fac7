package framework_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
)

// crashPoints are the reservation lifecycle's crash points
// (framework.Config.CrashPoint).
var crashPoints = []string{
	"launch:before-accept", "launch:after-accept",
	"release:before-accept", "release:after-accept", "release:before-record",
}

// TestCrashDuringReservationLifecycle kills the scheduler (SIGKILL, at a
// crash point chosen by a seed) while it reserves, creates volumes and
// launches, or destroys and unreserves, and restarts it on the same data.
// After every run: no ordinal ran twice, every running ordinal's volume
// is on the master (nothing destroyed while it lives), the master holds
// exactly the reservations the tasks record (nothing leaked), and after
// the delete it holds none. STATEFUL_CRASH_RUNS sets the number of runs
// (seeds 0..N-1; default 3, one per kind of point; 20 or more for the
// long variant).
func TestCrashDuringReservationLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	runs := 3
	if v := os.Getenv("STATEFUL_CRASH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STATEFUL_CRASH_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	for seed := range runs {
		// The default runs cover a launch, a release and a record point.
		point := crashPoints[[]int{1, 2, 4}[seed%3]]
		if runs > 3 {
			point = crashPoints[seed%len(crashPoints)]
		}
		hit := 1 + (seed/len(crashPoints))%2
		t.Run(fmt.Sprintf("seed%d_%s_%d", seed, point, hit), func(t *testing.T) {
			crashRun(t, seed, point, hit)
		})
	}
}

func crashRun(t *testing.T, seed int, point string, hit int) {
	cluster := startCluster(t, 3)
	dataDir := t.TempDir()
	p := startSubprocess(t, cluster, dataDir)
	// Restarted with the crash point armed, so that it fires in what
	// follows and not before the instance exists.
	p.stop()
	p.env = []string{fmt.Sprintf("STATEFUL_TEST_CRASH_AT=%s:%d", point, hit)}
	p.start()
	name := fmt.Sprintf("crash%d", seed)
	t.Logf("seed %d: crash at %s (hit %d)", seed, point, hit)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		// What the scheduler did about the instance, for the failure.
		b, _ := os.ReadFile(p.logPath)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, name) && (strings.Contains(l, "launcher") || strings.Contains(l, "maintainer") || strings.Contains(l, "creator") ||
				strings.Contains(l, "destroyer") || strings.Contains(l, "framework:") || strings.Contains(l, "placing") || strings.Contains(l, "crashing")) {
				lines = append(lines, l)
			}
		}
		t.Logf("scheduler log about %s:\n%s", name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
	})

	crashed := func() bool {
		select {
		case <-p.exited:
			return true
		default:
			return false
		}
	}
	restartAfterCrash := func(what string) {
		t.Helper()
		eventually(t, "the scheduler crashes "+what, func() (bool, string) { return crashed(), "still running" })
		p.env = nil
		p.start()
	}
	checkReservations := func(inst *stateful.Instance) {
		t.Helper()
		var want []string
		for _, task := range inst.Tasks {
			if task.Reservation == nil {
				t.Fatalf("%s runs without a reservation: %+v", task.Name, task)
			}
			want = append(want, task.Reservation.ResourceID)
		}
		sort.Strings(want)
		eventually(t, "the master holds exactly the recorded reservations", func() (bool, string) {
			rs := masterReservations(t, cluster.MasterURL())
			var got []string
			vols := 0
			for _, r := range rs {
				if !slices.Contains(got, r.ResourceID) {
					got = append(got, r.ResourceID)
				}
				if r.Persistence != "" {
					vols++
				}
			}
			sort.Strings(got)
			return slices.Equal(got, want) && vols == len(want), fmt.Sprintf("master %v (%d volumes), tasks %v", got, vols, want)
		})
	}

	call(t, http.MethodPost, p.api+"/v1/instances", createBody(name, stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	if point == "launch:before-accept" || point == "launch:after-accept" {
		restartAfterCrash("while launching")
	}
	inst := waitRunning(t, p.api, name)
	checkNoDuplicates(t, cluster, inst)
	checkReservations(inst)

	call(t, http.MethodDelete, p.api+"/v1/instances/"+name, nil, http.StatusAccepted)
	if !crashed() && (point == "release:before-accept" || point == "release:after-accept" || point == "release:before-record") {
		restartAfterCrash("while releasing")
	} else if crashed() {
		t.Fatalf("the scheduler crashed before its release point\n%s", p.logTail())
	}
	eventuallyWithin(t, stepTimeout, name+" deleted", func() (bool, string) {
		code, body, err := do(http.MethodGet, p.api+"/v1/instances/"+name, nil)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusNotFound, fmt.Sprintf("%d %s", code, body)
	})
	// A reservation no attempt ran on is not waited for by the delete
	// (it may not exist); if it does, it is released as an orphan.
	eventually(t, "no reservation left", func() (bool, string) {
		left := masterReservations(t, cluster.MasterURL())
		return len(left) == 0, fmt.Sprintf("%+v", left)
	})
	if live := liveMasterTasks(t, cluster.MasterURL(), name); len(live) != 0 {
		t.Errorf("after the delete the master runs %+v", live)
	}
	_ = time.Second
}
