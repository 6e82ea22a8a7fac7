// Package testworkload is the workload of the framework's own tests: tasks
// run redis-server with the process runtime when it is installed (a shell
// loop otherwise), slaves are pointed at their master with Exec, and every
// callback is recorded, in memory and, when STATEFUL_TEST_CALLBACK_LOG names
// a file, as JSON lines in that file (for schedulers run as subprocesses).
package testworkload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mesos-stateful/stateful"
)

// LogEnv names the file callbacks are appended to.
const LogEnv = "STATEFUL_TEST_CALLBACK_LOG"

// APIAddrFileEnv names the file the test framework binary
// (internal/testframework) writes its REST API's address to once it
// listens, so that a test can run it with --http=127.0.0.1:0.
const APIAddrFileEnv = "STATEFUL_TEST_API_ADDR_FILE"

// HealthGateEnv names a directory that gates every task's health (see
// CheckHealth). Executors inherit it from the environment of the agents
// that start them, which is the test process's.
const HealthGateEnv = "STATEFUL_TEST_HEALTH_GATE"

// LocalAgentIPEnv names the first agent IP of the embedded cluster of the
// test framework binary (internal/testframework) run with --master=local,
// so that its agents never share addresses with another test's.
const LocalAgentIPEnv = "STATEFUL_TEST_LOCAL_AGENT_IP"

// Port is the name of the one port tasks get.
const Port = "redis"

// Call is one callback invocation.
type Call struct {
	Callback string        `json:"callback"`
	Instance string        `json:"instance"`
	Task     string        `json:"task,omitempty"`
	Role     stateful.Role `json:"role,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	// Detail is what the callback did, e.g. the exec's output.
	Detail string `json:"detail,omitempty"`
	// Err is the error the callback returned (or "panic").
	Err string `json:"err,omitempty"`
}

// Workload implements stateful.Workload for tests.
type Workload struct {
	stateful.BaseWorkload

	// Redis is whether tasks run redis-server.
	Redis bool

	mu    sync.Mutex
	calls []Call
	// faults make callbacks fail: callback name → how many more calls
	// fail; a negative count panics instead, that many times.
	faults map[string]int
}

// New returns the workload, running redis-server if it is installed.
func New() *Workload {
	_, err := exec.LookPath("redis-server")
	return &Workload{Redis: err == nil, faults: map[string]int{}}
}

// Command is the task command: redis-server on the task's port and host,
// without persistence (the tests care about processes, not data).
func (w *Workload) Command() string {
	if w.Redis {
		return `exec redis-server --port "$STATEFUL_PORT_REDIS" --bind "$STATEFUL_HOST" --save '' --appendonly no --protected-mode no`
	}
	return `while true; do sleep 1; done`
}

// Defaults implements stateful.Workload.
func (w *Workload) Defaults() stateful.Spec {
	s := stateful.Spec{CPU: 0.1, Mem: 64, Disk: 16, Command: w.Command(), Network: stateful.NetworkHost, Ports: []string{Port}}
	if w.Redis {
		s.Health = &stateful.HealthCheck{TCP: Port, IntervalS: 0.2, GraceS: 20, TimeoutS: 0.2}
	}
	return s
}

// Fail makes the next n calls of callback that would otherwise succeed
// fail (n > 0) or panic (n < 0).
func (w *Workload) Fail(callback string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faults[callback] = n
}

// Calls returns the calls so far.
func (w *Workload) Calls() []Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Call(nil), w.calls...)
}

// ErrMasterNotRunning is SlaveRunning's answer while the instance's master
// is not RUNNING: the maintainer calls SlaveRunning as soon as the slave
// runs and is healthy, and tasks on different agents come up in no
// particular order, so the callback fails until the master runs and the
// maintainer retries it.
var ErrMasterNotRunning = errors.New("master not running yet")

// noteFailure notes a call that failed for a reason of its own; pending
// faults are left for a later call.
func (w *Workload) noteFailure(c Call, err error) error {
	c.Err = err.Error()
	w.mu.Lock()
	w.calls = append(w.calls, c)
	w.mu.Unlock()
	appendLog(c)
	return err
}

// record notes a call and applies a pending fault.
func (w *Workload) record(c Call) error {
	w.mu.Lock()
	n := w.faults[c.Callback]
	var err error
	switch {
	case n > 0:
		w.faults[c.Callback] = n - 1
		err = fmt.Errorf("injected failure of %s", c.Callback)
		c.Err = err.Error()
	case n < 0:
		w.faults[c.Callback] = n + 1
		c.Err = "panic"
	}
	w.calls = append(w.calls, c)
	w.mu.Unlock()
	appendLog(c)
	if n < 0 {
		panic("injected panic in " + c.Callback)
	}
	return err
}

func appendLog(c Call) {
	path := os.Getenv(LogEnv)
	if path == "" {
		return
	}
	b, _ := json.Marshal(c)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}

// ReadLog reads the calls a subprocess logged to path.
func ReadLog(path string) ([]Call, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var calls []Call
	dec := json.NewDecoder(bytes.NewReader(raw))
	for dec.More() {
		var c Call
		if err := dec.Decode(&c); err != nil {
			return calls, err
		}
		calls = append(calls, c)
	}
	return calls, nil
}

func taskCall(name string, inst *stateful.Instance, t *stateful.Task) Call {
	return Call{Callback: name, Instance: inst.Name, Task: t.Name, Role: t.Role, Attempt: t.Attempt}
}

// Config implements stateful.Workload. A slave's launch names its master,
// as the Redis example's does: redis-server (the workload's own command)
// starts with --replicaof the master's address as stored, and TEST_MASTER
// holds it in any case. Detail
// records "<task ID> master <master's task ID> <host:port>".
func (w *Workload) Config(_ context.Context, inst *stateful.Instance, t *stateful.Task) (stateful.LaunchConfig, error) {
	c := taskCall("Config", inst, t)
	c.Detail = t.TaskID
	lc := stateful.LaunchConfig{Env: map[string]string{"TEST_ROLE": string(t.Role)}}
	if t.Role == stateful.RoleSlave {
		var master *stateful.Task
		for _, x := range inst.Tasks {
			if x.Role == stateful.RoleMaster && (master == nil || x.Ordinal == inst.MasterOrdinal) {
				master = x
			}
		}
		if master == nil || master.Host == "" || master.Ports[Port] == 0 {
			return stateful.LaunchConfig{}, w.noteFailure(c, errors.New("the master is not placed"))
		}
		addr := master.Host + ":" + strconv.Itoa(master.Ports[Port])
		c.Detail += " master " + master.TaskID + " " + addr
		lc.Env["TEST_MASTER"] = addr
		if w.Redis && inst.Spec.Command == w.Command() {
			lc.Args = []string{"--replicaof", master.Host, strconv.Itoa(master.Ports[Port])}
		}
	}
	return lc, w.record(c)
}

// ConfiguredMaster parses the Detail of a slave's Config call: the task ID
// of the master it was configured with and its address.
func ConfiguredMaster(c Call) (taskID, addr string, ok bool) {
	var self string
	n, _ := fmt.Sscanf(c.Detail, "%s master %s %s", &self, &taskID, &addr)
	return taskID, addr, n == 3
}

// Start implements stateful.Workload.
func (w *Workload) Start(_ context.Context, _ stateful.Handle, inst *stateful.Instance) error {
	return w.record(Call{Callback: "Start", Instance: inst.Name})
}

// StartMaster implements stateful.Workload.
func (w *Workload) StartMaster(_ context.Context, _ stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	return w.record(taskCall("StartMaster", inst, t))
}

// StartSlave implements stateful.Workload.
func (w *Workload) StartSlave(_ context.Context, _ stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	return w.record(taskCall("StartSlave", inst, t))
}

// MasterRunning implements stateful.Workload.
func (w *Workload) MasterRunning(ctx context.Context, h stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	if err := w.record(taskCall("MasterRunning", inst, t)); err != nil {
		return err
	}
	// A master relaunched in place may listen on another port: its
	// running slaves follow it. Best effort: a slave that missed it is
	// re-pointed by the next failover or its own SlaveRunning.
	_ = w.repoint(ctx, h, inst)
	return nil
}

// repoint makes the current master of an MS instance whose tasks run the
// workload's redis-server a master (REPLICAOF NO ONE) and points every
// other running slave at it, with Exec. It is idempotent, so any callback
// may call it again.
func (w *Workload) repoint(ctx context.Context, h stateful.Handle, inst *stateful.Instance) error {
	if !w.Redis || inst.Type != stateful.TypeMasterSlave || inst.Spec.Command != w.Command() {
		return nil
	}
	tasks := h.Tasks(inst)
	var master *stateful.Task
	for _, x := range tasks {
		if x.Role == stateful.RoleMaster && (master == nil || x.Ordinal == inst.MasterOrdinal) {
			master = x
		}
	}
	if master == nil || !master.State.IsRunning() {
		return nil
	}
	replicaOf := func(t *stateful.Task, args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cmd := append([]string{"redis-cli", "-h", t.Host, "-p", strconv.Itoa(t.Ports[Port]), "REPLICAOF"}, args...)
		res, err := h.Exec(ctx, t, cmd)
		if err == nil && res.ExitCode != 0 {
			err = fmt.Errorf("%v: exit %d: %s", cmd, res.ExitCode, res.Stderr)
		}
		return err
	}
	errs := []error{replicaOf(master, "NO", "ONE")}
	for _, t := range tasks {
		if t.Role == stateful.RoleSlave && t.State.IsRunning() && t.Ordinal != master.Ordinal {
			errs = append(errs, replicaOf(t, master.Host, strconv.Itoa(master.Ports[Port])))
		}
	}
	return errors.Join(errs...)
}

// SlaveRunning implements stateful.Workload: the slave is pointed at the
// master with Exec (REPLICAOF when running redis; an echo otherwise).
func (w *Workload) SlaveRunning(ctx context.Context, h stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	c := taskCall("SlaveRunning", inst, t)
	var master *stateful.Task
	for _, x := range h.Tasks(inst) {
		if x.Role == stateful.RoleMaster {
			master = x
		}
	}
	if master == nil || !master.State.IsRunning() {
		return w.noteFailure(c, ErrMasterNotRunning)
	}
	cmd := []string{"sh", "-c", "echo replica of " + master.Host + ":" + strconv.Itoa(master.Ports[Port])}
	if w.Redis {
		cmd = []string{"redis-cli", "-h", t.Host, "-p", strconv.Itoa(t.Ports[Port]), "REPLICAOF", master.Host, strconv.Itoa(master.Ports[Port])}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := h.Exec(ctx, t, cmd)
	if err != nil {
		return w.noteFailure(c, err)
	}
	c.Detail = fmt.Sprintf("exit %d: %s", res.ExitCode, trim(res.Stdout))
	return w.record(c)
}

// MasterLost implements stateful.Workload with the default failover.
func (w *Workload) MasterLost(ctx context.Context, h stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	if err := w.record(taskCall("MasterLost", inst, t)); err != nil {
		return err
	}
	if err := stateful.DefaultMasterLost(ctx, h, inst, t); err != nil {
		return err
	}
	// inst predates the promotion: re-read it through the Handle's tasks.
	return w.repoint(ctx, h, promoted(inst, h))
}

// promoted returns inst with MasterOrdinal as the stored tasks say after
// a promotion.
func promoted(inst *stateful.Instance, h stateful.Handle) *stateful.Instance {
	out := inst.Clone()
	for _, x := range h.Tasks(inst) {
		if x.Role == stateful.RoleMaster {
			out.MasterOrdinal = x.Ordinal
		}
	}
	return out
}

// SlaveLost implements stateful.Workload. It re-points the slaves too (best
// effort): when a MasterLost failed after its promotion was stored, the
// lost ordinal is a slave by its retry, which is this call.
func (w *Workload) SlaveLost(ctx context.Context, h stateful.Handle, inst *stateful.Instance, t *stateful.Task) error {
	if err := w.record(taskCall("SlaveLost", inst, t)); err != nil {
		return err
	}
	_ = w.repoint(ctx, h, promoted(inst, h))
	return nil
}

// Stats implements stateful.StatsReporter (in the executor): the figures
// show up in the scheduler's GET.
func (w *Workload) Stats(_ context.Context, t *stateful.Task, _ stateful.ExecFunc) (map[string]string, error) {
	return map[string]string{"reported_by": t.Name}, nil
}

// CheckHealth implements stateful.HealthChecker (in the executor). Without
// HealthGateEnv every task is healthy. With it, a task of instance inst is
// healthy only once the file inst exists in that directory, looked at
// from inside the task with exec, as a real workload looks at its own
// state; every failed check appends a line to inst.failed there, so that
// a test can tell the check ran.
func (w *Workload) CheckHealth(ctx context.Context, t *stateful.Task, run stateful.ExecFunc) error {
	dir := os.Getenv(HealthGateEnv)
	if dir == "" {
		return nil
	}
	marker := filepath.Join(dir, t.Instance)
	res, err := run(ctx, []string{"test", "-e", marker})
	if err == nil && res.ExitCode == 0 {
		return nil
	}
	if f, ferr := os.OpenFile(marker+".failed", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); ferr == nil {
		fmt.Fprintln(f, t.Name)
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("checking for %s: %w", marker, err)
	}
	return fmt.Errorf("task %s waits for %s", t.Name, marker)
}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
