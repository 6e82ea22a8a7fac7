package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/httplib"
)

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the command line with $STATEFUL_API set to api.
func cli(t *testing.T, api, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getenv := func(k string) string {
		if k == envAPI {
			return api
		}
		return ""
	}
	var out, errOut bytes.Buffer
	code := run(ctx, args, getenv, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func expect(t *testing.T, r result, code int, stdoutHas, stderrHas []string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %v", code, r)
	}
	for _, s := range stdoutHas {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q; %v", s, r)
		}
	}
	for _, s := range stderrHas {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q; %v", s, r)
		}
	}
}

func TestUsageErrorsSendNothing(t *testing.T) {
	api := startAPI(t)
	api.svc.put(runningInstance("cache1"))
	specFile := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specFile, []byte(`[1, 2]`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		stderrHas string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"-bogus", "list"}, "flag provided but not defined: -bogus"},
		{[]string{"-timeout", "0s", "list"}, "-timeout must be positive"},
		{[]string{"-api", "ftp://x", "list"}, "want http:// or https://"},
		{[]string{"list", "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"get"}, "want NAME"},
		{[]string{"get", "cache1", "-yaml"}, "flag provided but not defined: -yaml"},
		{[]string{"get", "Cache_1"}, `instance name "Cache_1" has 'C'`},
		{[]string{"get", "cache1", "cache2"}, `unexpected arguments ["cache2"]`},
		{[]string{"create", "cache2"}, "-type is required"},
		{[]string{"create", "cache2", "-type", "MSS"}, `-type "MSS": want S, MS or C`},
		{[]string{"create", "cache2", "-type", "MS", "-slaves", "-1"}, "must not be negative"},
		{[]string{"create", "cache2", "-type", "MS", "-slaves", "two"}, "not a whole number"},
		{[]string{"create", "cache2", "-type", "MS", "-spec", `{"mem": 512`}, "-spec: not a JSON object"},
		{[]string{"create", "cache2", "-type", "MS", "-spec", `null`}, "-spec: not a JSON object"},
		{[]string{"create", "cache2", "-type", "MS", "-spec-file", specFile}, "not a JSON object"},
		{[]string{"create", "cache2", "-type", "MS", "-spec-file", "/nonexistent/spec.json"}, "no such file"},
		{[]string{"create", "cache2", "-type", "MS", "-spec", "{}", "-spec-file", specFile}, "not both"},
		{[]string{"scale", "cache1"}, "-slaves is required"},
		{[]string{"update", "cache1"}, "nothing to change"},
		{[]string{"delete", "cache1", "-wait", "-timeout", "-1s"}, "-timeout must be positive"},
		{[]string{"wait", "cache1", "-status", "READY"}, `-status "READY": want CREATING, RUNNING, UPDATING, SCALING, DEGRADED or DELETING`},
		{[]string{"wait", "cache1", "-interval", "0s"}, "-interval must be positive"},
		{[]string{"switchover", "cache1", "-wait", "-interval", "0s"}, "-interval must be positive"},
		{[]string{"switchover", "cache1", "-wait", "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"master"}, "want NAME"},
		{[]string{"addr", "cache1"}, "want NAME and ORDINAL"},
		{[]string{"addr", "cache1", "first"}, `"first" is neither an ordinal nor a task name`},
		{[]string{"addr", "cache1", "cache2-1"}, "not one of instance cache1"},
		{[]string{"addr", "cache1", "-1"}, "flag provided but not defined: -1"},
		{[]string{"help", "frobnicate"}, `no command "frobnicate"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := api.requests.Load()
			r := cli(t, api.url, "", tc.args...)
			expect(t, r, exitUsage, nil, []string{tc.stderrHas, "usage: statefulctl"})
			if r.stdout != "" {
				t.Errorf("usage error wrote to stdout: %v", r)
			}
			if n := api.requests.Load() - before; n != 0 {
				t.Errorf("a usage error sent %d requests", n)
			}
		})
	}
	if got := api.svc.stored("cache1"); got.Generation != 3 || got.Status != stateful.StatusRunning {
		t.Errorf("cache1 changed: %+v", got)
	}
	if m := api.svc.mutationLog(); len(m) != 0 {
		t.Errorf("mutations %v", m)
	}
}

// TestHelp: help asked for is the command's output (stdout, exit 0), so
// that "statefulctl help | less" works.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"help", "wait"}, {"wait", "-h"}, {"wait", "cache1", "-help"}} {
		r := cli(t, "http://127.0.0.1:1", "", args...)
		expect(t, r, exitOK, []string{"usage: statefulctl"}, nil)
		if r.stderr != "" {
			t.Errorf("%q wrote to stderr: %v", args, r)
		}
	}
	r := cli(t, "http://127.0.0.1:1", "", "help", "wait")
	expect(t, r, exitOK, []string{"-status", "-timeout", "-interval"}, nil)
}

func TestCreateListGet(t *testing.T) {
	api := startAPI(t)
	r := cli(t, api.url, "", "create", "cache1", "-type", "MS", "-slaves", "2", "-spec", `{"mem": 512, "env": {"PASS": "x"}}`)
	expect(t, r, exitOK, []string{
		"Name:        cache1", "MS (1 master, 2 slaves)", "Status:      CREATING", "mem 512 MB",
		"Env:         PASS\n", "waiting for an offer",
	}, nil)
	for _, re := range []string{`cache1-0 +master +QUEUED +- +- +- +- +- +waiting for an offer\n`, `cache1-2 +slave +QUEUED`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("create's output does not match %s: %v", re, r)
		}
	}
	if strings.Contains(r.stdout, `"x"`) || strings.Contains(r.stdout, "PASS=x") {
		t.Errorf("create printed an env value: %v", r)
	}
	inst := api.svc.stored("cache1")
	if inst.Spec.Mem != 512 || inst.Slaves != 2 || inst.Masters != 1 || inst.Spec.Image != "redis:7" {
		t.Fatalf("stored %+v", inst)
	}

	// Flags before the name, a spec from stdin, masters given.
	r = cli(t, api.url, `{"cpu": 1}`, "create", "-type", "C", "-masters", "3", "-spec-file", "-", "peers")
	expect(t, r, exitOK, []string{"C (cluster of 3 peers)", "cpu 1,", "peers-2  peer"}, nil)

	// The queued task's reason shows in get.
	api.svc.set(func(m *memService) {
		m.onGet = func(_ int, inst *stateful.Instance) bool {
			if inst.Name == "cache1" {
				inst.Tasks[1].Unplaced = "mem exhausted on 3 agents"
			}
			return false
		}
	})
	r = cli(t, api.url, "", "get", "cache1")
	expect(t, r, exitOK, []string{"NAME      ROLE    STATE   HEALTHY  HOST  PORTS  TASK-ID  STATS  NOTE", "not placed: mem exhausted on 3 agents"}, nil)

	r = cli(t, api.url, "", "list")
	expect(t, r, exitOK, nil, nil)
	want := "NAME    TYPE  MASTERS  SLAVES  STATUS    GENERATION\n" +
		"cache1  MS    1        2       CREATING  1\n" +
		"peers   C     3        0       CREATING  1\n"
	if r.stdout != want {
		t.Errorf("list:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestListEmpty(t *testing.T) {
	api := startAPI(t)
	expect(t, cli(t, api.url, "", "list"), exitOK, nil, []string{"no instances"})
}

func TestGetShowsTasks(t *testing.T) {
	api := startAPI(t)
	inst := runningInstance("cache1")
	inst.Tasks[2].State, inst.Tasks[2].Healthy, inst.Tasks[2].Message = stateful.TaskStarting, false, "health check failed: connection refused"
	inst.Tasks[0].Stats["stats_error"] = "INFO timed out"
	inst.Spec.Health.GraceS = 90
	inst.Tasks[1].Stats["stats_time"] = time.Now().Add(-4500 * time.Millisecond).UTC().Format(time.RFC3339)
	api.svc.put(inst)
	r := cli(t, api.url, "", "get", "cache1")
	expect(t, r, exitOK, []string{
		"Status:      RUNNING",
		"Health:      tcp port redis every 10s (grace 1m30s, timeout 5s)",
		"Env:         REDIS_PASSWORD\n",
		"Created:     ", "(5m ago)",
	}, nil)
	if strings.Contains(r.stdout, "s3cret") {
		t.Errorf("get printed an env value: %v", r)
	}
	rows := map[string]*regexp.Regexp{
		"cache1-0": regexp.MustCompile(`cache1-0 +slave +TASK_RUNNING +yes +127\.0\.0\.2 +redis=31000,metrics=31100 +cache1-0\.1 +role=slave replication_offset=1000 +stats: INFO timed out\n`),
		"cache1-1": regexp.MustCompile(`cache1-1 +master +TASK_RUNNING +yes +127\.0\.0\.3 +redis=31001,metrics=31101 +cache1-1\.1 +role=master replication_offset=1001 \([45]s old\)\n`),
		"cache1-2": regexp.MustCompile(`cache1-2 +slave +TASK_STARTING +no +127\.0\.0\.4 .* health check failed: connection refused\n`),
	}
	for name, re := range rows {
		if !re.MatchString(r.stdout) {
			t.Errorf("row of %s does not match %s: %v", name, re, r)
		}
	}

	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("line with trailing blanks: %q", line)
		}
	}

	r = cli(t, api.url, "", "get", "-json", "cache1")
	expect(t, r, exitOK, nil, nil)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("get -json: %v: %s", err, r.stdout)
	}
	tasks, _ := doc["tasks"].([]any)
	if doc["name"] != "cache1" || doc["master_ordinal"] != 1.0 || len(tasks) != 3 {
		t.Errorf("get -json: %s", r.stdout)
	}
	if first, _ := tasks[0].(map[string]any); first["agent_id"] != "agent-0" {
		t.Errorf("get -json lost task fields: %v", first)
	}
}

func TestAPIErrorsExitOne(t *testing.T) {
	api := startAPI(t)
	api.svc.put(runningInstance("cache1"))
	deleting := runningInstance("going")
	deleting.Status = stateful.StatusDeleting
	api.svc.put(deleting)
	for _, tc := range []struct {
		args      []string
		stderrHas string
	}{
		{[]string{"create", "cache1", "-type", "MS"}, `statefulctl create: 409 Conflict: instance "cache1" already exists`},
		{[]string{"create", "cache2", "-type", "MS", "-spec", `{"cpus": 1}`}, "statefulctl create: 400 Bad Request: spec.cpus: unknown field (spec takes"},
		{[]string{"create", "cache2", "-type", "MS", "-spec", `{"mem": "lots"}`}, "400 Bad Request: spec.mem"},
		{[]string{"create", "cache2", "-type", "S", "-slaves", "2"}, "400 Bad Request: slaves"},
		{[]string{"get", "nope"}, `statefulctl get: 404 Not Found: instance "nope" not found`},
		{[]string{"scale", "going", "-slaves", "3"}, `409 Conflict: instance "going" is being deleted`},
		{[]string{"scale", "cache1", "-slaves", "2"}, "400 Bad Request"},
		{[]string{"update", "cache1", "-spec", `{"network": "overlay"}`}, "spec.network"},
		{[]string{"delete", "nope"}, "404 Not Found"},
		{[]string{"wait", "nope", "-interval", "10ms"}, "404 Not Found"},
		{[]string{"master", "nope"}, "404 Not Found"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := cli(t, api.url, "", tc.args...)
			expect(t, r, exitError, nil, []string{tc.stderrHas})
			if strings.Contains(r.stderr, "usage:") {
				t.Errorf("an API error printed the usage: %v", r)
			}
		})
	}
	if got := api.svc.stored("cache1"); got.Generation != 3 || got.Slaves != 2 {
		t.Errorf("cache1 changed: %+v", got)
	}
	if api.svc.stored("cache2") != nil {
		t.Error("a refused create stored cache2")
	}
}

func TestScaleAndUpdate(t *testing.T) {
	api := startAPI(t)
	api.svc.put(runningInstance("cache1"))
	r := cli(t, api.url, "", "scale", "cache1", "-slaves", "4")
	expect(t, r, exitOK, []string{"MS (1 master, 4 slaves)", "Generation:  4"}, nil)

	specFile := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specFile, []byte(`{"mem": 1024, "env": null}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = cli(t, api.url, "", "update", "cache1", "-spec-file", specFile)
	expect(t, r, exitOK, []string{"mem 1024 MB", "Generation:  5"}, nil)
	got := api.svc.stored("cache1")
	if got.Spec.Mem != 1024 || got.Spec.Env != nil || got.Slaves != 4 || got.Generation != 5 {
		t.Errorf("stored %+v", got)
	}
	r = cli(t, api.url, "", "update", "cache1", "-spec", `{"cpu": 1}`, "-slaves", "1")
	expect(t, r, exitOK, []string{"cpu 1,", "MS (1 master, 1 slave)", "Generation:  6"}, nil)
}

func TestWaitShowsProgressUntilHealthy(t *testing.T) {
	api := startAPI(t)
	inst := runningInstance("cache1")
	for _, task := range inst.Tasks {
		task.State, task.Healthy, task.Host, task.Ports, task.TaskID = stateful.TaskQueued, false, "", nil, ""
	}
	inst.Status = stateful.StatusCreating
	inst.Tasks[2].Unplaced = "no agent with port"
	api.svc.put(inst)
	api.svc.set(func(m *memService) {
		m.failGets = 2 // a scheduler electing its leader
		m.onGet = func(n int, inst *stateful.Instance) bool {
			switch n {
			case 3:
				for _, task := range inst.Tasks {
					task.State, task.Unplaced = stateful.TaskStarting, ""
				}
			case 5:
				for _, task := range inst.Tasks {
					task.State = stateful.TaskRunning
				}
				// RUNNING, but one task not healthy yet: not done.
				inst.Status = stateful.StatusRunning
				inst.Tasks[0].Healthy, inst.Tasks[1].Healthy = true, true
			case 8:
				inst.Tasks[2].Healthy = true
			}
			return false
		}
	})
	r := cli(t, api.url, "", "wait", "cache1", "-interval", "5ms")
	expect(t, r, exitOK, nil, nil)
	lines := progressLines(t, r.stdout)
	want := []string{
		"cache1 no answer: 503 Service Unavailable: the scheduler cannot serve requests now: getting instance \"cache1\": no leader: unavailable",
		"cache1 CREATING: cache1-0 slave QUEUED, cache1-1 master QUEUED, cache1-2 slave QUEUED (not placed: no agent with port)",
		"cache1 CREATING: cache1-0 slave STARTING, cache1-1 master STARTING, cache1-2 slave STARTING",
		"cache1 RUNNING: cache1-0 slave RUNNING healthy, cache1-1 master RUNNING healthy, cache1-2 slave RUNNING unhealthy",
		"cache1 RUNNING: cache1-0 slave RUNNING healthy, cache1-1 master RUNNING healthy, cache1-2 slave RUNNING healthy",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("progress:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// progressLines strips the time from wait's lines, checking it is there.
func progressLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		ts, rest, ok := strings.Cut(l, " ")
		if _, err := time.Parse(time.TimeOnly, ts); !ok || err != nil {
			t.Fatalf("progress line without a time: %q", l)
		}
		lines = append(lines, rest)
	}
	return lines
}

func TestWaitForAStatusOtherThanRunning(t *testing.T) {
	api := startAPI(t)
	api.svc.put(runningInstance("cache1"))
	api.svc.set(func(m *memService) {
		m.onGet = func(n int, inst *stateful.Instance) bool {
			if n == 3 {
				inst.Status, inst.Message = stateful.StatusDegraded, "master cache1-1 lost"
				inst.Tasks[1].State, inst.Tasks[1].Healthy = stateful.TaskFailed, false
			}
			return false
		}
	})
	r := cli(t, api.url, "", "wait", "cache1", "-status", "degraded", "-interval", "5ms")
	expect(t, r, exitOK, nil, nil)
	lines := progressLines(t, r.stdout)
	if len(lines) != 2 || lines[1] != "cache1 DEGRADED: cache1-0 slave RUNNING healthy, cache1-1 master FAILED, cache1-2 slave RUNNING healthy" {
		t.Errorf("progress: %q", lines)
	}
}

func TestWaitTimesOutWithTheLastState(t *testing.T) {
	api := startAPI(t)
	inst := runningInstance("cache1")
	inst.Tasks[1].Healthy = false // RUNNING, not every task healthy
	api.svc.put(inst)
	r := cli(t, api.url, "", "wait", "cache1", "-timeout", "100ms", "-interval", "10ms")
	expect(t, r, exitError, nil, []string{
		"statefulctl wait: gave up waiting for cache1 to be RUNNING after 100ms; last: RUNNING: cache1-0 slave RUNNING healthy, cache1-1 master RUNNING unhealthy",
	})
	if n := len(progressLines(t, r.stdout)); n != 1 {
		t.Errorf("an unchanged instance printed %d lines: %v", n, r)
	}
}

func TestWaitGivesUpOnADeletedInstance(t *testing.T) {
	api := startAPI(t)
	inst := runningInstance("cache1")
	inst.Status = stateful.StatusDeleting
	api.svc.put(inst)
	r := cli(t, api.url, "", "wait", "cache1", "-timeout", "1m")
	expect(t, r, exitError, []string{"cache1 DELETING: "}, []string{"statefulctl wait: cache1 is being deleted; it will not be RUNNING"})
	expect(t, cli(t, api.url, "", "wait", "cache1", "-status", "DELETING"), exitOK, nil, nil)
}

func TestWaitTimesOutWithoutAnswer(t *testing.T) {
	// A listener that accepts and never answers: each request runs into
	// -timeout, the wait into its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := cli(t, "http://"+ln.Addr().String(), "", "-timeout", "50ms", "wait", "cache1", "-timeout", "300ms", "-interval", "10ms")
	expect(t, r, exitError, []string{"cache1 no answer: "}, []string{"gave up waiting for cache1 to be RUNNING after 300ms; last: no answer:"})
	r = cli(t, "http://"+ln.Addr().String(), "", "-timeout", "50ms", "get", "cache1")
	expect(t, r, exitError, nil, []string{"context deadline exceeded", "(no answer from http://" + ln.Addr().String() + " within -timeout 50ms)"})
}

func TestDeleteWait(t *testing.T) {
	api := startAPI(t)
	api.svc.put(runningInstance("cache1"))
	api.svc.set(func(m *memService) {
		m.onGet = func(n int, inst *stateful.Instance) bool {
			if n == 2 {
				for _, task := range inst.Tasks {
					task.State = stateful.TaskKilling
				}
			}
			return n == 4
		}
	})
	r := cli(t, api.url, "", "delete", "cache1", "-wait", "-interval", "5ms")
	expect(t, r, exitOK, []string{"cache1 DELETING\n"}, nil)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 || lines[3] != "cache1 deleted" {
		t.Fatalf("delete -wait printed %q", lines)
	}
	if got := progressLines(t, strings.Join(lines[1:3], "\n")); got[1] != "cache1 DELETING: cache1-0 slave KILLING, cache1-1 master KILLING, cache1-2 slave KILLING" {
		t.Errorf("progress %q", got)
	}
	if api.svc.stored("cache1") != nil {
		t.Error("cache1 is still stored")
	}
	if m := api.svc.mutationLog(); !slices.Equal(m, []string{"Destroy cache1"}) {
		t.Errorf("mutations %v", m)
	}

	// Without -wait: one request, DELETING.
	api.svc.put(runningInstance("cache2"))
	api.svc.set(func(m *memService) { m.onGet = nil })
	r = cli(t, api.url, "", "delete", "cache2")
	expect(t, r, exitOK, nil, nil)
	if r.stdout != "cache2 DELETING\n" {
		t.Errorf("delete printed %q", r.stdout)
	}
}

func TestMasterAndAddr(t *testing.T) {
	api := startAPI(t)
	api.svc.put(runningInstance("cache1"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"master", "cache1"}, "127.0.0.3 31001\n"},
		{[]string{"master", "cache1", "metrics"}, "127.0.0.3 31101\n"},
		{[]string{"addr", "cache1", "2"}, "127.0.0.4 31002\n"},
		{[]string{"addr", "cache1", "cache1-0", "metrics"}, "127.0.0.2 31100\n"},
		{[]string{"-api", strings.TrimPrefix(api.url, "http://"), "master", "cache1"}, "127.0.0.3 31001\n"},
		{[]string{"master", "cache1", "-task-id"}, "cache1-1.1\n"},
		{[]string{"addr", "-task-id", "cache1", "2"}, "cache1-2.1\n"},
	} {
		env := api.url
		if slices.Contains(tc.args, "-api") {
			env = "http://127.0.0.1:1" // -api wins over $STATEFUL_API
		}
		r := cli(t, env, "", tc.args...)
		expect(t, r, exitOK, nil, nil)
		if r.stdout != tc.want {
			t.Errorf("%v printed %q, want %q", tc.args, r.stdout, tc.want)
		}
	}

	peers := runningInstance("peers")
	peers.Type, peers.Masters, peers.Slaves = stateful.TypeCluster, 3, 0
	for _, task := range peers.Tasks {
		task.Role = stateful.RolePeer
	}
	api.svc.put(peers)
	failed := runningInstance("failed")
	failed.Tasks[1].State = stateful.TaskFailed
	failed.Tasks[2].State, failed.Tasks[2].TaskID = stateful.TaskQueued, ""
	api.svc.put(failed)
	for _, tc := range []struct {
		args      []string
		stderrHas string
	}{
		{[]string{"master", "peers"}, "instance peers is a cluster of peers (type C) and has no master; use addr"},
		{[]string{"master", "failed"}, "task failed-1 (master) is TASK_FAILED, not running"},
		{[]string{"master", "cache1", "http"}, `task cache1-1 has no port named "http" (it has: redis=31001,metrics=31101)`},
		{[]string{"addr", "cache1", "7"}, "instance cache1 has no task cache1-7"},
		{[]string{"addr", "failed", "2", "-task-id"}, "task failed-2 (slave) has not been launched yet"},
	} {
		r := cli(t, api.url, "", tc.args...)
		expect(t, r, exitError, nil, []string{tc.stderrHas})
		if r.stdout != "" {
			t.Errorf("%v printed %q", tc.args, r.stdout)
		}
	}
	r := cli(t, api.url, "", "addr", "peers", "2")
	if r.code != exitOK || r.stdout != "127.0.0.4 31002\n" {
		t.Errorf("addr of a peer: %v", r)
	}
}

func TestHealth(t *testing.T) {
	api := startAPI(t)
	expect(t, cli(t, api.url, "", "health"), exitOK, []string{"ok\n"}, nil)
	api.svc.set(func(m *memService) {
		m.problems = []httplib.Problem{{Component: "mesos", Message: "not subscribed"}, {Component: "etcd", Message: "unreachable"}}
	})
	r := cli(t, api.url, "", "health")
	expect(t, r, exitError, []string{"unhealthy\n  mesos: not subscribed\n  etcd: unreachable\n"}, []string{"not healthy"})
}

func TestNoAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := cli(t, "http://"+addr, "", "list")
	expect(t, r, exitError, nil, []string{"connection refused", "is the framework running? set -api or $STATEFUL_API"})
}

func TestAnswersThatAreNotTheAPIs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/instances/html":
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		case "/v1/instances/garbled":
			w.Write([]byte("{not json"))
		case "/v1/health":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	expect(t, cli(t, srv.URL, "", "get", "html"), exitError, nil, []string{"502 Bad Gateway: <html>bad gateway</html>"})
	expect(t, cli(t, srv.URL, "", "get", "garbled"), exitError, nil, []string{"unreadable answer"})
	expect(t, cli(t, srv.URL, "", "health"), exitError, nil, []string{"503 Service Unavailable: service unavailable"})
	expect(t, cli(t, srv.URL, "", "get", "-json", "garbled"), exitError, nil, []string{"unreadable answer"})
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour: "1h", 1500 * time.Millisecond: "1.5s", 0: "0s",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestReservationsReplaceUninstall: get shows each task's reservation and
// volume; replace and uninstall reach the API, and bad arguments do not.
func TestReservationsReplaceUninstall(t *testing.T) {
	api := startAPI(t)
	inst := runningInstance("cache1")
	inst.Spec.Disk = 512
	inst.Tasks[0].Reservation = &stateful.Reservation{ResourceID: "cache1-0.x", PersistenceID: "cache1-0.x", AgentID: "agent-0", Host: "127.0.0.2", DiskMB: 512, ContainerPath: "stateful-volume", Confirmed: true}
	inst.Tasks[1].Reservation = &stateful.Reservation{ResourceID: "cache1-1.y", PersistenceID: "cache1-1.y", AgentID: "agent-1", DiskMB: 512, ContainerPath: "stateful-volume", Confirmed: true, Releasing: true}
	inst.Tasks[2].HostVolume, inst.Tasks[2].StickyAgentID = true, "agent-2"
	api.svc.put(inst)
	r := cli(t, api.url, "", "get", "cache1")
	expect(t, r, exitOK, nil, nil)
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`TASK +AGENT +HOST +PERSISTENCE-ID +SIZE +CONTAINER-PATH +STATE\n`),
		regexp.MustCompile(`cache1-0 +agent-0 +127\.0\.0\.2 +cache1-0\.x +512 MB +stateful-volume +reserved\n`),
		regexp.MustCompile(`cache1-1 +agent-1 +- +cache1-1\.y +512 MB +stateful-volume +releasing\n`),
		regexp.MustCompile(`cache1-2 +agent-2 .*host directory`),
	} {
		if !re.MatchString(r.stdout) {
			t.Errorf("get does not match %s: %v", re, r)
		}
	}

	expect(t, cli(t, api.url, "", "wait", "cache1", "-timeout", "5s"), exitOK, nil, nil)
	expect(t, cli(t, api.url, "", "replace", "cache1", "cache1-2"), exitOK, []string{"cache1 replacing cache1-2"}, nil)
	// RUNNING with every task healthy is not enough while cache1-2 waits
	// to be replaced: wait must not return before the replacement runs.
	expect(t, cli(t, api.url, "", "wait", "cache1", "-timeout", "1s", "-interval", "100ms"), exitError, []string{"cache1-2 slave RUNNING healthy (being replaced)"}, []string{"gave up waiting"})
	expect(t, cli(t, api.url, "", "replace", "cache1", "7"), exitError, nil, []string{"not found"})
	expect(t, cli(t, api.url, "", "replace", "cache1", "other-1"), exitUsage, nil, []string{"not one of instance cache1"})
	expect(t, cli(t, api.url, "", "replace", "cache1"), exitUsage, nil, nil)
	expect(t, cli(t, api.url, "", "uninstall"), exitUsage, nil, []string{"-yes"})
	expect(t, cli(t, api.url, "", "uninstall", "-yes"), exitOK, []string{"deleting 0 instances"}, nil)
	if got, want := api.svc.mutationLog(), []string{"Replace cache1 2", "Replace cache1 7", "Uninstall"}; !slices.Equal(got, want) {
		t.Errorf("the API got %v, want %v", got, want)
	}
}
