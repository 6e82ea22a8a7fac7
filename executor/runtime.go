package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// Runtime starts workloads. The executor owns this interface; the process
// runtime (process.go) and the docker runtime (docker.go) implement it.
type Runtime interface {
	// Name is "process" or "docker".
	Name() string
	// Start launches the task described by spec and returns once it runs
	// (or has failed to start). ctx bounds the start only, not the
	// workload's life.
	Start(ctx context.Context, spec StartSpec) (Workload, error)
}

// StartSpec is everything a runtime needs to launch one task.
type StartSpec struct {
	TaskID      string
	ExecutorID  string
	FrameworkID string
	Data        *protocol.TaskData
	// Sandbox is the executor's sandbox directory.
	Sandbox string
	// Host is the agent's IP: ports are bound there and health checks
	// connect there.
	Host string
	// Stdout and Stderr receive the workload's output.
	Stdout, Stderr io.Writer
}

// Workload is one running task, as a runtime sees it. Its methods are safe
// for concurrent use.
type Workload interface {
	// Exited is closed as soon as the runtime has seen the workload exit;
	// Done may follow later (a container's last output is drained and the
	// container removed first).
	Exited() <-chan struct{}
	// Done is closed once the workload has exited and been cleaned up;
	// Exit is valid from then on.
	Done() <-chan struct{}
	// Exit describes how the workload ended; valid once Done is closed.
	Exit() ExitStatus
	// Stop asks the workload to stop (SIGTERM), waits up to grace, then
	// kills it (SIGKILL) and waits for the exit until ctx ends.
	Stop(ctx context.Context, grace time.Duration) error
	// Exec runs cmd inside the workload's environment until it exits or
	// ctx ends; output beyond protocol.MaxExecOutput per stream is cut. It
	// fails with errNotRunning when the workload is not running (any more).
	Exec(ctx context.Context, cmd []string) (ExecOutput, error)
	// Alive is false when the workload is known to have exited, even if
	// Exited has not been closed yet (the runtime's exit watcher lags
	// behind the kernel and the engine); true when it runs or the
	// runtime cannot tell.
	Alive(ctx context.Context) bool
	// Usage reports resource use.
	Usage(ctx context.Context) (Usage, error)
	// StderrTail returns the last lines the workload wrote to stderr.
	StderrTail() string
}

// errNotRunning says a workload was found not running: it has exited,
// though its runtime may not have noticed yet.
var errNotRunning = errors.New("the task is not running")

// ExitStatus is how a workload ended.
type ExitStatus struct {
	// Code is the exit status; a death by signal N shows as 128+N, as
	// shells and Docker report it.
	Code int
	// Signal is the signal that killed the workload, 0 if it exited.
	Signal syscall.Signal
	// Detail is what else the runtime knows, e.g. "OOM killed".
	Detail string
	// Err is set when the end could not be observed properly.
	Err error
}

func (s ExitStatus) String() string {
	var msg string
	switch {
	case s.Err != nil:
		msg = fmt.Sprintf("ended with an error: %v", s.Err)
	case s.Signal != 0:
		msg = fmt.Sprintf("killed by signal %d (%v), exit code %d", int(s.Signal), s.Signal, s.Code)
	default:
		msg = fmt.Sprintf("exited with status %d", s.Code)
	}
	if s.Detail != "" {
		msg += " (" + s.Detail + ")"
	}
	return msg
}

// ExecOutput is the outcome of Workload.Exec.
type ExecOutput struct {
	ExitCode  int
	Stdout    string
	Stderr    string
	Truncated bool
}

// Usage is a workload's resource use.
type Usage struct {
	CPUSeconds float64
	MemBytes   uint64
}

// taskEnv is the environment every runtime gives a task: the scheduler's
// variables plus the STATEFUL_* ones describing the task's identity,
// ports and volume (volumePath is where the task sees its volume).
func taskEnv(spec StartSpec, volumePath string) map[string]string {
	d := spec.Data
	env := make(map[string]string, len(d.Env)+8+len(d.Ports))
	for k, v := range d.Env {
		env[k] = v
	}
	env["STATEFUL_TASK_ID"] = spec.TaskID
	env["STATEFUL_EXECUTOR_ID"] = spec.ExecutorID
	env["STATEFUL_FRAMEWORK"] = d.Framework
	env["STATEFUL_INSTANCE"] = d.Instance
	env["STATEFUL_ORDINAL"] = strconv.Itoa(d.Ordinal)
	env["STATEFUL_ROLE"] = d.Role
	env["STATEFUL_HOST"] = spec.Host
	if volumePath != "" {
		env["STATEFUL_VOLUME"] = volumePath
	}
	for name, port := range d.Ports {
		env[portEnvName(name)] = strconv.FormatUint(uint64(port), 10)
	}
	return env
}

// portEnvName turns port name "redis-bus" into STATEFUL_PORT_REDIS_BUS.
func portEnvName(name string) string {
	return "STATEFUL_PORT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envList renders env as sorted KEY=VALUE pairs.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// tailBuffer keeps the last max bytes written to it, for the "last lines
// of stderr" in a failure message.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		p = p[len(p)-t.max:]
		t.buf = append(t.buf[:0], p...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// Lines returns up to n last complete-or-partial lines.
func (t *tailBuffer) Lines(n int) string {
	t.mu.Lock()
	b := bytes.TrimRight(t.buf, "\n")
	t.mu.Unlock()
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.ToValidUTF8(string(bytes.Join(lines, []byte("\n"))), "?")
}

// limitedBuffer keeps the first max bytes written and notes whether more
// came; writes never fail, so a chatty command is not killed by SIGPIPE.
type limitedBuffer struct {
	mu        sync.Mutex
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	room := l.max - l.buf.Len()
	if room < len(p) {
		l.truncated = true
		if room > 0 {
			l.buf.Write(p[:room])
		}
		return len(p), nil
	}
	l.buf.Write(p)
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.ToValidUTF8(l.buf.String(), "?")
}

func (l *limitedBuffer) Truncated() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.truncated
}
