package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/examples/redis/redisimage"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
	"github.com/mesos-stateful/stateful/examples/redis/workload"
	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/internal/testimage"
)

// The framework starts its executor by running its own binary again; under
// go test that is this test binary.
func TestMain(m *testing.M) {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(newWorkload())
	}
	// Logs go to the test's output (shown when it fails), not to files.
	_ = flag.Set("logtostderr", "true")
	// Built with -race, every executor (this binary) would sleep a second
	// at exit for late race reports, and each cluster's Close would wait
	// for it. Executors inherit this environment.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// newWorkload is the example's workload as the tests run it: the command
// leaves out the 5 s a master waits for more replicas before a sync, to
// keep the tests short; the docker tests' image is allowed.
func newWorkload() *workload.Redis {
	return newWorkloadWith(workload.Options{
		Command:       "redis-server --repl-diskless-sync-delay 0",
		AllowedImages: []string{workload.DefaultImage, testImage},
	})
}

func newWorkloadWith(opts workload.Options) *workload.Redis {
	w, err := workload.New(opts)
	if err != nil {
		panic(err)
	}
	return w
}

// testImage is the image the docker tests build and run, so that a user's
// redis:7 is left alone.
const testImage = "stateful-test/redis-example:latest"

// keysBefore is how many keys are written (and acknowledged by both slaves)
// before the master is lost.
const keysBefore = 200

func needRedis(t *testing.T) {
	t.Helper()
	for _, p := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (apt-get install redis-server redis-tools): %v", p, err)
		}
	}
}

func start(t *testing.T, runtime string) *redistest.Env {
	t.Helper()
	return startWith(t, runtime, newWorkload())
}

func startWith(t *testing.T, runtime string, w *workload.Redis) *redistest.Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, err := redistest.Start(ctx, redistest.Options{Runtime: runtime, WorkDir: t.TempDir(), Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("framework: %v", err)
		}
	})
	return env
}

// createBody is the walkthrough's instance: a master and two slaves,
// health checked every second.
func createBody(name string, spec map[string]any) map[string]any {
	s := map[string]any{
		"health": map[string]any{"tcp": workload.PortName, "interval_s": 1, "timeout_s": 1, "grace_s": 30},
	}
	for k, v := range spec {
		s[k] = v
	}
	return map[string]any{"name": name, "type": "MS", "slaves": 2, "spec": s}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// statusRecorder polls an instance's status and keeps its changes.
type statusRecorder struct {
	stop func()
	mu   sync.Mutex
	seen []stateful.InstanceStatus
}

func recordStatus(env *redistest.Env, name string) *statusRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &statusRecorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if inst, _, err := env.Get(ctx, name); err == nil && inst != nil {
				r.mu.Lock()
				if len(r.seen) == 0 || r.seen[len(r.seen)-1] != inst.Status {
					r.seen = append(r.seen, inst.Status)
				}
				r.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // poll interval
			}
		}
	}()
	r.stop = func() { cancel(); <-done }
	return r
}

func (r *statusRecorder) statuses() []stateful.InstanceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// do runs one command against srv.
func do(t *testing.T, srv resp.Server, args ...string) any {
	t.Helper()
	reply, err := resp.Do(testCtx(t, 10*time.Second), srv, args...)
	if err != nil {
		t.Fatalf("%s at %s: %v", strings.Join(args, " "), srv, err)
	}
	return reply
}

func info(t *testing.T, srv resp.Server) workload.Info {
	t.Helper()
	s, _ := do(t, srv, "INFO", "replication").(string)
	return workload.ParseInfo(s)
}

// failover is what one walkthrough variant does to lose the master.
type failover func(t *testing.T, env *redistest.Env, inst *stateful.Instance, master *stateful.Task)

// walkthrough is the README's walkthrough, checked: create a 1+2 instance,
// write on the master (acknowledged by both slaves), read on a slave, lose
// the master, watch GET name a new master, find every key on it, write on
// it, watch the lost ordinal come back as a slave that syncs from the new
// master, and destroy.
func walkthrough(t *testing.T, env *redistest.Env, spec map[string]any, lose failover, checkStats bool) {
	ctx := testCtx(t, 3*time.Minute)
	const name = "cache1"
	if err := env.Create(ctx, createBody(name, spec)); err != nil {
		t.Fatal(err)
	}
	inst, err := env.WaitHealthy(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	before := inst
	master := redistest.Master(inst)
	if master == nil || master.Ordinal != 0 {
		t.Fatalf("no master 0: %s", redistest.Describe(inst))
	}
	// Until the framework runs CheckHealth (see TestSlavesHealthyOnlyOnceSynced),
	// RUNNING does not imply synced slaves: wait for their links.
	for _, task := range inst.Tasks {
		if task.Role == stateful.RoleSlave {
			waitReplicates(t, ctx, inst, task, master)
		}
	}

	// Write on the master; WAIT for both slaves to have every key (WAIT
	// covers the writes of its own connection).
	conn, err := resp.Dial(ctx, redistest.Server(inst, master))
	if err != nil {
		t.Fatal(err)
	}
	for i := range keysBefore {
		if got, err := conn.Do(ctx, "SET", "key:"+strconv.Itoa(i), "value-"+strconv.Itoa(i)); err != nil || got != "OK" {
			t.Fatalf("SET: %v, %v", got, err)
		}
	}
	if got, err := conn.Do(ctx, "WAIT", "2", "10000"); err != nil || got != int64(2) {
		t.Fatalf("WAIT 2: %v slaves acknowledged (%v)", got, err)
	}
	conn.Close()
	slave := inst.Tasks[1]
	if got := do(t, redistest.Server(inst, slave), "GET", "key:7"); got != "value-7" {
		t.Fatalf("GET on slave %s: %v", slave.Name, got)
	}

	if checkStats {
		// The executor reports INFO figures, which GET serves per task.
		err := redistest.Poll(ctx, "stats of every task", func() (bool, string) {
			inst, _, err := env.Get(ctx, name)
			if err != nil || inst == nil {
				return false, fmt.Sprint(err)
			}
			for _, task := range inst.Tasks {
				s := task.Stats
				want := map[stateful.Role]string{stateful.RoleMaster: "master", stateful.RoleSlave: "slave"}[task.Role]
				off, err := strconv.ParseInt(s[stateful.StatReplicationOffset], 10, 64)
				if s[stateful.StatRole] != want || err != nil || off <= 0 || s[workload.StatUsedMemory] == "" || s[workload.StatConnectedClients] == "" || s[workload.StatKeys] != strconv.Itoa(keysBefore) {
					return false, redistest.Describe(inst)
				}
			}
			return true, ""
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	rec := recordStatus(env, name)
	defer rec.stop()
	lost := time.Now()
	lose(t, env, inst, master)

	// GET names a new master, and it takes writes.
	next, err := env.WaitNewMaster(ctx, name, master)
	if err != nil {
		t.Fatal(err)
	}
	shown := time.Since(lost)
	naddr := redistest.Server(inst, next)
	var lastErr error
	err = redistest.Poll(ctx, "a write accepted by the new master", func() (bool, string) {
		reply, err := resp.Do(ctx, naddr, "SET", "after", "failover")
		lastErr = err
		return err == nil && reply == "OK", fmt.Sprint(reply, err)
	})
	if err != nil {
		t.Fatal(err, lastErr)
	}
	t.Logf("master %s lost: GET named %s after %v, which took a write after %v", master.Name, next.Name, shown.Round(time.Millisecond), time.Since(lost).Round(time.Millisecond))

	// Every key the slaves acknowledged is on the new master.
	for i := range keysBefore {
		if got := do(t, naddr, "GET", "key:"+strconv.Itoa(i)); got != "value-"+strconv.Itoa(i) {
			t.Fatalf("key:%d on the new master %s = %v", i, next.Name, got)
		}
	}

	// The instance heals: the lost ordinal is a slave of the new master,
	// synced (it has the key written after the failover).
	inst, err = env.WaitHealthy(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	err = redistest.Poll(ctx, "the status recorder to see RUNNING", func() (bool, string) {
		seen := rec.statuses()
		return len(seen) > 0 && seen[len(seen)-1] == stateful.StatusRunning, fmt.Sprint(seen)
	})
	rec.stop()
	if err != nil {
		t.Fatal(err)
	}
	if m := redistest.Master(inst); m == nil || m.Ordinal != next.Ordinal {
		t.Fatalf("after healing the master is not %s: %s", next.Name, redistest.Describe(inst))
	}
	for _, task := range inst.Tasks {
		if task.Role != stateful.RoleSlave {
			continue
		}
		addr := redistest.Server(inst, task)
		waitReplicates(t, ctx, inst, task, next)
		if got := do(t, addr, "GET", "after"); got != "failover" {
			t.Errorf("slave %s has not synced from the new master: GET after = %v", task.Name, got)
		}
		if task.Ordinal == master.Ordinal && task.Attempt <= master.Attempt {
			t.Errorf("the lost ordinal %s was not relaunched: attempt %d", task.Name, task.Attempt)
		}
	}
	if got := rec.statuses(); !isSubsequence([]stateful.InstanceStatus{stateful.StatusRunning, stateful.StatusDegraded, stateful.StatusRunning}, got) {
		t.Errorf("statuses seen %v, want RUNNING → DEGRADED → RUNNING", got)
	}

	if err := env.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	err = redistest.Poll(ctx, name+" to be gone", func() (bool, string) {
		_, code, err := env.Get(ctx, name)
		return code == 404, fmt.Sprint(code, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	// No server of the instance answers any more.
	var addrs []resp.Server
	for _, task := range append(before.Tasks, inst.Tasks...) {
		addrs = append(addrs, redistest.Server(inst, task))
	}
	err = redistest.Poll(ctx, "every server of "+name+" to be gone", func() (bool, string) {
		for _, addr := range addrs {
			if reply, err := resp.Do(ctx, addr, "PING"); err == nil {
				return false, fmt.Sprintf("%s answers %v", addr, reply)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Error(err)
	}
}

// waitReplicates waits until slave's server replicates master's with its
// link up.
func waitReplicates(t *testing.T, ctx context.Context, inst *stateful.Instance, slave, master *stateful.Task) {
	t.Helper()
	err := redistest.Poll(ctx, slave.Name+" to replicate "+master.Name, func() (bool, string) {
		inf := info(t, redistest.Server(inst, slave))
		ok := inf.Role() == "slave" && inf.LinkUp() && inf["master_host"] == master.Host && inf["master_port"] == strconv.Itoa(master.Ports[workload.PortName])
		return ok, fmt.Sprint(inf)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isSubsequence(want, got []stateful.InstanceStatus) bool {
	i := 0
	for _, s := range got {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

// killProcess SIGKILLs the master's redis-server process, checking first
// that the pid it reports is the server on the master's address (Redis
// rewrites its command line to "redis-server host:port").
func killProcess(t *testing.T, _ *redistest.Env, inst *stateful.Instance, master *stateful.Task) {
	t.Helper()
	s, _ := do(t, redistest.Server(inst, master), "INFO", "server").(string)
	pid, err := strconv.Atoi(workload.ParseInfo(s)["process_id"])
	if err != nil {
		t.Fatalf("no process_id in INFO server: %v", err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(redistest.Addr(master))) {
		t.Fatalf("pid %d is not the server at %s: %q (%v)", pid, redistest.Addr(master), cmdline, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// removeAgent loses the master's host: the agent stops answering and every
// process on it dies.
func removeAgent(t *testing.T, env *redistest.Env, _ *stateful.Instance, master *stateful.Task) {
	t.Helper()
	if err := env.Cluster.RemoveAgent(master.AgentID); err != nil {
		t.Fatal(err)
	}
}

// noProcessesOf fails when a process started for the instance's tasks is
// left: executors and the shells that run the servers, found by their
// environment (redis-server rewrites its own, so walkthrough checks the
// servers by their addresses).
func noProcessesOf(t *testing.T, instance string) {
	t.Helper()
	err := redistest.Poll(testCtx(t, 30*time.Second), "no process of "+instance, func() (bool, string) {
		var pids []string
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			env, err := os.ReadFile(filepath.Join(d, "environ"))
			if err == nil && bytes.Contains(env, []byte("STATEFUL_TASK_ID="+instance+"-")) {
				pids = append(pids, filepath.Base(d))
			}
		}
		return len(pids) == 0, fmt.Sprint("pids ", pids)
	})
	if err != nil {
		t.Error(err)
	}
}

func TestWalkthroughProcessKill(t *testing.T) {
	needRedis(t)
	env := start(t, "process")
	walkthrough(t, env, nil, killProcess, true)
	noProcessesOf(t, "cache1")
}

func TestWalkthroughHostLoss(t *testing.T) {
	needRedis(t)
	env := start(t, "process")
	walkthrough(t, env, nil, removeAgent, false)
	noProcessesOf(t, "cache1")
}

func TestWalkthroughDocker(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	cli, err := dockerlib.New(ctx, dockerlib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Available(ctx); err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	if err := redisimage.Build(ctx, cli, testImage); err != nil {
		if errors.Is(err, testimage.ErrNotInstalled) {
			t.Skipf("needs redis-server and redis-tools to build the image: %v", err)
		}
		t.Fatal(err)
	}
	env := start(t, "docker")
	t.Cleanup(func() {
		// Whatever the test left behind.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.Cleanup(ctx, map[string]string{dockerlib.LabelInstance: "cache1", dockerlib.LabelFramework: redistest.FrameworkName}, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	kill := func(t *testing.T, _ *redistest.Env, _ *stateful.Instance, master *stateful.Task) {
		t.Helper()
		// Task IDs are only unique within a framework: the executor's tests,
		// run in parallel by go test ./..., start a cache1-0.1 of their own.
		list, err := cli.List(ctx, map[string]string{dockerlib.LabelTaskID: master.TaskID, dockerlib.LabelFramework: redistest.FrameworkName})
		if err != nil || len(list) != 1 {
			t.Fatalf("the master's container: %v, %v", list, err)
		}
		if list[0].Image != testImage {
			t.Fatalf("the master runs %s, not %s", list[0].Image, testImage)
		}
		if err := cli.Kill(ctx, list[0].ID, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
	}
	walkthrough(t, env, map[string]any{"image": testImage}, kill, false)
	err = redistest.Poll(ctx, "no container of cache1", func() (bool, string) {
		list, err := cli.List(ctx, map[string]string{dockerlib.LabelInstance: "cache1", dockerlib.LabelFramework: redistest.FrameworkName})
		return err == nil && len(list) == 0, fmt.Sprint(list, err)
	})
	if err != nil {
		t.Error(err)
	}
}

// TestSingleComesBackWithItsData: an S instance's master is relaunched in
// place after its process dies and replays its append-only file from the
// volume, which stays on the agent.
//
// The framework runs redis-server with appendfsync always. With Redis' default, everysec,
// a write is not even handed to the kernel while a background fsync is in
// progress (for up to 2 s), yet the client gets its reply: on a busy disk a
// SIGKILL right after the writes lost all but the first (the relaunched
// master had 1 key of 200; plain redis-server does the same without the
// toolkit). That is Redis' documented everysec trade-off, not a lost volume.
func TestSingleComesBackWithItsData(t *testing.T) {
	needRedis(t)
	env := startWith(t, "process", newWorkloadWith(workload.Options{Command: "redis-server --appendfsync always"}))
	ctx := testCtx(t, 2*time.Minute)
	body := createBody("solo", nil)
	body["type"], body["slaves"] = "S", 0
	if err := env.Create(ctx, body); err != nil {
		t.Fatal(err)
	}
	inst, err := env.WaitHealthy(ctx, "solo")
	if err != nil {
		t.Fatal(err)
	}
	first := inst.Tasks[0]
	conn, err := resp.Dial(ctx, redistest.Server(inst, first))
	if err != nil {
		t.Fatal(err)
	}
	for i := range keysBefore {
		// With appendfsync always the reply comes after the write reached
		// the append-only file (and the disk), so a killed process loses
		// none of these.
		if got, err := conn.Do(ctx, "SET", "key:"+strconv.Itoa(i), "v"); err != nil || got != "OK" {
			t.Fatalf("SET: %v, %v", got, err)
		}
	}
	conn.Close()
	checkPassword(t, inst, first)
	checkFileModes(t, env.WorkDir)
	killProcess(t, env, inst, first)

	err = redistest.Poll(ctx, "the master's next attempt", func() (bool, string) {
		inst, _, err = env.Get(ctx, "solo")
		if err != nil || inst == nil {
			return false, fmt.Sprint(err)
		}
		return redistest.AllHealthy(inst) && inst.Tasks[0].Attempt > first.Attempt, redistest.Describe(inst)
	})
	if err != nil {
		t.Fatal(err)
	}
	again := inst.Tasks[0]
	if again.AgentID != first.AgentID || again.Role != stateful.RoleMaster {
		t.Errorf("relaunched as %s on agent %s, want the master on %s (its volume's)", again.Role, again.AgentID, first.AgentID)
	}
	if n := do(t, redistest.Server(inst, again), "DBSIZE"); n != int64(keysBefore) {
		t.Errorf("the relaunched master has %v keys, want %d", n, keysBefore)
	}
	if err := env.Delete(ctx, "solo"); err != nil {
		t.Fatal(err)
	}
}

// TestSlavesHealthyOnlyOnceSynced: a slave is healthy once its initial sync
// is done. With Redis' default 5 s wait before a diskless sync, the TCP
// check alone would pass seconds earlier; the workload's CheckHealth must
// hold the slaves (and so the instance) back until their links are up.
func TestSlavesHealthyOnlyOnceSynced(t *testing.T) {
	needRedis(t)
	// The default command: Redis waits 5 s before a diskless sync.
	env := startWith(t, "process", newWorkloadWith(workload.Options{}))
	ctx := testCtx(t, 2*time.Minute)
	// An instance the workload cannot run is refused at request time, and
	// so are the spec fields it does not let requests set.
	var refused *client.Error
	if err := env.Create(ctx, map[string]any{"name": "peers", "type": "C", "masters": 3}); !errors.As(err, &refused) || refused.StatusCode != http.StatusBadRequest || refused.Field != "type" {
		t.Fatalf("a C instance: %v; want 400 naming the type", err)
	}
	for field, spec := range map[string]map[string]any{
		"spec.command": {"command": "sh -c 'id > /tmp/owned'"},
		"spec.image":   {"image": "attacker/redis:latest"},
		"spec.env":     {"env": map[string]string{workload.PasswordEnv: "chosen"}},
	} {
		if err := env.Create(ctx, createBody("refused", spec)); !errors.As(err, &refused) || refused.StatusCode != http.StatusBadRequest || refused.Field != field {
			t.Fatalf("a request setting %s: %v; want 400 naming it", field, err)
		}
	}
	if _, code, _ := env.Get(ctx, "refused"); code != http.StatusNotFound {
		t.Fatalf("a refused instance exists (GET: %d)", code)
	}
	body := createBody("synced", nil)
	if err := env.Create(ctx, body); err != nil {
		t.Fatal(err)
	}
	err := redistest.Poll(ctx, "a healthy slave", func() (bool, string) {
		inst, _, err := env.Get(ctx, "synced")
		if err != nil || inst == nil {
			return false, fmt.Sprint(err)
		}
		for _, task := range inst.Tasks {
			if task.Role == stateful.RoleSlave && task.Healthy {
				if inf := info(t, redistest.Server(inst, task)); !inf.LinkUp() {
					t.Fatalf("%s is healthy but its link to the master is %s", task.Name, inf["master_link_status"])
				}
				return true, ""
			}
		}
		return false, redistest.Describe(inst)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkPassword: the instance has a generated password, which the server
// requires: a client without it, and redis-cli without it, are refused.
func checkPassword(t *testing.T, inst *stateful.Instance, task *stateful.Task) {
	t.Helper()
	if pw := inst.Spec.Env[workload.PasswordEnv]; len(pw) < 32 {
		t.Fatalf("instance %s has no generated password (%s=%q)", inst.Name, workload.PasswordEnv, pw)
	}
	ctx := testCtx(t, 10*time.Second)
	if _, err := resp.Do(ctx, resp.Server{Addr: redistest.Addr(task)}, "GET", "key:1"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET without the password: %v, want NOAUTH", err)
	}
	if _, err := resp.Do(ctx, resp.Server{Addr: redistest.Addr(task), Password: "guessed"}, "GET", "key:1"); err == nil {
		t.Error("GET with a wrong password was answered")
	}
	out, _ := exec.CommandContext(ctx, "redis-cli", "-h", task.Host, "-p", strconv.Itoa(task.Ports[workload.PortName]), "GET", "key:1").CombinedOutput()
	if !strings.Contains(string(out), "NOAUTH") {
		t.Errorf("redis-cli without the password: %q, want NOAUTH", out)
	}
}

// checkFileModes: nothing the framework, the agents, the executors or the
// tasks (redis' append-only files) wrote is readable by other users.
func checkFileModes(t *testing.T, dir string) {
	t.Helper()
	var aof int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "appendonly") {
			aof++
		}
		// The test's own directory, and symbolic links (always 0777),
		// say nothing.
		if path != dir && info.Mode().Type()&(fs.ModeSocket|fs.ModeSymlink) == 0 && info.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s has mode %04o: other users may read it", path, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if aof == 0 {
		t.Errorf("no append-only file under %s", dir)
	}
}
