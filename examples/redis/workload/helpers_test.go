package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
)

// needRedis skips the test when the Debian redis-server and redis-cli are
// not installed.
func needRedis(t *testing.T) {
	t.Helper()
	for _, p := range []string{DefaultCommand, DefaultCLI} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (apt-get install redis-server redis-tools): %v", p, err)
		}
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// freePort returns a port nobody listens on at 127.0.0.1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a redis-server process started by a test.
type server struct {
	task     *stateful.Task
	cmd      *exec.Cmd
	exited   chan struct{}
	dir      string
	password string // the instance's, "" for none
}

// srv is the server for resp, with its password.
func (s *server) srv() resp.Server { return resp.Server{Addr: s.addr(), Password: s.password} }

func (s *server) addr() string {
	return net.JoinHostPort(s.task.Host, strconv.Itoa(s.task.Ports[PortName]))
}

// kill ends the server at once, as a crash would.
func (s *server) kill(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// startServer launches redis-server for task of inst with the arguments
// Config makes, in a fresh data directory as the process runtime would (the
// working directory is the volume), and waits until it answers. Should
// another program have taken the task's port since freePort, the task gets
// a new one.
func startServer(t *testing.T, w *Redis, inst *stateful.Instance, task *stateful.Task) *server {
	t.Helper()
	for range 3 {
		s, err := tryServer(t, w, inst, task)
		if err == nil {
			return s
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			t.Fatal(err)
		}
		task.Ports[PortName] = freePort(t)
	}
	t.Fatalf("%s: no free port after 3 tries", task.Name)
	return nil
}

func tryServer(t *testing.T, w *Redis, inst *stateful.Instance, task *stateful.Task) (*server, error) {
	t.Helper()
	ctx := testContext(t)
	lc, err := w.Config(ctx, inst, task)
	if err != nil {
		return nil, fmt.Errorf("Config(%s): %w", task.Name, err)
	}
	dir := t.TempDir()
	// Tests skip RDB snapshots (their forks cost CPU others need) and the
	// 5 s a master waits for more replicas before a diskless sync.
	args := append(slices.Clone(lc.Args), "--save", "", "--repl-diskless-sync-delay", "0")
	cmd := exec.Command(DefaultCommand, args...)
	cmd.Dir = dir
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	s := &server{task: task, cmd: cmd, exited: exited, dir: dir, password: inst.Spec.Env[PasswordEnv]}
	// The server that answers must be ours, not another program's on a
	// port it took since freePort.
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case <-exited:
			return nil, fmt.Errorf("redis-server for %s exited: %s", task.Name, log.String())
		default:
		}
		reply, err := resp.Do(ctx, s.srv(), "INFO", "server")
		if text, ok := reply.(string); err == nil && ok {
			if pid := ParseInfo(text)["process_id"]; pid != strconv.Itoa(cmd.Process.Pid) {
				return nil, fmt.Errorf("%s: another server (pid %s) answers on %s", task.Name, pid, s.addr())
			}
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s does not answer at %s: %v; log:\n%s", task.Name, s.addr(), err, log.String())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it returns nil or 20 s pass.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// placed returns task placed at 127.0.0.1 on a free port, running.
func placed(t *testing.T, inst *stateful.Instance, ordinal int, role stateful.Role) *stateful.Task {
	t.Helper()
	task := stateful.NewTask(inst, ordinal, role, time.Now())
	task.State = stateful.TaskRunning
	task.Healthy = true
	task.Host = "127.0.0.1"
	task.Ports = map[string]int{PortName: freePort(t)}
	task.TaskID, task.Attempt = task.NextTaskID()
	return task
}

func newInstance(name string, typ stateful.InstanceType, slaves int) *stateful.Instance {
	w, _ := New(Options{})
	inst := &stateful.Instance{Name: name, Type: typ, Masters: 1, Slaves: slaves, Generation: 1}
	inst.Spec = stateful.Spec{}.WithDefaults(w.Defaults())
	// Most tests run servers without a password, as instances created
	// before passwords do; TestPassword runs them with one.
	delete(inst.Spec.Env, PasswordEnv)
	return inst
}

// localExec runs a command on this host, as the process runtime runs it
// inside a task.
func localExec(ctx context.Context, cmd []string) (stateful.ExecResult, error) {
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return stateful.ExecResult{ExitCode: exit.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}, nil
	case err != nil:
		return stateful.ExecResult{}, err
	}
	return stateful.ExecResult{Stdout: stdout.String(), Stderr: stderr.String()}, nil
}

// testHandle is a stateful.Handle over tasks kept in memory whose Exec runs
// commands on this host: the toolkit's Handle sends them to the task's
// executor, which runs them the same way for a process task.
type testHandle struct {
	mu       sync.Mutex
	inst     *stateful.Instance
	tasks    []*stateful.Task
	promoted []string
	execs    [][]string
	// promoteErrs are returned by the next Promote calls, in order.
	promoteErrs []error
}

func newHandle(inst *stateful.Instance, tasks ...*stateful.Task) *testHandle {
	return &testHandle{inst: inst, tasks: tasks}
}

func (h *testHandle) Tasks(inst *stateful.Instance) []*stateful.Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*stateful.Task, 0, len(h.tasks))
	for _, t := range h.tasks {
		if t.Instance == inst.Name {
			out = append(out, t.Clone())
		}
	}
	return out
}

func (h *testHandle) Exec(ctx context.Context, task *stateful.Task, cmd []string) (stateful.ExecResult, error) {
	h.mu.Lock()
	h.execs = append(h.execs, slices.Clone(cmd))
	var stored *stateful.Task
	for _, t := range h.tasks {
		if sameTask(t, task) {
			stored = t
		}
	}
	h.mu.Unlock()
	if stored == nil || !stored.State.IsRunning() {
		return stateful.ExecResult{}, fmt.Errorf("task %s is not running", task.Name)
	}
	return localExec(ctx, cmd)
}

func (h *testHandle) Promote(_ context.Context, inst *stateful.Instance, task *stateful.Task) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.promoteErrs) > 0 {
		err := h.promoteErrs[0]
		h.promoteErrs = h.promoteErrs[1:]
		if err != nil {
			return err
		}
	}
	h.promoted = append(h.promoted, task.Name)
	for _, t := range h.tasks {
		switch {
		case sameTask(t, task):
			t.Role = stateful.RoleMaster
		case t.Role == stateful.RoleMaster:
			t.Role = stateful.RoleSlave
		}
	}
	h.inst.MasterOrdinal = task.Ordinal
	return nil
}

func (h *testHandle) Relaunch(context.Context, *stateful.Task) error {
	return errors.New("testHandle: Relaunch is not used by the Redis workload")
}

// setState changes a stored task's state, as a status update would.
func (h *testHandle) setState(task *stateful.Task, state stateful.TaskState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.tasks {
		if sameTask(t, task) {
			t.State = state
		}
	}
}

// role returns the stored role of task.
func (h *testHandle) role(task *stateful.Task) stateful.Role {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.tasks {
		if sameTask(t, task) {
			return t.Role
		}
	}
	return ""
}

// info asks the server at addr for INFO section.
func serverInfo(t *testing.T, addr, section string) Info {
	t.Helper()
	reply, err := resp.Do(testContext(t), resp.Server{Addr: addr}, "INFO", section)
	if err != nil {
		t.Fatalf("INFO %s at %s: %v", section, addr, err)
	}
	s, ok := reply.(string)
	if !ok {
		t.Fatalf("INFO at %s: %T reply", addr, reply)
	}
	return ParseInfo(s)
}

// waitLinkUp waits until the slave at s replicates masterAddr with its link up.
func waitLinkUp(t *testing.T, s *server, masterAddr string) {
	t.Helper()
	waitFor(t, s.task.Name+" replicates "+masterAddr, func() error {
		inf := serverInfo(t, s.addr(), "replication")
		got := net.JoinHostPort(inf["master_host"], inf["master_port"])
		if inf.Role() != "slave" || got != masterAddr || !inf.LinkUp() {
			return fmt.Errorf("role %s, master %s, link %s", inf.Role(), got, inf["master_link_status"])
		}
		return nil
	})
}

// waitGoodReplicas waits until the master at addr counts n replicas as
// good (acknowledged within min-replicas-max-lag): only then does
// min-replicas-to-write let a write through.
func waitGoodReplicas(t *testing.T, addr string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to count %d good replicas", addr, n), func() error {
		inf := serverInfo(t, addr, "replication")
		if got, _ := strconv.Atoi(inf["min_slaves_good_slaves"]); got < n {
			return fmt.Errorf("min_slaves_good_slaves %q", inf["min_slaves_good_slaves"])
		}
		return nil
	})
}

func mustDo(t *testing.T, addr string, args ...string) any {
	t.Helper()
	reply, err := resp.Do(testContext(t), resp.Server{Addr: addr}, args...)
	if err != nil {
		t.Fatalf("%v at %s: %v", args, addr, err)
	}
	return reply
}

// dataFiles lists what redis-server wrote in dir (the append-only files).
func dataFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// write sets n keys prefix0..prefixN-1 to "v" on addr, then waits until
// replicas slaves acknowledge them. WAIT covers the writes of its own
// connection, so all go through one.
func write(t *testing.T, addr, prefix string, n, replicas int) {
	t.Helper()
	ctx := testContext(t)
	c, err := resp.Dial(ctx, resp.Server{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		if got, err := c.Do(ctx, "SET", prefix+strconv.Itoa(i), "v"); err != nil || got != "OK" {
			t.Fatalf("SET at %s: %v, %v", addr, got, err)
		}
	}
	got, err := c.Do(ctx, "WAIT", strconv.Itoa(replicas), "5000")
	if err != nil || got != int64(replicas) {
		t.Fatalf("WAIT %d at %s: %v replicas acknowledged (%v)", replicas, addr, got, err)
	}
}
