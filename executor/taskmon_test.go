package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// recorder is the reporter a TaskMon talks to in these tests.
type recorder struct {
	mu      sync.Mutex
	updates []mesos.TaskStatus
	msgs    []protocol.Message
}

func (r *recorder) Update(s mesos.TaskStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, s)
}

func (r *recorder) Message(m protocol.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) states() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.updates {
		s := u.GetState().String()
		if u.Healthy != nil {
			s += fmt.Sprintf("(healthy=%v)", *u.Healthy)
		}
		out = append(out, s)
	}
	return out
}

// waitUpdate waits for the first update (from index from on) with state.
func (r *recorder) waitUpdate(t *testing.T, within time.Duration, state mesos.TaskState) mesos.TaskStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, u := range r.snapshot() {
			if u.GetState() == state {
				return u
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: no %s update (got %s)", within, state, strings.Join(r.states(), ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *recorder) stats() []*protocol.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*protocol.Stats
	for _, m := range r.msgs {
		if s, ok := m.(*protocol.Stats); ok {
			out = append(out, s)
		}
	}
	return out
}

func processOnly(context.Context, *protocol.TaskData) (Runtime, error) { return ProcessRuntime{}, nil }

type monTest struct {
	mon  *TaskMon
	rec  *recorder
	spec StartSpec
}

func runMon(t *testing.T, d protocol.TaskData, stats StatsProvider, statsInterval time.Duration) *monTest {
	t.Helper()
	return runMonWith(t, d, taskHooks{stats: stats}, statsInterval)
}

func runMonWith(t *testing.T, d protocol.TaskData, hooks taskHooks, statsInterval time.Duration) *monTest {
	t.Helper()
	d.Version = protocol.TaskDataVersion
	if err := d.Validate(); err != nil {
		t.Fatalf("test task data: %v", err)
	}
	rec := &recorder{}
	spec := StartSpec{TaskID: "cache1-0.1", ExecutorID: "exec-1", Sandbox: t.TempDir(), Host: "127.0.0.1", Data: &d, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}
	mon := newTaskMon(spec, time.Second, processOnly, rec, hooks, monitorConfig{StatsInterval: statsInterval, StartupCheckInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	go mon.Run(ctx)
	t.Cleanup(func() {
		cancel()
		<-mon.Done()
	})
	return &monTest{mon: mon, rec: rec, spec: spec}
}

func needRedis(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install -y redis-server redis-tools)", bin)
		}
	}
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

func redisPing(port uint32) string {
	out, _ := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "ping").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// redisTask is a real redis-server that starts answering only after delay.
func redisTask(t *testing.T, port uint32, delay time.Duration, health *protocol.Health) protocol.TaskData {
	return protocol.TaskData{
		Instance: "cache1", Role: protocol.RoleMaster,
		Command: fmt.Sprintf("sleep %.2f; exec redis-server --port $STATEFUL_PORT_REDIS --bind 127.0.0.1 --save '' --appendonly no --dir $STATEFUL_VOLUME", delay.Seconds()),
		Ports:   map[string]uint32{"redis": port},
		Volume:  &protocol.Volume{HostPath: filepath.Join(t.TempDir(), "vol")},
		Health:  health,
	}
}

func TestTaskMonRedisRunningOnlyOnceHealthy(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	h := &protocol.Health{Command: "redis-cli -p $STATEFUL_PORT_REDIS ping | grep -q PONG", Interval: protocol.Duration(100 * time.Millisecond), Grace: protocol.Duration(20 * time.Second)}
	mt := runMon(t, redisTask(t, port, 500*time.Millisecond, h), nil, 0)

	running := mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)
	// RUNNING must mean "answering": PING right now.
	if got := redisPing(port); got != "PONG" {
		t.Errorf("TASK_RUNNING was reported but redis answers %q", got)
	}
	if running.Healthy == nil || !*running.Healthy || running.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED {
		t.Errorf("first RUNNING should say healthy with the health reason: %+v", running)
	}
	if states := mt.rec.states(); states[0] != "TASK_STARTING" {
		t.Errorf("updates = %v, want TASK_STARTING first", states)
	}
}

func TestTaskMonHealthChangesAreReported(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	h := &protocol.Health{
		Command:  "redis-cli -p $STATEFUL_PORT_REDIS ping | grep -q PONG",
		Interval: protocol.Duration(100 * time.Millisecond),
		Timeout:  protocol.Duration(300 * time.Millisecond),
		Grace:    protocol.Duration(20 * time.Second),
		// The pause fails several checks in a row; this test is about
		// reporting them, not about the kill that would follow.
		ConsecutiveFailures: ptr(0),
	}
	mt := runMon(t, redisTask(t, port, 0, h), nil, 0)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)

	// Freeze every client for 1.5 s: PING times out, then works again.
	out, err := exec.Command("redis-cli", "-p", fmt.Sprint(port), "CLIENT", "PAUSE", "1500", "ALL").CombinedOutput()
	if err != nil {
		t.Fatalf("CLIENT PAUSE: %v %s", err, out)
	}
	want := []string{"TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)", "TASK_RUNNING(healthy=true)"}
	eventually(t, 10*time.Second, "health went down and up again", func() bool {
		return strings.Join(mt.rec.states(), ",") == strings.Join(want, ",")
	})
	mt.rec.mu.Lock()
	unhealthy := mt.rec.updates[2]
	mt.rec.mu.Unlock()
	if unhealthy.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED || !strings.Contains(unhealthy.GetMessage(), "health") {
		t.Errorf("unhealthy update = reason %v message %q", unhealthy.GetReason(), unhealthy.GetMessage())
	}
}

func TestTaskMonTCPHealthCheck(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	h := &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(100 * time.Millisecond), Grace: protocol.Duration(20 * time.Second)}
	mt := runMon(t, redisTask(t, port, 300*time.Millisecond, h), nil, 0)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)
	if got := redisPing(port); got != "PONG" {
		t.Errorf("RUNNING before the port was open: PING says %q", got)
	}
}

func TestTaskMonNeverHealthyFailsAfterGrace(t *testing.T) {
	port := freePort(t) // nothing listens there
	pidFile := filepath.Join(t.TempDir(), "pid")
	d := protocol.TaskData{
		Command: "echo $$ > " + pidFile + "; exec sleep 1000",
		Ports:   map[string]uint32{"redis": port},
		Health:  &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(50 * time.Millisecond), Grace: protocol.Duration(600 * time.Millisecond), Timeout: protocol.Duration(100 * time.Millisecond)},
	}
	start := time.Now()
	mt := runMon(t, d, nil, 0)
	pid := readPID(t, pidFile)
	failed := mt.rec.waitUpdate(t, 10*time.Second, mesos.TASK_FAILED)
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("failed after %v, before the grace period", d)
	}
	if !strings.Contains(failed.GetMessage(), "health check never passed") || !strings.Contains(failed.GetMessage(), "connect") {
		t.Errorf("message %q should say the health check never passed and why", failed.GetMessage())
	}
	for _, s := range mt.rec.states() {
		if strings.HasPrefix(s, "TASK_RUNNING") {
			t.Errorf("a never-healthy task was reported RUNNING: %v", mt.rec.states())
		}
	}
	eventually(t, 5*time.Second, "the unhealthy task's process is killed", func() bool { return !alive(pid) })
}

func TestTaskMonExitFromOutsideFailsWithExitCode(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	d := redisTask(t, port, 0, &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(100 * time.Millisecond), Grace: protocol.Duration(20 * time.Second)})
	d.Command = "echo 'about to serve' >&2; " + d.Command
	mt := runMon(t, d, nil, 0)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)

	pid := mt.mon.workload.(*process).pgid // exec'd: the shell became redis-server
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := mt.rec.waitUpdate(t, 5*time.Second, mesos.TASK_FAILED)
	if !strings.Contains(failed.GetMessage(), "exit code 137") || !strings.Contains(failed.GetMessage(), "about to serve") {
		t.Errorf("message %q should give the exit code and the stderr tail", failed.GetMessage())
	}
	sd, err := protocol.DecodeStatusData(failed.Data)
	if err != nil || sd.ExitCode == nil || *sd.ExitCode != 137 || sd.Runtime != "process" {
		t.Errorf("status data = %+v, %v", sd, err)
	}
}

func TestTaskMonFinishedWithoutHealthCheck(t *testing.T) {
	mt := runMon(t, protocol.TaskData{Command: "sleep 0.2; exit 0"}, nil, 0)
	mt.rec.waitUpdate(t, 5*time.Second, mesos.TASK_FINISHED)
	if got := strings.Join(mt.rec.states(), ","); got != "TASK_STARTING,TASK_RUNNING,TASK_FINISHED" {
		t.Errorf("updates = %s", got)
	}
}

func TestTaskMonKill(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	mt := runMon(t, protocol.TaskData{Command: "echo $$ > " + pidFile + "; exec sleep 1000"}, nil, 0)
	mt.rec.waitUpdate(t, 5*time.Second, mesos.TASK_RUNNING)
	pid := readPID(t, pidFile)
	mt.mon.Kill(2 * time.Second)
	killed := mt.rec.waitUpdate(t, 5*time.Second, mesos.TASK_KILLED)
	if !strings.Contains(killed.GetMessage(), "signal 15") {
		t.Errorf("killed message = %q, want the SIGTERM exit", killed.GetMessage())
	}
	if alive(pid) {
		t.Error("the killed task's process is still running")
	}
	<-mt.mon.Done()
	if got := strings.Join(mt.rec.states(), ","); got != "TASK_STARTING,TASK_RUNNING,TASK_KILLED" {
		t.Errorf("updates = %s", got)
	}
}

func TestTaskMonSecondKillForcesAtOnce(t *testing.T) {
	dir := t.TempDir()
	pidFile, termFile := filepath.Join(dir, "pid"), filepath.Join(dir, "term")
	mt := runMon(t, protocol.TaskData{Command: "trap 'echo $$ > " + termFile + "' TERM; echo $$ > " + pidFile + "; while :; do sleep 0.05; done"}, nil, 0)
	readPID(t, pidFile)
	mt.rec.waitUpdate(t, 5*time.Second, mesos.TASK_RUNNING)
	start := time.Now()
	mt.mon.Kill(time.Minute)
	readPID(t, termFile) // the graceful stop is under way, and ignored
	mt.mon.Kill(0)
	killed := mt.rec.waitUpdate(t, 10*time.Second, mesos.TASK_KILLED)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("forced kill took %v", d)
	}
	if !strings.Contains(killed.GetMessage(), "signal 9") {
		t.Errorf("message %q: want a SIGKILL", killed.GetMessage())
	}
}

func TestTaskMonShorterKillBeforeTheStopBegins(t *testing.T) {
	// Both kills land before the TaskMon gets to stop the task: the
	// shorter grace must still win.
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	mt := runMon(t, protocol.TaskData{Command: "trap '' TERM; echo $$ > " + pidFile + "; while :; do sleep 0.05; done"}, nil, 0)
	readPID(t, pidFile)
	mt.mon.Kill(time.Minute)
	mt.mon.Kill(0)
	killed := mt.rec.waitUpdate(t, 10*time.Second, mesos.TASK_KILLED)
	if !strings.Contains(killed.GetMessage(), "signal 9") {
		t.Errorf("message %q: want a SIGKILL", killed.GetMessage())
	}
}

func TestTaskMonKillBeforeStart(t *testing.T) {
	rec := &recorder{}
	d := &protocol.TaskData{Version: 1, Command: "sleep 1000"}
	blocked := make(chan struct{})
	resolve := func(ctx context.Context, _ *protocol.TaskData) (Runtime, error) {
		close(blocked)
		<-ctx.Done() // a slow image pull, cut short by the kill
		return nil, ctx.Err()
	}
	mon := newTaskMon(StartSpec{TaskID: "t", Sandbox: t.TempDir(), Data: d}, time.Second, resolve, rec, taskHooks{}, monitorConfig{})
	go mon.Run(context.Background())
	<-blocked
	mon.Kill(time.Second)
	select {
	case <-mon.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("kill during start did not end the TaskMon")
	}
	if got := strings.Join(rec.states(), ","); got != "TASK_STARTING,TASK_KILLED" {
		t.Errorf("updates = %s", got)
	}
}

func TestTaskMonStartFailure(t *testing.T) {
	mt := runMon(t, protocol.TaskData{Args: []string{"/no/such/redis-server"}}, nil, 0)
	failed := mt.rec.waitUpdate(t, 5*time.Second, mesos.TASK_FAILED)
	if !strings.Contains(failed.GetMessage(), "failed to start") || !strings.Contains(failed.GetMessage(), "/no/such/redis-server") {
		t.Errorf("message = %q", failed.GetMessage())
	}
}

func TestTaskMonResolveFailureNamesTheReason(t *testing.T) {
	rec := &recorder{}
	d := &protocol.TaskData{Version: 1, Image: "redis:7"}
	resolve := func(context.Context, *protocol.TaskData) (Runtime, error) {
		return nil, errors.New(`image "redis:7" needs Docker, which is unavailable`)
	}
	mon := newTaskMon(StartSpec{TaskID: "t", Sandbox: t.TempDir(), Data: d}, time.Second, resolve, rec, taskHooks{}, monitorConfig{})
	mon.Run(context.Background())
	failed := rec.waitUpdate(t, time.Second, mesos.TASK_FAILED)
	if !strings.Contains(failed.GetMessage(), "redis:7") {
		t.Errorf("message = %q", failed.GetMessage())
	}
}

func TestTaskMonStatsWithWorkloadFigures(t *testing.T) {
	needRedis(t)
	port := freePort(t)
	provider := StatsProviderFunc(func(ctx context.Context, task TaskHandle) (map[string]string, error) {
		out, err := task.Exec(ctx, "redis-cli", "-p", fmt.Sprint(task.Data.Ports["redis"]), "INFO", "replication")
		if err != nil {
			return nil, err
		}
		figures := map[string]string{"addr": task.Addr("redis")}
		for _, line := range strings.Split(out.Stdout, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && (k == "role" || k == "connected_slaves") {
				figures[k] = v
			}
		}
		return figures, nil
	})
	d := redisTask(t, port, 0, &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(100 * time.Millisecond), Grace: protocol.Duration(20 * time.Second)})
	mt := runMon(t, d, provider, 100*time.Millisecond)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)

	var s *protocol.Stats
	eventually(t, 10*time.Second, "a stats message with the redis role", func() bool {
		for _, st := range mt.rec.stats() {
			if st.Workload["role"] == "master" && st.State == "TASK_RUNNING" {
				s = st
				return true
			}
		}
		return false
	})
	if s.TaskID != "cache1-0.1" || s.ExecutorID != "exec-1" || s.MemBytes == 0 || s.Healthy == nil || !*s.Healthy || s.Error != "" {
		t.Errorf("stats = %+v", s)
	}
	if s.Workload["addr"] != fmt.Sprintf("127.0.0.1:%d", port) || s.Workload["connected_slaves"] != "0" {
		t.Errorf("workload figures = %v", s.Workload)
	}
}

func TestTaskMonContextEndStopsTheTaskSilently(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	rec := &recorder{}
	d := &protocol.TaskData{Version: 1, Command: "echo $$ > " + pidFile + "; exec sleep 1000"}
	mon := newTaskMon(StartSpec{TaskID: "t", Sandbox: t.TempDir(), Data: d, Stdout: os.Stdout, Stderr: os.Stderr}, time.Second, processOnly, rec, taskHooks{}, monitorConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	go mon.Run(ctx)
	pid := readPID(t, pidFile)
	rec.waitUpdate(t, 5*time.Second, mesos.TASK_RUNNING)
	cancel()
	select {
	case <-mon.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("TaskMon did not stop with its context")
	}
	if alive(pid) {
		t.Error("the task outlived its TaskMon")
	}
	if got := strings.Join(rec.states(), ","); got != "TASK_STARTING,TASK_RUNNING" {
		t.Errorf("updates = %s", got)
	}
}
