package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/internal/testimage"
)

// TestMain lets the test binary act as a throwaway "executor" for the
// watchdog test: it starts a workload and waits to be killed.
func TestMain(m *testing.M) {
	if cmd := os.Getenv("STATEFUL_EXECUTOR_TEST_HELPER"); cmd != "" {
		helperStartAndHang(cmd)
		return
	}
	code := m.Run()
	if executorBinary.dir != "" {
		os.RemoveAll(executorBinary.dir)
	}
	os.Exit(code)
}

func helperStartAndHang(command string) {
	if rest, ok := strings.CutPrefix(command, "docker:"); ok {
		fw, port, _ := strings.Cut(rest, ":")
		helperDockerStartAndHang(fw, port)
		return
	}
	spec := StartSpec{TaskID: "helper", Sandbox: os.Getenv("STATEFUL_EXECUTOR_TEST_SANDBOX"), Data: &protocol.TaskData{Version: 1, Command: command}}
	w, err := ProcessRuntime{}.Start(context.Background(), spec)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(w.(*process).pgid)
	select {}
}

// helperDockerStartAndHang starts a redis container for framework fw,
// prints its ID and waits to be killed, like an executor that crashes.
func helperDockerStartAndHang(fw, port string) {
	ctx := context.Background()
	cli, err := dockerlib.New(ctx, dockerlib.Options{})
	if err == nil {
		var rt *DockerRuntime
		if rt, err = NewDockerRuntime(cli); err == nil {
			d := &protocol.TaskData{Version: 1, Runtime: "docker", Image: testimage.RedisImage, Args: []string{"--port", port}}
			var w Workload
			if w, err = rt.Start(ctx, StartSpec{TaskID: "orphan", ExecutorID: "exec-dead", FrameworkID: fw, Sandbox: os.TempDir(), Host: "127.0.0.1", Data: d}); err == nil {
				fmt.Println(w.(*container).id)
				select {}
			}
		}
	}
	fmt.Println("error", err)
	os.Exit(1)
}

func startProcess(t *testing.T, d protocol.TaskData) (*process, *syncBuffer, *syncBuffer) {
	t.Helper()
	d.Version = protocol.TaskDataVersion
	if err := d.Validate(); err != nil {
		t.Fatalf("test task data: %v", err)
	}
	var stdout, stderr syncBuffer
	spec := StartSpec{TaskID: "t1", ExecutorID: "e1", Sandbox: t.TempDir(), Host: "127.0.0.1", Data: &d, Stdout: &stdout, Stderr: &stderr}
	w, err := ProcessRuntime{}.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	p := w.(*process)
	killGroupOnCleanup(t, p.pgid)
	t.Cleanup(func() { _ = p.Stop(context.Background(), 0) })
	return p, &stdout, &stderr
}

func waitDone(t *testing.T, w Workload, within time.Duration) ExitStatus {
	t.Helper()
	select {
	case <-w.Done():
		return w.Exit()
	case <-time.After(within):
		t.Fatalf("workload did not exit within %v", within)
		return ExitStatus{}
	}
}

func TestProcessExitCodeOutputAndStderrTail(t *testing.T) {
	p, stdout, stderr := startProcess(t, protocol.TaskData{Command: "echo hello; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i >&2; done; exit 3"})
	st := waitDone(t, p, 5*time.Second)
	if st.Code != 3 || st.Signal != 0 {
		t.Errorf("exit = %+v, want code 3", st)
	}
	if got := stdout.String(); got != "hello\n" {
		t.Errorf("stdout = %q", got)
	}
	if !strings.Contains(stderr.String(), "line1\n") {
		t.Errorf("stderr sink misses output: %q", stderr.String())
	}
	tail := p.StderrTail()
	if !strings.HasSuffix(tail, "line12") || strings.Contains(tail, "line2\n") {
		t.Errorf("tail should be the last %d lines, got %q", stderrTailLines, tail)
	}
}

func TestProcessEnvironmentAndVolume(t *testing.T) {
	vol := filepath.Join(t.TempDir(), "cache1-0", "data")
	p, stdout, _ := startProcess(t, protocol.TaskData{
		Command:  `echo "$PWD|$STATEFUL_VOLUME|$STATEFUL_PORT_REDIS_BUS|$STATEFUL_INSTANCE|$STATEFUL_ORDINAL|$STATEFUL_ROLE|$GREETING|$STATEFUL_HOST"`,
		Instance: "cache1", Ordinal: 0, Role: protocol.RoleMaster,
		Env:    map[string]string{"GREETING": "hi there"},
		Ports:  map[string]uint32{"redis-bus": 31002},
		Volume: &protocol.Volume{HostPath: vol},
	})
	waitDone(t, p, 5*time.Second)
	want := vol + "|" + vol + "|31002|cache1|0|master|hi there|127.0.0.1\n"
	if got := stdout.String(); got != want {
		t.Errorf("task saw %q, want %q", got, want)
	}
	if fi, err := os.Stat(vol); err != nil || !fi.IsDir() {
		t.Errorf("volume directory not created: %v", err)
	}
}

func TestProcessEnvironmentHidesAuthToken(t *testing.T) {
	t.Setenv("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "secret-token")
	p, stdout, _ := startProcess(t, protocol.TaskData{Command: `echo "[$MESOS_EXECUTOR_AUTHENTICATION_TOKEN]"`})
	waitDone(t, p, 5*time.Second)
	if got := stdout.String(); got != "[]\n" {
		t.Errorf("task sees the executor's auth token: %q", got)
	}
}

func TestProcessArgsWithoutShell(t *testing.T) {
	p, stdout, _ := startProcess(t, protocol.TaskData{Args: []string{"echo", "$NOT_EXPANDED"}})
	waitDone(t, p, 5*time.Second)
	if got := stdout.String(); got != "$NOT_EXPANDED\n" {
		t.Errorf("args should not go through a shell, got %q", got)
	}
}

func TestProcessStartFailsForMissingProgram(t *testing.T) {
	d := protocol.TaskData{Version: 1, Args: []string{"/no/such/program"}}
	_, err := ProcessRuntime{}.Start(context.Background(), StartSpec{TaskID: "t", Sandbox: t.TempDir(), Data: &d})
	if err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("err = %v, want one naming the program", err)
	}
}

func TestProcessStopIsGracefulFirst(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	p, _, _ := startProcess(t, protocol.TaskData{Command: "trap 'echo got TERM; exit 0' TERM; echo $$ > " + ready + "; while :; do sleep 0.05; done"})
	readPID(t, ready) // the trap is set
	start := time.Now()
	if err := p.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := p.Exit(); st.Code != 0 {
		t.Errorf("a task that exits on SIGTERM should end with its own status, got %+v", st)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v although the task exits on SIGTERM", d)
	}
}

func TestProcessStopKillsTheWholeGroupAfterGrace(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p, _, _ := startProcess(t, protocol.TaskData{Command: "trap '' TERM; sh -c 'trap \"\" TERM; sleep 1000' & echo $! > " + pidFile + "; while :; do sleep 0.05; done"})
	child := readPID(t, pidFile)
	start := time.Now()
	if err := p.Stop(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("stop returned after %v, before the grace period", d)
	}
	if st := p.Exit(); st.Signal != syscall.SIGKILL || st.Code != 137 {
		t.Errorf("exit = %+v, want SIGKILL (137)", st)
	}
	eventually(t, 5*time.Second, "the task's child is killed with the group", func() bool { return !alive(child) })
}

func TestProcessLeftoversDieWithTheMainProcess(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p, _, _ := startProcess(t, protocol.TaskData{Command: "sleep 1000 & echo $! > " + pidFile + "; exit 0"})
	child := readPID(t, pidFile)
	st := waitDone(t, p, 5*time.Second)
	if st.Code != 0 {
		t.Errorf("exit = %+v", st)
	}
	eventually(t, 5*time.Second, "a background child outlived its task", func() bool { return !alive(child) })
	eventually(t, 5*time.Second, "the process group is empty", func() bool { return len(groupMembers(p.pgid)) == 0 })
}

func TestProcessExitIsNoticedAtOnceDespiteAGrandchildHoldingStderr(t *testing.T) {
	// A grandchild that keeps the stderr pipe open must not delay the exit.
	p, _, _ := startProcess(t, protocol.TaskData{Command: "sleep 1000 & exit 4"})
	st := waitDone(t, p, 3*time.Second)
	if st.Code != 4 {
		t.Errorf("exit = %+v, want 4", st)
	}
}

func TestProcessExec(t *testing.T) {
	vol := t.TempDir()
	p, _, _ := startProcess(t, protocol.TaskData{Command: "sleep 1000", Env: map[string]string{"WHO": "task"}, Volume: &protocol.Volume{HostPath: vol}})
	ctx := context.Background()

	out, err := p.Exec(ctx, []string{"/bin/sh", "-c", `echo "$WHO in $PWD"; echo oops >&2; exit 7`})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if out.ExitCode != 7 || out.Stdout != "task in "+vol+"\n" || out.Stderr != "oops\n" || out.Truncated {
		t.Errorf("exec = %+v", out)
	}

	out, err = p.Exec(ctx, []string{"/bin/sh", "-c", fmt.Sprintf("head -c %d /dev/zero", protocol.MaxExecOutput+100)})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if len(out.Stdout) != protocol.MaxExecOutput || !out.Truncated || out.ExitCode != 0 {
		t.Errorf("big output: %d bytes, truncated %v, code %d", len(out.Stdout), out.Truncated, out.ExitCode)
	}

	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Exec(tctx, []string{"/bin/sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; wait"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("exec past its timeout: err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timed-out exec returned after %v", d)
	}
	child := readPID(t, pidFile)
	eventually(t, 5*time.Second, "a timed-out exec's children are killed", func() bool { return !alive(child) })

	if _, err := p.Exec(ctx, []string{"/no/such/tool"}); err == nil {
		t.Error("exec of a missing program should fail")
	}
}

func TestProcessExecAfterExitFails(t *testing.T) {
	p, _, _ := startProcess(t, protocol.TaskData{Command: "exit 0"})
	waitDone(t, p, 5*time.Second)
	if _, err := p.Exec(context.Background(), []string{"true"}); err == nil {
		t.Error("exec in an ended task should fail")
	}
}

func TestProcessUsage(t *testing.T) {
	p, _, _ := startProcess(t, protocol.TaskData{Command: "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 1000"})
	var u Usage
	eventually(t, 10*time.Second, "the task used some CPU", func() bool {
		var err error
		u, err = p.Usage(context.Background())
		return err == nil && u.CPUSeconds > 0
	})
	if u.MemBytes == 0 {
		t.Errorf("usage %+v has no memory", u)
	}
	_ = p.Stop(context.Background(), 0)
	if _, err := p.Usage(context.Background()); err == nil {
		t.Error("usage of an ended task should fail")
	}
}

// TestProcessWatchdogKillsTheTaskWhenTheExecutorDies SIGKILLs a process
// that started a workload, as an agent or an OOM killer would kill the
// executor, and checks that the workload does not survive it.
func TestProcessWatchdogKillsTheTaskWhenTheExecutorDies(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "STATEFUL_EXECUTOR_TEST_SANDBOX="+t.TempDir(),
		"STATEFUL_EXECUTOR_TEST_HELPER=sleep 1000 & echo $! > "+pidFile+"; trap '' TERM; while :; do sleep 0.05; done")
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	killGroupOnCleanup(t, pgid)
	grandchild := readPID(t, pidFile)
	if len(groupMembers(pgid)) < 2 {
		t.Fatalf("workload group %d is not running", pgid)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	eventually(t, 5*time.Second, "the workload's process group is gone after its executor died", func() bool {
		return len(groupMembers(pgid)) == 0
	})
	if alive(grandchild) {
		t.Errorf("grandchild %d survived", grandchild)
	}
}
