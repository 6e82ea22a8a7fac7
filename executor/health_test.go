package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

func ptr[T any](v T) *T { return &v }

// countingHook is a HealthProvider that counts its calls and failures
// around the check under test.
type countingHook struct {
	check    func(ctx context.Context, task TaskHandle) error
	calls    atomic.Int64
	failures atomic.Int64
}

func (h *countingHook) WorkloadHealth(ctx context.Context, task TaskHandle) error {
	h.calls.Add(1)
	err := h.check(ctx, task)
	if err != nil {
		h.failures.Add(1)
	}
	return err
}

// waitFailures waits until the hook has failed n times.
func (h *countingHook) waitFailures(t *testing.T, n int64) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d failed workload health checks (%d so far)", n, h.failures.Load()), func() bool {
		return h.failures.Load() >= n
	})
}

// readyFileHook passes once the file "ready" exists in the task's working
// directory, looked at from inside the task with Exec, as a real workload
// would look at its own state.
func readyFileHook() *countingHook {
	return &countingHook{check: func(ctx context.Context, task TaskHandle) error {
		out, err := task.Exec(ctx, "/bin/sh", "-c", "test -e ready")
		if err != nil {
			return err
		}
		if out.ExitCode != 0 {
			return fmt.Errorf("no ready file in the task's directory (test exited %d)", out.ExitCode)
		}
		return nil
	}}
}

// sleeperTask is a process that does nothing until killed, in a volume
// directory the test can put files in; it writes its pid to pidFile.
func sleeperTask(t *testing.T, health *protocol.Health) (d protocol.TaskData, dir, pidFile string) {
	dir = filepath.Join(t.TempDir(), "vol")
	pidFile = filepath.Join(t.TempDir(), "pid")
	return protocol.TaskData{
		Command: "echo $$ > " + pidFile + "; exec sleep 1000",
		Volume:  &protocol.Volume{HostPath: dir},
		Health:  health,
	}, dir, pidFile
}

// fastHealth is a spec check that always passes, checked every 50 ms, so
// that the hook decides; limit is its consecutive_failures.
func fastHealth(limit *int) *protocol.Health {
	return &protocol.Health{
		Command:             "true",
		Interval:            protocol.Duration(50 * time.Millisecond),
		Timeout:             protocol.Duration(2 * time.Second),
		Grace:               protocol.Duration(20 * time.Second),
		ConsecutiveFailures: limit,
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *recorder) noUpdate(t *testing.T, state mesos.TaskState) {
	t.Helper()
	for _, u := range r.snapshot() {
		if u.GetState() == state {
			t.Fatalf("unexpected %s update: %v", state, r.states())
		}
	}
}

func (r *recorder) snapshot() []mesos.TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mesos.TaskStatus(nil), r.updates...)
}

// waitStates waits for exactly the updates want (as recorder.states
// renders them).
func (r *recorder) waitStates(t *testing.T, within time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for strings.Join(r.states(), ",") != strings.Join(want, ",") {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: updates = %v, want %v", within, r.states(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A Redis replica whose master is not there yet answers on its port (the
// spec's TCP check passes) but is not a usable slave: the hook holds
// TASK_RUNNING back until master_link_status is up.
func TestTaskMonHookGatesRunningUntilTheReplicaIsSynced(t *testing.T) {
	needRedis(t)
	masterPort, replicaPort := freePort(t), freePort(t)
	hook := &countingHook{check: func(ctx context.Context, task TaskHandle) error {
		out, err := task.Exec(ctx, "redis-cli", "-p", fmt.Sprint(task.Data.Ports["redis"]), "INFO", "replication")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out.Stdout, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "master_link_status" {
				if v != "up" {
					return fmt.Errorf("master_link_status is %s", v)
				}
				return nil
			}
		}
		return fmt.Errorf("INFO replication has no master_link_status: %q", out.Stdout)
	}}
	d := redisTask(t, replicaPort, 0, &protocol.Health{TCPPort: "redis", Interval: protocol.Duration(100 * time.Millisecond), Grace: protocol.Duration(20 * time.Second)})
	d.Role = protocol.RoleSlave
	d.Command += fmt.Sprintf(" --replicaof 127.0.0.1 %d", masterPort)
	mt := runMonWith(t, d, taskHooks{health: hook}, 0)

	// The hook runs only once the port answers, so failures mean: redis
	// is up, and the hook alone keeps the task from RUNNING.
	hook.waitFailures(t, 5)
	if got := redisPing(replicaPort); got != "PONG" {
		t.Fatalf("the replica should be serving while its hook fails; PING says %q", got)
	}
	mt.rec.noUpdate(t, mesos.TASK_RUNNING)

	// No diskless-sync delay: the replica syncs at once.
	master := exec.Command("redis-server", "--port", fmt.Sprint(masterPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")
	master.Dir = t.TempDir()
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = master.Process.Kill()
		_ = master.Wait()
	})

	running := mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)
	if running.Healthy == nil || !*running.Healthy || running.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED {
		t.Errorf("first RUNNING should say healthy with the health reason: %+v", running)
	}
	out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(replicaPort), "INFO", "replication").Output()
	if !strings.Contains(string(out), "master_link_status:up") {
		t.Errorf("RUNNING was reported but the replica says:\n%s", out)
	}
}

// Without a spec check the hook alone decides.
func TestTaskMonHookAloneGatesRunning(t *testing.T) {
	hook := readyFileHook()
	d, dir, _ := sleeperTask(t, nil)
	mt := runMonWith(t, d, taskHooks{health: hook}, 0)
	hook.waitFailures(t, 3)
	mt.rec.noUpdate(t, mesos.TASK_RUNNING)

	touch(t, filepath.Join(dir, "ready"))
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)")
}

func TestTaskMonHookNeverPassingFailsAfterGrace(t *testing.T) {
	for _, tc := range []struct {
		name string
		hook func() error
		want string
	}{
		{"error", func() error { return errors.New("replica link is down") }, "workload health check: replica link is down"},
		{"panic", func() error { panic("replica link is down") }, "workload health check panicked: replica link is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := &countingHook{check: func(context.Context, TaskHandle) error { return tc.hook() }}
			h := fastHealth(nil)
			h.Grace = protocol.Duration(600 * time.Millisecond)
			d, _, pidFile := sleeperTask(t, h)
			start := time.Now()
			mt := runMonWith(t, d, taskHooks{health: hook}, 0)
			pid := readPID(t, pidFile)

			failed := mt.rec.waitUpdate(t, 10*time.Second, mesos.TASK_FAILED)
			if d := time.Since(start); d < 600*time.Millisecond {
				t.Errorf("failed after %v, before the grace period", d)
			}
			if msg := failed.GetMessage(); !strings.Contains(msg, "never passed within its 600ms grace period") || !strings.Contains(msg, tc.want) {
				t.Errorf("message %q should say the health check never passed, and %q", msg, tc.want)
			}
			mt.rec.noUpdate(t, mesos.TASK_RUNNING)
			eventually(t, 5*time.Second, "the never-healthy task's process is killed", func() bool { return !alive(pid) })
			if hook.calls.Load() < 2 {
				t.Errorf("the hook ran %d times within the grace period", hook.calls.Load())
			}
		})
	}
}

func TestTaskMonHookHealthChangesAreReported(t *testing.T) {
	hook := readyFileHook()
	d, dir, pidFile := sleeperTask(t, fastHealth(ptr(0)))
	ready := filepath.Join(dir, "ready")
	mt := runMonWith(t, d, taskHooks{health: hook}, 0)
	readPID(t, pidFile)
	touch(t, ready)
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)")

	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)")
	touch(t, ready)
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)", "TASK_RUNNING(healthy=true)")

	updates := mt.rec.snapshot()
	down, up := updates[2], updates[3]
	if down.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED || !strings.Contains(down.GetMessage(), "workload health check: no ready file") {
		t.Errorf("unhealthy update: reason %v, message %q", down.GetReason(), down.GetMessage())
	}
	if up.GetReason() != mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED {
		t.Errorf("healthy again update: reason %v", up.GetReason())
	}
}

// A panicking hook makes the task unhealthy, not the executor crash, and
// the checks go on.
func TestTaskMonHookPanicIsUnhealthy(t *testing.T) {
	var panicking atomic.Bool
	hook := &countingHook{check: func(context.Context, TaskHandle) error {
		if panicking.Load() {
			panic(errors.New("INFO parser bug"))
		}
		return nil
	}}
	d, _, pidFile := sleeperTask(t, fastHealth(ptr(0)))
	mt := runMonWith(t, d, taskHooks{health: hook}, 0)
	pid := readPID(t, pidFile)
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)")

	panicking.Store(true)
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)")
	if msg := mt.rec.snapshot()[2].GetMessage(); !strings.Contains(msg, "workload health check panicked") || !strings.Contains(msg, "INFO parser bug") {
		t.Errorf("unhealthy message %q should name the panic", msg)
	}
	panicking.Store(false)
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)", "TASK_RUNNING(healthy=true)")
	if !alive(pid) {
		t.Error("the task died of its hook's panic")
	}
}

// A task that was RUNNING and then fails its checks consecutive_failures
// times in a row is killed and fails, whichever check fails.
func TestTaskMonConsecutiveFailuresKillARunningTask(t *testing.T) {
	for _, tc := range []struct {
		name string
		// spec and hook check for the file "ready" (either may be nil).
		spec *protocol.Health
		hook *countingHook
		want string
	}{
		{"hook", fastHealth(ptr(3)), readyFileHook(), "workload health check: no ready file"},
		{"spec check", &protocol.Health{Command: "test -e ready", Interval: protocol.Duration(50 * time.Millisecond), Grace: protocol.Duration(20 * time.Second), ConsecutiveFailures: ptr(3)}, nil, "health command exited with status 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, dir, pidFile := sleeperTask(t, tc.spec)
			ready := filepath.Join(dir, "ready")
			hooks := taskHooks{}
			if tc.hook != nil {
				hooks.health = tc.hook
			}
			mt := runMonWith(t, d, hooks, 0)
			pid := readPID(t, pidFile)
			touch(t, ready)
			mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)")

			if err := os.Remove(ready); err != nil {
				t.Fatal(err)
			}
			failed := mt.rec.waitUpdate(t, 10*time.Second, mesos.TASK_FAILED)
			want := "health check failed 3 consecutive times; last error: " + tc.want
			if !strings.HasPrefix(failed.GetMessage(), want) {
				t.Errorf("message %q, want it to start with %q", failed.GetMessage(), want)
			}
			// The first failure is reported as such; the third ends it.
			mt.rec.waitStates(t, 5*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)", "TASK_FAILED(healthy=false)")
			if sd, err := protocol.DecodeStatusData(failed.Data); err != nil || sd.ExitCode == nil || *sd.ExitCode != 128+int(syscall.SIGTERM) {
				t.Errorf("status data = %+v, %v; want the exit code of the SIGTERM", sd, err)
			}
			eventually(t, 5*time.Second, "the unhealthy task's process is killed", func() bool { return !alive(pid) })
		})
	}
}

func TestTaskMonZeroConsecutiveFailuresNeverKills(t *testing.T) {
	hook := readyFileHook()
	d, dir, pidFile := sleeperTask(t, fastHealth(ptr(0)))
	ready := filepath.Join(dir, "ready")
	mt := runMonWith(t, d, taskHooks{health: hook}, 0)
	pid := readPID(t, pidFile)
	touch(t, ready)
	mt.rec.waitStates(t, 10*time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)")
	before := hook.failures.Load()
	if err := os.Remove(ready); err != nil {
		t.Fatal(err)
	}
	hook.waitFailures(t, before+10)
	mt.rec.noUpdate(t, mesos.TASK_FAILED)
	if !alive(pid) {
		t.Error("the task was killed although consecutive_failures is 0")
	}
	mt.rec.waitStates(t, time.Second, "TASK_STARTING", "TASK_RUNNING(healthy=true)", "TASK_RUNNING(healthy=false)")
}

// A hook that ignores its ctx fails the check at the timeout instead of
// stalling the TaskMon, and is not called again while it hangs.
func TestTaskMonHookIgnoringItsContext(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hook := &countingHook{check: func(context.Context, TaskHandle) error {
		<-release
		return nil
	}}
	h := fastHealth(nil)
	h.Timeout = protocol.Duration(100 * time.Millisecond)
	h.Grace = protocol.Duration(800 * time.Millisecond)
	d, _, _ := sleeperTask(t, h)
	mt := runMonWith(t, d, taskHooks{health: hook}, 0)

	failed := mt.rec.waitUpdate(t, 10*time.Second, mesos.TASK_FAILED)
	if !strings.Contains(failed.GetMessage(), "never passed") || !strings.Contains(failed.GetMessage(), "workload health check") {
		t.Errorf("message %q should say the workload check never passed", failed.GetMessage())
	}
	select {
	case <-mt.mon.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a hanging hook kept the TaskMon from ending")
	}
	if n := hook.calls.Load(); n != 1 {
		t.Errorf("the hanging hook was called %d times; want once (no overlapping calls)", n)
	}
}

// Options.Health reaches the TaskMons of a running executor.
func TestHealthProviderGatesRunningThroughTheAgent(t *testing.T) {
	a := newTestAgent(t)
	hook := readyFileHook()
	startExecutor(t, a, execSetup{health: hook})
	d, dir, pidFile := sleeperTask(t, fastHealth(nil))
	a.launch("web-0.1", taskData(t, d), nil)
	readPID(t, pidFile)
	hook.waitFailures(t, 3)
	for _, s := range a.stateList() {
		if strings.Contains(s, "RUNNING") {
			t.Fatalf("RUNNING before the hook passed: %v", a.stateList())
		}
	}
	touch(t, filepath.Join(dir, "ready"))
	running := a.waitState("web-0.1", mesos.TASK_RUNNING, 10*time.Second)
	if running.Healthy == nil || !*running.Healthy {
		t.Errorf("RUNNING update = %+v, want healthy", running)
	}
}
