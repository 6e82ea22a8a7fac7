package dockerlib_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/internal/testimage"
)

// testLabel marks every container these tests start, with a value unique to
// the test, so each test removes exactly its own.
const testLabel = "io.stateful.test"

const probe = testimage.ProbeImage

// engine is set up once by TestMain; skipReason says why tests needing the
// engine skip.
var engine struct {
	cli        *dockerlib.Client
	skipReason string
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli, err := dockerlib.New(ctx, dockerlib.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerlib.New:", err)
		return 1
	}
	defer cli.Close()
	switch err := cli.Available(ctx); {
	case err != nil:
		engine.skipReason = fmt.Sprintf("needs a Docker engine: %v", err)
	default:
		// The probe image is cached by content hash: a rebuild happens only
		// when the probe program changes.
		if err := testimage.Probe(ctx, cli, probe); err != nil {
			if !errors.Is(err, testimage.ErrNotInstalled) {
				fmt.Fprintln(os.Stderr, "building the probe image:", err)
				return 1
			}
			engine.skipReason = fmt.Sprintf("needs the probe image: %v", err)
		}
		engine.cli = cli
	}
	return m.Run()
}

// setup returns the client and a label selector unique to this test; every
// container carrying it is removed when the test ends, pass or fail.
func setup(t *testing.T) (*dockerlib.Client, map[string]string) {
	t.Helper()
	if engine.skipReason != "" {
		t.Skip(engine.skipReason)
	}
	sel := map[string]string{testLabel: uniqueValue(t)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := engine.cli.Cleanup(ctx, sel, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return engine.cli, sel
}

func uniqueValue(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + hex.EncodeToString(b)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run starts spec with the test's labels added and fails the test on error.
func run(t *testing.T, ctx context.Context, cli *dockerlib.Client, sel map[string]string, spec dockerlib.ContainerSpec) string {
	t.Helper()
	spec.Labels = withLabels(spec.Labels, sel)
	if spec.Image == "" {
		spec.Image = probe
	}
	id, err := cli.Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return id
}

func withLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// pingProbe connects to addr until the probe answers PING, within the
// deadline (the server starts asynchronously after Run returns).
func pingProbe(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		reply, err := probeCommand(addr, "PING")
		if err == nil && reply == "PONG" {
			return
		}
		lastErr = fmt.Errorf("reply %q, err %v", reply, err)
		time.Sleep(50 * time.Millisecond) // retry interval of a poll with a deadline
	}
	t.Fatalf("probe at %s did not answer PING: %v", addr, lastErr)
}

func probeCommand(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(conn, cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func execOK(t *testing.T, ctx context.Context, cli *dockerlib.Client, id string, cmd ...string) string {
	t.Helper()
	res, err := cli.Exec(ctx, id, cmd, nil)
	if err != nil {
		t.Fatalf("Exec %v: %v", cmd, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("Exec %v: exit %d, stdout %q, stderr %q", cmd, res.ExitCode, res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}

// readCgroup returns the first of the files that exists in the container
// (cgroup v1 or v2 layouts).
func readCgroup(t *testing.T, ctx context.Context, cli *dockerlib.Client, id string, files ...string) (string, string) {
	t.Helper()
	for _, f := range files {
		res, err := cli.Exec(ctx, id, []string{"/probe", "cat", f}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode == 0 {
			return f, strings.TrimSpace(string(res.Stdout))
		}
	}
	t.Fatalf("none of %v readable in the container", files)
	return "", ""
}

func TestRunBridgeWithPortBindingLimitsAndLabels(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	task := dockerlib.TaskLabels{Framework: "redis", Instance: "cache1", Ordinal: 0, TaskID: "cache1-0.1", ExecutorID: "exec-1"}
	// Agents of localmesos have addresses like 127.0.0.2: a fixed port there
	// (as Mesos offers it), and an engine-chosen one on 127.0.0.1.
	agentPort := uint16(freePort(t, "127.0.0.2"))
	id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{
		Labels:   task.Map(),
		Env:      map[string]string{"PROBE_LISTEN": ":8080,:9090"},
		CPUs:     0.5,
		MemoryMB: 64,
		Network:  dockerlib.NetworkBridge,
		Ports: []dockerlib.PortBinding{
			{ContainerPort: 8080, HostIP: "127.0.0.1"},
			{ContainerPort: 9090, HostIP: "127.0.0.2", HostPort: agentPort},
		},
	})

	st, err := cli.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.Status != "running" || st.StartedAt.IsZero() {
		t.Fatalf("state = %+v, want running with a start time", st)
	}
	if st.IPAddress == "" {
		t.Errorf("bridge container has no IP address")
	}
	if len(st.Ports) != 2 || st.Ports[0].ContainerPort != 8080 || st.Ports[0].HostIP != "127.0.0.1" || st.Ports[0].HostPort == 0 ||
		st.Ports[1] != (dockerlib.PortBinding{ContainerPort: 9090, HostIP: "127.0.0.2", HostPort: agentPort}) {
		t.Fatalf("ports = %+v, want 8080 on 127.0.0.1:(engine's choice) and 9090 on 127.0.0.2:%d", st.Ports, agentPort)
	}
	pingProbe(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(st.Ports[0].HostPort))))
	pingProbe(t, net.JoinHostPort("127.0.0.2", strconv.Itoa(int(agentPort))))

	// The limits are what the kernel enforces inside, not only what the
	// engine recorded.
	if f, v := readCgroup(t, ctx, cli, id, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"); v != strconv.Itoa(64<<20) {
		t.Errorf("%s = %s, want %d", f, v, 64<<20)
	}
	if _, quota := readCgroup(t, ctx, cli, id, "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"); !strings.HasPrefix(quota, "50000") {
		t.Errorf("cpu quota = %q, want 50000 of a 100000 period (0.5 core)", quota)
	}

	listed, err := cli.List(ctx, withLabels(sel, map[string]string{dockerlib.LabelInstance: "cache1", dockerlib.LabelOrdinal: "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != id || listed[0].Labels[dockerlib.LabelTaskID] != "cache1-0.1" || listed[0].Labels[dockerlib.LabelExecutorID] != "exec-1" || listed[0].Status != "running" {
		t.Fatalf("List = %+v, want the one container with its task labels", listed)
	}
	if other, err := cli.List(ctx, withLabels(sel, map[string]string{dockerlib.LabelInstance: "cache2"})); err != nil || len(other) != 0 {
		t.Fatalf("List of another instance = %v, %v; want none", other, err)
	}
}

func TestRunHostNetwork(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{
		Env:     map[string]string{"PROBE_LISTEN": addr},
		Network: dockerlib.NetworkHost,
	})
	pingProbe(t, addr)
	st, err := cli.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.IPAddress != "" || len(st.Ports) != 0 {
		t.Errorf("host-network container has IP %q and ports %v, want none", st.IPAddress, st.Ports)
	}
}

func TestUserWorkingDirAndEnv(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{
		Name:       "dockerlib-test-" + sel[testLabel][len(sel[testLabel])-8:],
		User:       "1234:4321",
		WorkingDir: "/tmp",
		Env:        map[string]string{"GREETING": "hello world", "PROBE_LISTEN": ":8080"},
	})
	if got := execOK(t, ctx, cli, id, "/probe", "info"); !strings.Contains(got, "uid=1234\ngid=4321\ncwd=/tmp\n") {
		t.Errorf("info = %q, want uid 1234, gid 4321, cwd /tmp", got)
	}
	if got := execOK(t, ctx, cli, id, "/probe", "getenv", "GREETING"); got != "hello world\n" {
		t.Errorf("GREETING = %q", got)
	}
	st, err := cli.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Name, "dockerlib-test-") || st.Image != probe {
		t.Errorf("name %q image %q", st.Name, st.Image)
	}
}

func TestWaitReportsExitAsItHappens(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)

	t.Run("killed from outside", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{})
		waited := make(chan dockerlib.ExitStatus, 1)
		waitErr := make(chan error, 1)
		go func() {
			exit, err := cli.Wait(ctx, id)
			waited <- exit
			waitErr <- err
		}()
		select {
		case exit := <-waited:
			t.Fatalf("Wait returned %v while the container runs", exit)
		default:
		}
		if err := cli.Kill(ctx, id, "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		select {
		case exit := <-waited:
			if err := <-waitErr; err != nil {
				t.Fatal(err)
			}
			if exit.Code != 137 || exit.OOMKilled {
				t.Fatalf("exit = %v, want code 137 (SIGKILL), not OOM", exit)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Wait did not return after the container was killed")
		}
		st, err := cli.Inspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Running || st.ExitCode != 137 || st.FinishedAt.Before(st.StartedAt) {
			t.Fatalf("state after kill = %+v", st)
		}
		// Waiting on a container that has already exited answers at once.
		if exit, err := cli.Wait(ctx, id); err != nil || exit.Code != 137 {
			t.Fatalf("second Wait = %v, %v", exit, err)
		}
	})

	t.Run("exits on request", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{
			Ports: []dockerlib.PortBinding{{ContainerPort: 8080, HostIP: "127.0.0.1"}},
		})
		st, err := cli.Inspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(st.Ports[0].HostPort)))
		pingProbe(t, addr)
		_, _ = probeCommand(addr, "EXIT 3") // the connection dies with the process
		exit, err := cli.Wait(ctx, id)
		if err != nil || exit.Code != 3 {
			t.Fatalf("Wait = %v, %v; want code 3", exit, err)
		}
	})

	t.Run("ends with its context", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{})
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if exit, err := cli.Wait(wctx, id); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, %v; want the context's deadline", exit, err)
		}
		if st, err := cli.Inspect(ctx, id); err != nil || !st.Running {
			t.Fatalf("container after an abandoned Wait: %+v, %v", st, err)
		}
	})

	t.Run("out of memory", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{MemoryMB: 16, Cmd: []string{"alloc", "128"}})
		exit, err := cli.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// Without the limit the probe would allocate and exit 0. Docker
		// sets OOMKilled only when the kernel's OOM event reaches it before
		// the exit (on cgroup v1 under load it may not): code 137 is the
		// reliable sign, the flag a bonus.
		if exit.Code != 137 {
			t.Fatalf("exit = %v, want code 137 (killed at the memory limit)", exit)
		}
		if !exit.OOMKilled {
			t.Logf("exit %v: Docker did not flag the OOM kill this time", exit)
		} else if !strings.Contains(exit.String(), "OOM") {
			t.Errorf("exit reads %q, want it to mention OOM", exit)
		}
	})
}

func TestStopSendsTermThenKill(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)

	t.Run("honours SIGTERM", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{Env: map[string]string{"PROBE_TERM_EXIT": "5"}})
		waitForLog(t, ctx, cli, id, "listening")
		start := time.Now()
		if err := cli.Stop(ctx, id, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		// Well inside the grace: SIGTERM ended it, not the SIGKILL at 20s.
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("Stop took %v for a container that exits on SIGTERM", took)
		}
		st, err := cli.Inspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Running || st.ExitCode != 5 {
			t.Fatalf("after Stop: %+v, want exited with the probe's SIGTERM code 5", st)
		}
		if err := cli.Stop(ctx, id, time.Second); err != nil {
			t.Errorf("stopping a stopped container: %v", err)
		}
		if err := cli.Remove(ctx, id, false); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Inspect(ctx, id); !dockerlib.IsNotFound(err) {
			t.Fatalf("Inspect after Remove = %v, want not found", err)
		}
		if err := cli.Remove(ctx, id, false); err != nil {
			t.Errorf("removing a removed container: %v", err)
		}
	})

	t.Run("kills after grace", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{Env: map[string]string{"PROBE_IGNORE_TERM": "1"}})
		waitForLog(t, ctx, cli, id, "listening")
		if err := cli.Stop(ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
		st, err := cli.Inspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Running || st.ExitCode != 137 {
			t.Fatalf("after Stop: %+v, want killed (137)", st)
		}
		var out bytes.Buffer
		if err := cli.Logs(ctx, id, &out, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "probe: ignoring terminated") {
			t.Errorf("logs %q: the probe never saw SIGTERM", out.String())
		}
	})
}

// waitForLog polls the container's output until it contains want: the
// container writes it once it is ready.
func waitForLog(t *testing.T, ctx context.Context, cli *dockerlib.Client, id, want string) {
	t.Helper()
	var out syncBuffer
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cli.Logs(lctx, id, &out, &out) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("container output %q never contained %q", out.String(), want)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestExec(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{})

	res, err := cli.Exec(ctx, id, []string{"/probe", "exit", "7", "to stdout", "to stderr"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || string(res.Stdout) != "to stdout" || string(res.Stderr) != "to stderr" || res.Truncated {
		t.Fatalf("Exec = code %d stdout %q stderr %q truncated %v", res.ExitCode, res.Stdout, res.Stderr, res.Truncated)
	}

	res, err = cli.Exec(ctx, id, []string{"/probe", "getenv", "EXTRA"}, map[string]string{"EXTRA": "from exec"})
	if err != nil || string(res.Stdout) != "from exec\n" {
		t.Fatalf("Exec with env = %q, %v", res.Stdout, err)
	}

	res, err = cli.Exec(ctx, id, []string{"/no/such/binary"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 126 && res.ExitCode != 127 {
		t.Fatalf("Exec of a missing binary: exit %d (stdout %q), want 126 or 127", res.ExitCode, res.Stdout)
	}

	// 300000 lines of "out N\n" are about 2.8 MB per stream.
	res, err = cli.Exec(ctx, id, []string{"/probe", "lines", "300000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !res.Truncated || len(res.Stdout) != dockerlib.ExecOutputLimit || len(res.Stderr) != dockerlib.ExecOutputLimit {
		t.Fatalf("big output: exit %d truncated %v, kept %d/%d bytes, want %d each", res.ExitCode, res.Truncated, len(res.Stdout), len(res.Stderr), dockerlib.ExecOutputLimit)
	}
	if !bytes.HasPrefix(res.Stdout, []byte("out 1\nout 2\n")) || !bytes.HasPrefix(res.Stderr, []byte("err 1\nerr 2\n")) {
		t.Fatalf("big output kept the wrong part: %q / %q", res.Stdout[:20], res.Stderr[:20])
	}

	if _, err := cli.Exec(ctx, id, nil, nil); err == nil {
		t.Error("Exec of an empty command succeeded")
	}
	if _, err := cli.Exec(ctx, "no-such-container", []string{"/probe", "info"}, nil); !dockerlib.IsNotFound(err) {
		t.Errorf("Exec in a missing container = %v, want not found", err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	// One goroutine spins, capped at half a core.
	id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{
		Env:      map[string]string{"PROBE_SPIN": "1"},
		CPUs:     0.5,
		MemoryMB: 64,
	})
	st, err := cli.Stats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", st)
	if st.CPUPercent < 1 || st.CPUPercent > 75 {
		t.Errorf("CPU = %.1f%%, want a spinning container capped at 0.5 core to show 1-75%%", st.CPUPercent)
	}
	if st.CPUSeconds <= 0 {
		t.Errorf("CPU time = %v s, want some for a spinning container", st.CPUSeconds)
	}
	if st.MemoryBytes == 0 || st.MemoryBytes > 64<<20 {
		t.Errorf("memory = %d bytes, want some and at most the 64 MiB limit", st.MemoryBytes)
	}
	if st.MemoryLimitBytes != 64<<20 {
		t.Errorf("memory limit = %d, want %d", st.MemoryLimitBytes, 64<<20)
	}
	if st.Read.IsZero() {
		t.Error("sample has no time")
	}

	if err := cli.Stop(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Stats(ctx, id); err == nil {
		t.Error("Stats of a stopped container succeeded")
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)

	t.Run("until exit", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{Cmd: []string{"lines", "3"}})
		var stdout, stderr bytes.Buffer
		if err := cli.Logs(ctx, id, &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != "out 1\nout 2\nout 3\n" || stderr.String() != "err 1\nerr 2\nerr 3\n" {
			t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
		}
	})

	t.Run("follows a running container", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{})
		var stdout, stderr syncBuffer
		done := make(chan error, 1)
		go func() { done <- cli.Logs(ctx, id, &stdout, &stderr) }()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(stdout.String(), "probe: listening") || !strings.Contains(stderr.String(), "probe: stderr ready") {
			if time.Now().After(deadline) {
				t.Fatalf("no startup lines: stdout %q stderr %q", stdout.String(), stderr.String())
			}
			time.Sleep(20 * time.Millisecond) // poll interval
		}
		select {
		case err := <-done:
			t.Fatalf("Logs returned %v while the container runs", err)
		default:
		}
		if err := cli.Stop(ctx, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Logs did not return after the container stopped")
		}
		if !strings.Contains(stdout.String(), "probe: got terminated") {
			t.Errorf("stdout %q lacks the last line", stdout.String())
		}
	})

	t.Run("ends with its context", func(t *testing.T) {
		id := run(t, ctx, cli, sel, dockerlib.ContainerSpec{})
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cli.Logs(lctx, id, nil, nil) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Logs = %v, want context.Canceled", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Logs did not return after its context ended")
		}
	})
}

func TestCleanupRemovesEveryMatchingContainer(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	dead := withLabels(sel, map[string]string{dockerlib.LabelExecutorID: "dead-executor"})
	live := withLabels(sel, map[string]string{dockerlib.LabelExecutorID: "live-executor"})

	var want []string
	want = append(want, run(t, ctx, cli, dead, dockerlib.ContainerSpec{}))
	want = append(want, run(t, ctx, cli, dead, dockerlib.ContainerSpec{Env: map[string]string{"PROBE_IGNORE_TERM": "1"}}))
	exited := run(t, ctx, cli, dead, dockerlib.ContainerSpec{Cmd: []string{"exit", "0"}})
	if _, err := cli.Wait(ctx, exited); err != nil {
		t.Fatal(err)
	}
	want = append(want, exited)
	keep := run(t, ctx, cli, live, dockerlib.ContainerSpec{})

	removed, err := cli.Cleanup(ctx, dead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(want) {
		t.Fatalf("removed %d containers, want %d", len(removed), len(want))
	}
	for _, id := range want {
		if _, err := cli.Inspect(ctx, id); !dockerlib.IsNotFound(err) {
			t.Errorf("container %s still there after Cleanup: %v", id, err)
		}
	}
	if left, err := cli.List(ctx, dead); err != nil || len(left) != 0 {
		t.Errorf("List after Cleanup = %v, %v", left, err)
	}
	st, err := cli.Inspect(ctx, keep)
	if err != nil || !st.Running {
		t.Fatalf("the other executor's container: %+v, %v; want it left running", st, err)
	}

	if _, err := cli.Cleanup(ctx, nil, 0); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Cleanup with no selector = %v, want refused", err)
	}
	if _, err := cli.List(ctx, map[string]string{dockerlib.LabelInstance: ""}); err == nil {
		t.Error("List with an empty label value succeeded")
	}
}

func TestBindMountPersistsAcrossContainers(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)
	hostDir := filepath.Join(t.TempDir(), "volumes", "cache1-0") // not there yet
	spec := dockerlib.ContainerSpec{Mounts: []dockerlib.Mount{{HostPath: hostDir, ContainerPath: "/data"}}}

	first := run(t, ctx, cli, sel, spec)
	execOK(t, ctx, cli, first, "/probe", "write", "/data/state", "generation 1")
	if err := cli.Remove(ctx, first, true); err != nil {
		t.Fatal(err)
	}
	second := run(t, ctx, cli, sel, spec)
	if got := execOK(t, ctx, cli, second, "/probe", "cat", "/data/state"); got != "generation 1" {
		t.Fatalf("second container reads %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "state")); err != nil || string(b) != "generation 1" {
		t.Fatalf("host file: %q, %v", b, err)
	}

	ro := run(t, ctx, cli, sel, dockerlib.ContainerSpec{Mounts: []dockerlib.Mount{{HostPath: hostDir, ContainerPath: "/data", ReadOnly: true}}})
	if res, err := cli.Exec(ctx, ro, []string{"/probe", "write", "/data/state", "overwritten"}, nil); err != nil || res.ExitCode == 0 {
		t.Fatalf("write to a read-only mount: %+v, %v; want it refused", res, err)
	}
}

func TestImages(t *testing.T) {
	t.Parallel()
	cli, _ := setup(t)
	ctx := testContext(t)
	const missing = "stateful-test/no-such-image:1"
	if ok, err := cli.ImageExists(ctx, missing); err != nil || ok {
		t.Fatalf("ImageExists(%s) = %v, %v", missing, ok, err)
	}
	err := cli.EnsureImage(ctx, missing)
	if err == nil || !strings.Contains(err.Error(), "image "+missing+" not present and could not be pulled: ") {
		t.Fatalf("EnsureImage(%s) = %v, want it to name the image and the reason", missing, err)
	}
	t.Logf("EnsureImage error: %v", err)
	if err := cli.EnsureImage(ctx, probe); err != nil {
		t.Fatalf("EnsureImage of a local image: %v", err)
	}
	if ok, err := cli.ImageExists(ctx, probe); err != nil || !ok {
		t.Fatalf("ImageExists(%s) = %v, %v", probe, ok, err)
	}
	if err := cli.EnsureImage(ctx, "Not A Reference"); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("EnsureImage of a malformed reference = %v", err)
	}
}

func TestRunFailuresLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	cli, sel := setup(t)
	ctx := testContext(t)

	_, err := cli.Run(ctx, dockerlib.ContainerSpec{Image: "stateful-test/no-such-image:1", Labels: sel})
	if err == nil || !strings.Contains(err.Error(), "stateful-test/no-such-image:1") || !strings.Contains(err.Error(), "not present") {
		t.Fatalf("Run of a missing image = %v, want an error naming the image", err)
	}

	_, err = cli.Run(ctx, dockerlib.ContainerSpec{Image: probe, Entrypoint: []string{"/no/such/program"}, Labels: sel})
	if err == nil || !strings.Contains(err.Error(), "start container") {
		t.Fatalf("Run with a missing entrypoint = %v, want a start error", err)
	}

	name := "dockerlib-dup-" + sel[testLabel][len(sel[testLabel])-8:]
	run(t, ctx, cli, sel, dockerlib.ContainerSpec{Name: name})
	if _, err := cli.Run(ctx, dockerlib.ContainerSpec{Image: probe, Name: name, Labels: sel}); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("Run with a taken name = %v", err)
	}

	left, err := cli.List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name != name {
		t.Fatalf("containers left: %+v, want only %s", left, name)
	}
}

func TestAvailableExplainsAMissingEngine(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	cli, err := dockerlib.New(ctx, dockerlib.Options{Host: "unix://" + sock, PingTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	err = cli.Available(ctx)
	if !errors.Is(err, dockerlib.ErrUnavailable) || !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "no socket") {
		t.Fatalf("Available = %v, want ErrUnavailable naming %s and the missing socket", err, sock)
	}

	// A listener that never answers: the ping timeout bounds the wait.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	silent, err := dockerlib.New(ctx, dockerlib.Options{Host: "tcp://" + ln.Addr().String(), PingTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := silent.Available(ctx); !errors.Is(err, dockerlib.ErrUnavailable) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("Available against a silent listener = %v", err)
	}

	if _, err := dockerlib.New(ctx, dockerlib.Options{Host: "no-scheme-here"}); err == nil {
		t.Error("New with a malformed host succeeded")
	}
}
