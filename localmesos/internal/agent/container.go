package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// A container is what the agent launched for one executor run: a real
// process in its own process group, or the built-in command executor with
// its command. Like the Mesos posix launcher it has no cgroup; unlike it,
// destroying a container kills everything that belongs to it: its process
// group and every descendant of its process (a real agent leaks a command
// task's process group when its executor dies; see executor-death.jsonl).
type container struct {
	id          string
	sandbox     string
	frameworkID mesos.FrameworkID
	executorID  mesos.ExecutorID
	cancel      context.CancelFunc // stops a fetch in progress
	cmd         *commandExecutor   // set for a command task

	// runDir is the run's checkpoint directory, where the process's pid
	// is recorded; "" when the executor is not checkpointed.
	runDir string
	// adopted: recovered from the checkpoint, its process started by a
	// previous agent process (at pidStart, in clock ticks since boot).
	adopted  bool
	pidStart int64

	mu        sync.Mutex
	pid       int // the executor's process (command task: the command's)
	destroyed bool
	exited    bool
	status    int32
	reported  bool
}

func (c *container) executorPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

func (c *container) hasExited() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exited
}

func (c *container) exitStatus() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

func (c *container) isDestroyed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.destroyed
}

// startProcess starts cmd as the container's process unless the container
// was destroyed first, and checkpoints its pid (in a checkpointed run).
// The lock makes destroy and start exclusive, so no process escapes a
// destroy; it is held until the pid is on disk, so that whatever waits for
// the lock (a SUBSCRIBE, see awaitStart) sees the pid checkpointed: the
// process runs before the write ends, and an agent killed after giving it
// a task but before the write would find no pid and take a live executor
// for dead. (Mesos' launcher holds the forked child on a pipe until the
// agent has checkpointed its pid.)
func (c *container) startProcess(cmd *exec.Cmd) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed {
		return errDestroyed
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.pid = cmd.Process.Pid
	checkpointPID(c.runDir, c.pid)
	return nil
}

// awaitStart waits for a process start in progress to be done, its pid
// checkpoint included, and returns the container's pid (0 before any).
func (c *container) awaitStart() int { return c.executorPID() }

var errDestroyed = errors.New("container destroyed")

// destroy kills everything in the container. The exit is reported by
// whoever waits for the process (or by the command executor).
func (c *container) destroy() {
	c.mu.Lock()
	c.destroyed = true
	pid := c.pid
	c.mu.Unlock()
	c.cancel()
	// The built-in executor dies first, so that it does not report its
	// command's death as the task's.
	if c.cmd != nil {
		c.cmd.crash()
	}
	if pid > 0 {
		killContainerProcesses(pid)
	}
}

// report tells the agent, once, that the container ended. launchFailure
// says why it never started, if that is the case.
func (c *container) report(a *Agent, status int32, launchFailure string) {
	c.mu.Lock()
	if c.reported {
		c.mu.Unlock()
		return
	}
	c.reported, c.exited, c.status = true, true, status
	c.mu.Unlock()
	c.cancel()
	a.post(func() {
		if launchFailure != "" {
			a.containerLaunchFailed(c, launchFailure)
		}
		a.containerExited(c, status)
	})
}

// launchSpec is what a container's goroutine needs; it is computed on the
// agent's mailbox.
type launchSpec struct {
	sandbox string
	latest  string // the runs/latest symlink
	command mesos.CommandInfo
	env     []string
	err     error // the launch must fail with this
	// volumes are the persistent volumes of the container's resources,
	// linked into the sandbox before the executor starts.
	volumes []volumeLink
}

// runContainer prepares the sandbox, fetches, and runs the executor
// process until it exits. It runs on its own goroutine.
func (a *Agent) runContainer(ctx context.Context, c *container, spec launchSpec) {
	failure := ""
	switch {
	case spec.err != nil:
		failure = spec.err.Error()
	default:
		if err := prepareSandbox(spec.sandbox); err != nil {
			failure = "Failed to create sandbox: " + err.Error()
			break
		}
		linkLatest(spec.sandbox, spec.latest)
		if err := linkVolumes(spec.sandbox, spec.volumes); err != nil {
			failure = "Failed to prepare persistent volumes: " + err.Error()
			break
		}
		if err := fetchAll(ctx, spec.command.URIs, spec.sandbox); err != nil {
			failure = "Failed to fetch all URIs for container '" + c.id + "': " + err.Error()
		}
	}
	if failure != "" {
		if c.isDestroyed() {
			c.report(a, -1, "")
			return
		}
		appendToFile(filepath.Join(spec.sandbox, "stderr"), failure+"\n")
		c.report(a, -1, failure)
		return
	}
	if c.cmd != nil {
		c.cmd.start()
		return
	}
	cmd, err := buildCommand(spec.command, spec.sandbox, spec.env, c.runDir != "")
	if err == nil {
		err = c.startProcess(cmd)
		closeFiles(cmd)
	}
	switch {
	case errors.Is(err, errDestroyed):
		c.report(a, -1, "")
		return
	case err != nil:
		// As under Mesos' launcher helper: the exec fails inside the
		// container, which exits with status 1.
		appendToFile(filepath.Join(spec.sandbox, "stderr"), "Failed to execute the executor: "+err.Error()+"\n")
		c.report(a, 1<<8, "")
		return
	}
	glog.V(1).Infof("agent %s: executor '%s' of framework %s runs as pid %d", a.cfg.ID.Value, c.executorID.Value, c.frameworkID.Value, cmd.Process.Pid)
	if c.runDir != "" {
		// It may outlive the agent (Detach): wait for it without
		// holding up the agent's end.
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			_ = cmd.Wait()
		}()
		select {
		case <-exited:
		case <-a.quit:
			return
		}
	} else {
		_ = cmd.Wait()
	}
	status := int32(-1)
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		status = int32(ws)
	}
	// Whatever the executor left in its process group goes with it. (Its
	// descendants elsewhere are orphans now; destroy, which runs while the
	// executor lives, reaches them.)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	c.report(a, status, "")
}

// prepareSandbox makes the sandbox, which only the agent's user and group
// may enter: task output and fetched files may hold secrets.
func prepareSandbox(sandbox string) error { return os.MkdirAll(sandbox, 0o750) }

// linkLatest points runs/latest at the newest run, as Mesos does.
func linkLatest(sandbox, latest string) {
	_ = os.Remove(latest)
	if err := os.Symlink(filepath.Base(sandbox), latest); err != nil {
		glog.Warningf("agent: linking %s: %v", latest, err)
	}
}

// buildCommand turns a CommandInfo into a process in the sandbox: shell
// (the default) is /bin/sh -c value; otherwise value is executed with
// arguments (argv[0] included). stdout and stderr go to files in the
// sandbox, and the process gets its own process group. outlive: the
// process must survive the agent's process (a checkpointing framework's),
// so it gets no parent-death signal.
func buildCommand(ci mesos.CommandInfo, sandbox string, env []string, outlive bool) (*exec.Cmd, error) {
	cmd := &exec.Cmd{Dir: sandbox, Env: env}
	if ci.GetShell() {
		cmd.Path = "/bin/sh"
		cmd.Args = []string{"sh", "-c", ci.GetValue()}
	} else {
		path, err := lookPath(ci.GetValue(), sandbox, env)
		if err != nil {
			return nil, err
		}
		cmd.Path = path
		cmd.Args = ci.Arguments
		if len(cmd.Args) == 0 {
			cmd.Args = []string{ci.GetValue()}
		}
	}
	stdout, err := os.OpenFile(filepath.Join(sandbox, "stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	stderr, err := os.OpenFile(filepath.Join(sandbox, "stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		stdout.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Pdeathsig is a backstop for what cannot be recovered: should the
	// agent's process die, those executors die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !outlive {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	return cmd, nil
}

func closeFiles(cmd *exec.Cmd) {
	if cmd == nil {
		return
	}
	for _, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
		if f, ok := w.(*os.File); ok {
			f.Close()
		}
	}
}

// lookPath resolves a non-shell command: a path with a slash is relative
// to the sandbox, a bare name is searched in the executor's PATH.
func lookPath(name, sandbox string, env []string) (string, error) {
	if name == "" {
		return "", errors.New("no command value")
	}
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(sandbox, name)
		}
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if !filepath.IsAbs(p) {
			p = filepath.Join(sandbox, p)
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH", name)
}

func appendToFile(path, text string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(text)
}

// executorEnv is the environment the agent gives an executor (see
// executor-environment.txt): the agent's own, the MESOS_* variables, then
// CommandInfo.environment.
func (a *Agent) executorEnv(fw *framework, ex *executorEntry, sandbox string) ([]string, error) {
	env := newEnvList(a.cfg.Env)
	endpoint := net.JoinHostPort(a.cfg.IP, strconv.Itoa(a.port))
	checkpoint := "0"
	if fw.checkpoint() {
		checkpoint = "1"
	}
	env.set("MESOS_FRAMEWORK_ID", fw.id().Value)
	env.set("MESOS_EXECUTOR_ID", ex.info.ExecutorID.Value)
	env.set("MESOS_DIRECTORY", sandbox)
	env.set("MESOS_SANDBOX", sandbox)
	env.set("MESOS_AGENT_ENDPOINT", endpoint)
	env.set("MESOS_CHECKPOINT", checkpoint)
	env.set("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", stoutDuration(a.shutdownGracePeriod(ex)))
	if fw.checkpoint() {
		env.set("MESOS_RECOVERY_TIMEOUT", stoutDuration(a.cfg.RecoveryTimeout))
		env.set("MESOS_SUBSCRIPTION_BACKOFF_MAX", stoutDuration(a.cfg.SubscriptionBackoffMax))
	} else {
		env.unset("MESOS_RECOVERY_TIMEOUT")
		env.unset("MESOS_SUBSCRIPTION_BACKOFF_MAX")
	}
	env.set("MESOS_SLAVE_ID", a.cfg.ID.Value)
	env.set("MESOS_SLAVE_PID", "slave(1)@"+endpoint)
	env.set("MESOS_HTTP_COMMAND_EXECUTOR", "0")
	env.set("LIBPROCESS_IP", a.cfg.IP)
	env.set("LIBPROCESS_PORT", "0")
	env.set("PWD", sandbox)
	if ex.info.Command != nil {
		if err := env.apply(ex.info.Command.Environment); err != nil {
			return nil, err
		}
	}
	return env.list(), nil
}

// envList is an environment with later settings replacing earlier ones.
type envList struct {
	names []string
	vals  map[string]string
}

func newEnvList(base []string) *envList {
	if base == nil {
		base = os.Environ()
	}
	e := &envList{vals: map[string]string{}}
	for _, kv := range base {
		if k, v, ok := strings.Cut(kv, "="); ok {
			e.set(k, v)
		}
	}
	return e
}

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.names = append(e.names, k)
	}
	e.vals[k] = v
}

func (e *envList) unset(k string) {
	if _, ok := e.vals[k]; !ok {
		return
	}
	delete(e.vals, k)
	for i, n := range e.names {
		if n == k {
			e.names = append(e.names[:i], e.names[i+1:]...)
			break
		}
	}
}

// apply adds CommandInfo.environment. Secrets given by value are resolved
// as Mesos' default secret resolver does; references cannot be.
func (e *envList) apply(env *mesos.Environment) error {
	if env == nil {
		return nil
	}
	for _, v := range env.Variables {
		switch v.GetType() {
		case mesos.Environment_Variable_SECRET:
			s := v.GetSecret()
			if s.GetType() != mesos.Secret_VALUE || s.Value == nil {
				return fmt.Errorf("cannot resolve secret of environment variable '%s': only secrets by value are supported", v.Name)
			}
			e.set(v.Name, string(s.Value.Data))
		default:
			e.set(v.Name, v.GetValue())
		}
	}
	return nil
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// killContainerProcesses SIGKILLs a container: the process group whose
// leader is pgid, and every descendant of that leader wherever it went
// (process groups or sessions of its own). Descendants are found from the
// leader down, through /proc/<pid>/task/<tid>/children, so this costs what
// the container's own processes cost, not what the host runs; each is
// stopped as it is found so that nothing forks behind the walk. A process
// that left the group and whose parent had already exited is out of reach,
// as under Mesos' posix launcher.
func killContainerProcesses(pgid int) {
	if pgid <= 0 {
		return
	}
	tree := processTree(pgid)
	// Killing a process group is atomic with respect to forks in it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	for _, pid := range tree {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processTree lists leader and its live descendants, stopping each
// (SIGSTOP) as it is found. The leader must still lead its own process
// group: a pid that was reaped and reused is left alone.
func processTree(leader int) []int {
	if state, group, ok := procStat(leader); !ok || group != leader || state == 'Z' || state == 'X' {
		return nil
	}
	seen := map[int]bool{}
	var out []int
	// A process that forked just before it stopped shows its child on the
	// next pass; a pass that finds nothing new ends the walk.
	for pass := 0; pass < 5; pass++ {
		found := false
		stack := []int{leader}
		for len(stack) > 0 {
			pid := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !seen[pid] {
				seen[pid] = true
				found = true
				out = append(out, pid)
				_ = syscall.Kill(pid, syscall.SIGSTOP)
			}
			stack = append(stack, childrenOf(pid)...)
		}
		if !found {
			break
		}
	}
	sort.Ints(out)
	return out
}

// childrenOf lists a process's children (of all its threads).
func childrenOf(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// procStat reads a process's state and process group from /proc/pid/stat.
func procStat(pid int) (state byte, pgid int, ok bool) {
	fields, ok := procStatFields(pid)
	if !ok {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(fields[2])
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pg, true
}

// procStatFields is /proc/pid/stat from field 3 (the state) on: the
// command name before it is in parentheses and may contain anything.
// There are at least 20 (to the start time, field 22).
func procStatFields(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return nil, false
	}
	return fields, true
}

// waitStatusString describes a raw wait status as Mesos' WSTRINGIFY does.
func waitStatusString(status int32) string {
	if status < 0 {
		return "terminated with unknown status"
	}
	ws := syscall.WaitStatus(uint32(status))
	switch {
	case ws.Exited():
		return "exited with status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "terminated with signal " + signalName(ws.Signal())
	}
	return "wait status " + strconv.Itoa(int(status))
}

// signalName is strsignal(3): "Terminated", "Killed", ...
func signalName(s syscall.Signal) string {
	n := s.String()
	if n == "" {
		return n
	}
	r := []rune(n)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}
