package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

const (
	// stderrTailBytes is how much stderr is kept for failure messages.
	stderrTailBytes = 8 << 10
	// stderrTailLines is how many lines of it a failure message quotes.
	stderrTailLines = 10
	// killWait bounds the wait for an exit after SIGKILL.
	killWait = 5 * time.Second
	// drainWait bounds the wait for a dead workload's last output.
	drainWait = time.Second
	// userHZ is the unit of the CPU times in /proc/<pid>/stat; it is 100
	// on every Linux architecture Go supports.
	userHZ = 100
)

// ProcessRuntime runs a task as a plain process: its command through
// /bin/sh -c (or its args directly) in its own process group, with the
// task's environment, the volume (or else the sandbox) as working
// directory, and its output in the sandbox.
//
// No workload outlives its executor, even one killed by SIGKILL, by two
// means. The task's main process (the workload itself when the command is
// simple enough for "exec") gets SIGKILL from the kernel when the executor
// dies (PR_SET_PDEATHSIG, from an OS thread that lives as long as the
// workload). And a watchdog in the process group, which the executor
// restarts if it dies, kills the whole group, grandchildren included, when
// the executor goes away. What escapes both: a process that leaves the
// group (setsid) and is not the main process, if the watchdog is killed
// in the same instant as the executor. (cgroup v2 would close that gap;
// /sys/fs/cgroup is not a writable v2 hierarchy everywhere this runs.)
type ProcessRuntime struct{}

// Name implements Runtime.
func (ProcessRuntime) Name() string { return protocol.RuntimeProcess }

// Start implements Runtime.
func (ProcessRuntime) Start(ctx context.Context, spec StartSpec) (Workload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := spec.Data
	dir, volume := spec.Sandbox, ""
	if d.Volume != nil {
		if err := os.MkdirAll(d.Volume.HostPath, 0o750); err != nil {
			return nil, fmt.Errorf("create volume directory: %w", err)
		}
		dir, volume = d.Volume.HostPath, d.Volume.HostPath
	}
	var argv []string
	switch {
	case d.Command != "":
		argv = []string{"/bin/sh", "-c", shellCommand(d.Command)}
	case len(d.Args) > 0:
		argv = d.Args
	default:
		return nil, errors.New("the process runtime needs a command or args")
	}
	env := processEnv(taskEnv(spec, volume))

	// The task gets our stderr pipe as a plain file, so that Wait returns
	// as soon as the task's main process exits even if a grandchild still
	// holds the pipe; we copy the output ourselves.
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	defer errW.Close()
	stdout := spec.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	stderr := spec.Stderr
	if stderr == nil {
		stderr = io.Discard
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Stdout may not be a file (tests): bound the copy after exit.
	cmd.WaitDelay = drainWait
	reaped := make(chan struct{})
	if err := startOnOwnThread(cmd, reaped); err != nil {
		errR.Close()
		return nil, fmt.Errorf("start %q: %w", argv[0], err)
	}
	p := &process{
		cmd:       cmd,
		pgid:      cmd.Process.Pid,
		dir:       dir,
		env:       env,
		tail:      newTailBuffer(stderrTailBytes),
		reaped:    reaped,
		done:      make(chan struct{}),
		drained:   make(chan struct{}),
		keeperEnd: make(chan struct{}),
	}
	go p.copyStderr(errR, stderr)
	p.wdMu.Lock()
	err = p.startWatchdog()
	p.wdMu.Unlock()
	if err != nil {
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		_ = cmd.Wait()
		close(reaped)
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	go p.keepWatchdog()
	go p.wait()
	glog.V(1).Infof("process runtime: task %s started as process group %d in %s", spec.TaskID, p.pgid, dir)
	return p, nil
}

// processEnv is the executor's environment, minus what a task must not
// see, overridden by the task's own variables.
func processEnv(task map[string]string) []string {
	env := make(map[string]string, len(task)+32)
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "MESOS_EXECUTOR_AUTHENTICATION_TOKEN" {
			continue
		}
		env[k] = v
	}
	for k, v := range task {
		env[k] = v
	}
	return envList(env)
}

// startOnOwnThread starts cmd from a goroutine locked to its OS thread,
// which stays until reaped is closed (after cmd's Wait returned) and then
// ends with its thread. The kernel sends the child its Pdeathsig when the
// thread that forked it exits, not only the process: started from any
// thread, the child could be killed whenever the Go runtime retires that
// thread.
func startOnOwnThread(cmd *exec.Cmd, reaped <-chan struct{}) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread goes when this goroutine returns.
		err := cmd.Start()
		started <- err
		if err == nil {
			<-reaped
		}
	}()
	return <-started
}

type process struct {
	cmd    *exec.Cmd
	pgid   int
	dir    string
	env    []string
	tail   *tailBuffer
	reaped chan struct{} // closed once cmd.Wait returned

	listeners ownedListeners // for checkListener

	wdMu         sync.Mutex
	watchdog     *exec.Cmd
	watchdogPipe *os.File
	wdStopping   bool          // the task ended; no new watchdog
	keeperEnd    chan struct{} // closed when keepWatchdog returns

	done    chan struct{}
	drained chan struct{}
	exit    ExitStatus
}

// startWatchdog starts a shell in the task's process group that ignores
// the polite signals and waits for EOF on a pipe only this process holds
// open. The EOF comes when we close it (the task has ended) or when the
// executor dies for any reason; the watchdog then SIGKILLs the group. Being
// a member, it also keeps the group ID from being reused while it waits.
// The caller holds wdMu.
func (p *process) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	script := fmt.Sprintf("trap '' TERM INT HUP QUIT; read _; kill -KILL -%d", p.pgid)
	wd := exec.Command("/bin/sh", "-c", script)
	// A bare environment: an agent that sweeps up the processes carrying
	// its sandbox in MESOS_SANDBOX (localmesos does) must not take the
	// watchdog and leave a workload that rewrote its own environment
	// (redis-server does, for its process title).
	wd.Env = []string{"PATH=/usr/bin:/bin"}
	wd.Stdin = r
	wd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: p.pgid}
	if err := wd.Start(); err != nil {
		w.Close()
		return err
	}
	p.watchdog, p.watchdogPipe = wd, w
	return nil
}

// watchdogRestartWait spaces the attempts to replace a dead watchdog that
// cannot be started again.
const watchdogRestartWait = time.Second

// keepWatchdog replaces the watchdog whenever it dies while the task runs
// (someone killed it), so that a later death of the executor still takes
// the whole process group with it. It returns once the task has ended.
func (p *process) keepWatchdog() {
	defer close(p.keeperEnd)
	for {
		p.wdMu.Lock()
		wd := p.watchdog
		p.wdMu.Unlock()
		err := wd.Wait()
		for {
			p.wdMu.Lock()
			if p.wdStopping {
				p.wdMu.Unlock()
				return
			}
			p.watchdogPipe.Close()
			glog.Warningf("process runtime: the watchdog of process group %d died (%v); starting another", p.pgid, err)
			err = p.startWatchdog()
			p.wdMu.Unlock()
			if err == nil {
				break
			}
			glog.Errorf("process runtime: restarting the watchdog of process group %d: %v", p.pgid, err)
			select {
			case <-p.reaped:
			case <-time.After(watchdogRestartWait):
			}
		}
	}
}

func (p *process) copyStderr(r *os.File, sink io.Writer) {
	defer close(p.drained)
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p.tail.Write(buf[:n])
			if _, werr := sink.Write(buf[:n]); werr != nil {
				glog.V(1).Infof("process runtime: writing the task's stderr: %v", werr)
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *process) wait() {
	err := p.cmd.Wait()
	close(p.reaped)
	status := exitStatusOf(p.cmd.ProcessState, err)
	// The main process is gone: the rest of its group goes with it.
	p.wdMu.Lock()
	p.wdStopping = true
	p.watchdogPipe.Close()
	p.wdMu.Unlock()
	<-p.keeperEnd
	select {
	case <-p.drained:
	case <-time.After(drainWait):
	}
	p.exit = status
	close(p.done)
}

func exitStatusOf(ps *os.ProcessState, waitErr error) ExitStatus {
	if ps == nil {
		return ExitStatus{Code: -1, Err: waitErr}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ps.ExitCode()}
}

func (p *process) Exited() <-chan struct{} { return p.reaped }

// Alive implements Workload: until reaped, the main process's pid is ours,
// and a zombie is a process that has exited.
func (p *process) Alive(context.Context) bool {
	select {
	case <-p.reaped:
		return false
	default:
	}
	_, zombie, err := procStartTime(p.pgid)
	return err == nil && !zombie
}

func (p *process) Done() <-chan struct{} { return p.done }

func (p *process) Exit() ExitStatus {
	<-p.done
	return p.exit
}

func (p *process) StderrTail() string { return p.tail.Lines(stderrTailLines) }

func (p *process) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	glog.V(1).Infof("process runtime: stopping process group %d (grace %v)", p.pgid, grace)
	if err := syscall.Kill(-p.pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		glog.Warningf("process runtime: SIGTERM to group %d: %v", p.pgid, err)
	}
	graceTimer := time.NewTimer(grace)
	defer graceTimer.Stop()
	select {
	case <-p.done:
		return nil
	case <-graceTimer.C:
	case <-ctx.Done():
	}
	glog.V(1).Infof("process runtime: process group %d still running, sending SIGKILL", p.pgid)
	if err := syscall.Kill(-p.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", p.pgid, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("process group %d did not exit %v after SIGKILL", p.pgid, killWait)
	}
}

func (p *process) Exec(ctx context.Context, argv []string) (ExecOutput, error) {
	if len(argv) == 0 || argv[0] == "" {
		return ExecOutput{}, errors.New("exec: empty command")
	}
	select {
	case <-p.reaped:
		return ExecOutput{}, fmt.Errorf("exec: %w", errNotRunning)
	default:
	}
	stdout := &limitedBuffer{max: protocol.MaxExecOutput}
	stderr := &limitedBuffer{max: protocol.MaxExecOutput}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// Its own group, so that a timeout kills whatever it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = drainWait
	err := cmd.Run()
	out := ExecOutput{ExitCode: -1, Stdout: stdout.String(), Stderr: stderr.String(), Truncated: stdout.Truncated() || stderr.Truncated()}
	if cmd.ProcessState != nil {
		out.ExitCode = exitStatusOf(cmd.ProcessState, nil).Code
	}
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("exec %q: %w", argv[0], ctx.Err())
	case cmd.ProcessState == nil:
		return out, fmt.Errorf("exec %q: %w", argv[0], err)
	}
	return out, nil
}

func (p *process) Usage(context.Context) (Usage, error) {
	return groupUsage(p.pgid)
}

// groupUsage sums CPU time and resident memory over a process group.
func groupUsage(pgid int) (Usage, error) {
	stats, err := groupStats(pgid)
	if err != nil {
		return Usage{}, err
	}
	if len(stats) == 0 {
		return Usage{}, fmt.Errorf("process group %d has no processes", pgid)
	}
	page := uint64(os.Getpagesize())
	var u Usage
	for _, f := range stats {
		u.CPUSeconds += float64(f.utime+f.stime) / userHZ
		u.MemBytes += f.rssPages * page
	}
	return u, nil
}

// groupStats returns the /proc/<pid>/stat figures of the live members of
// process group pgid, by pid.
func groupStats(pgid int) (map[int]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	out := make(map[int]procStat)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if f, ok := statFields(stat); ok && f.pgrp == pgid {
			out[pid] = f
		}
	}
	return out, nil
}

type procStat struct {
	pgrp         int
	utime, stime uint64
	rssPages     uint64
}

// statFields parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after its last ')'.
func statFields(b []byte) (procStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, false
	}
	pgrp, err1 := strconv.Atoi(f[2])
	utime, err2 := strconv.ParseUint(f[11], 10, 64)
	stime, err3 := strconv.ParseUint(f[12], 10, 64)
	rss, err4 := strconv.ParseInt(f[21], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || rss < 0 {
		return procStat{}, false
	}
	return procStat{pgrp: pgrp, utime: utime, stime: stime, rssPages: uint64(rss)}, true
}
