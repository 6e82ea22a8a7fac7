package framework_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/internal/reconcile"
)

// TestEventFeed follows GET /v1/events of a real scheduler while an MS
// instance is created and its master's process is killed: the creation
// shows in order (the instance, then its tasks' way to RUNNING, then the
// instance RUNNING), and the failover shows as the old master failing, the
// slave promoted and the instance's master moving to it.
func TestEventFeed(t *testing.T) {
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	s := runScheduler(t, cfg, testworkload.New())
	c, err := client.New(s.api, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*stepTimeout)
	defer cancel()
	stream, err := c.Events(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	eventually(t, "the stream counted in /metrics", func() (bool, string) {
		metrics := string(call(t, http.MethodGet, s.api+"/metrics", nil, http.StatusOK))
		return strings.Contains(metrics, "\nstateful_event_subscribers 1\n"), "no stateful_event_subscribers 1"
	})

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("ev", stateful.TypeMasterSlave, 1, 1), http.StatusAccepted)
	seen := readEvents(t, stream, "instance ev RUNNING", func(ev *client.Event) bool {
		return ev.Type == "instance.status" && ev.Instance == "ev" && ev.Details["to"] == "RUNNING"
	})
	if seen[0].Type != "instance.created" || seen[0].Instance != "ev" || seen[0].Details["type"] != "MS" {
		t.Errorf("first event %+v, want instance.created of ev", seen[0])
	}
	for _, task := range []string{"ev-0", "ev-1"} {
		var states []string
		for _, ev := range seen {
			if ev.Type == "task.state" && ev.Task == task {
				states = append(states, fmt.Sprint(ev.Details["to"]))
			}
		}
		// Mesos may send STARTING or not; QUEUED comes first and
		// RUNNING last.
		if len(states) < 2 || states[0] != "QUEUED" || states[len(states)-1] != "TASK_RUNNING" {
			t.Errorf("%s went through %v, want QUEUED first and TASK_RUNNING last", task, states)
		}
	}
	checkIDsIncrease(t, seen)

	// The master's process dies.
	inst := waitRunning(t, s.api, "ev")
	master := inst.Tasks[inst.MasterOrdinal]
	killWorkload(t, master)
	isFailover := func(ev *client.Event) bool { return ev.Type == "instance.failover" && ev.Instance == "ev" }
	isPromotion := func(ev *client.Event) bool { return ev.Type == "task.promoted" && ev.Task == "ev-1" }
	// Both are written in one transaction: they come together, in either
	// order.
	seen = readEvents(t, stream, "failover of ev", isFailover)
	if !slices.ContainsFunc(seen, isPromotion) {
		seen = append(seen, readEvents(t, stream, "promotion of ev-1", isPromotion)...)
	}
	failover := slices.IndexFunc(seen, isFailover)
	promoted := slices.IndexFunc(seen, isPromotion)
	if failover < 0 || promoted < 0 {
		t.Fatalf("failover at %d, promotion at %d (-1: not seen): %s", failover, promoted, summary(seen))
	}
	if d := seen[failover].Details; d["from_ordinal"] != 0.0 || d["to_ordinal"] != 1.0 || d["to_task"] != "ev-1" {
		t.Errorf("failover event %+v, want ev-0 → ev-1", seen[failover])
	}
	if d := seen[promoted].Details; d["from"] != "slave" || d["to"] != "master" {
		t.Errorf("promotion event %+v, want slave → master", seen[promoted])
	}
	failed := slices.IndexFunc(seen, func(ev *client.Event) bool {
		to, _ := ev.Details["to"].(string)
		st, _ := stateful.ParseTaskState(to)
		return ev.Type == "task.state" && ev.Task == "ev-0" && st.IsTerminal()
	})
	if failed < 0 || failed > min(failover, promoted) {
		t.Errorf("the old master's end (at %d) must come before the failover: %s", failed, summary(seen))
	}
	seen = append(seen, readEvents(t, stream, "ev RUNNING again", func(ev *client.Event) bool {
		return ev.Type == "instance.status" && ev.Instance == "ev" && ev.Details["to"] == "RUNNING"
	})...)
	checkIDsIncrease(t, seen)
}

// readEvents reads the stream until an event matches last, returning the
// events read (last included).
func readEvents(t *testing.T, stream *client.EventStream, what string, last func(*client.Event) bool) []*client.Event {
	t.Helper()
	var seen []*client.Event
	deadline := time.AfterFunc(stepTimeout, func() { stream.Close() })
	defer deadline.Stop()
	for {
		ev, err := stream.Next()
		if err != nil {
			t.Fatalf("waiting for %s: %v; seen %s", what, err, summary(seen))
		}
		seen = append(seen, ev)
		if last(ev) {
			return seen
		}
	}
}

func summary(evs []*client.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s %s %s %v", ev.ID, ev.Type, ev.Instance, ev.Task, ev.Details)
	}
	return b.String()
}

// checkIDsIncrease checks that the events' sequence numbers (after the
// process's epoch) increase.
func checkIDsIncrease(t *testing.T, evs []*client.Event) {
	t.Helper()
	prev := -1
	for _, ev := range evs {
		_, n, _ := strings.Cut(ev.ID, "-")
		seq, err := strconv.Atoi(n)
		if err != nil || seq <= prev {
			t.Fatalf("event ID %q after sequence %d: %s", ev.ID, prev, summary(evs))
		}
		prev = seq
	}
}

// killWorkload SIGKILLs the process the executor started for task's
// current attempt, as a crash would: the leader of its own process group
// whose parent is the task's executor.
func killWorkload(t *testing.T, task *stateful.Task) {
	t.Helper()
	executorEnv := []byte("MESOS_EXECUTOR_ID=" + reconcile.ExecutorID(task.TaskID) + "\x00")
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		pid, ppid, pgrp, ok := procStat(f)
		if !ok || pid != pgrp {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", ppid))
		if err != nil || !bytes.Contains(env, executorEnv) {
			continue
		}
		// The executor itself may lead a group, but its parent is the
		// agent, which is not an executor of this task.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d (the process of %s): %v", pid, task.TaskID, err)
		}
		t.Logf("killed pid %d, the process of %s", pid, task.TaskID)
		return
	}
	t.Fatalf("no process of %s found", task.TaskID)
}

// procStat returns a process's pid, parent and process group from its
// /proc/<pid>/stat.
func procStat(path string) (pid, ppid, pgrp int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, 0, 0, false
	}
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 3 {
		return 0, 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	ppid, err2 := strconv.Atoi(fields[1])
	pgrp, err3 := strconv.Atoi(fields[2])
	return pid, ppid, pgrp, err1 == nil && err2 == nil && err3 == nil
}
