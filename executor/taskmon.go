package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// StatsProvider adds workload-specific figures (a Redis role, replication
// offset, lag ...) to a task's periodic stats. The framework binary is its
// own executor, so a workload passes its provider in-process through
// Options.Stats. It is called from one goroutine per task, at most once
// per stats interval; ctx ends when the task does.
type StatsProvider interface {
	WorkloadStats(ctx context.Context, task TaskHandle) (map[string]string, error)
}

// StatsProviderFunc adapts a function to StatsProvider.
type StatsProviderFunc func(ctx context.Context, task TaskHandle) (map[string]string, error)

// WorkloadStats implements StatsProvider.
func (f StatsProviderFunc) WorkloadStats(ctx context.Context, task TaskHandle) (map[string]string, error) {
	return f(ctx, task)
}

// HealthProvider is the workload's own health check, for what a port or a
// command cannot tell (a Redis slave is healthy only once its link to the
// master is up). The framework binary passes it in-process through
// Options.Health. It runs on every health interval after the task spec's
// check has passed, or alone when the spec has none, and the task is
// healthy only when both pass: it gates TASK_RUNNING, and failing it
// afterwards is reported and, past the spec's consecutive_failures, kills
// the task. ctx ends after the health timeout; a call that outlives it
// counts as a failure and is not repeated until it returns. A panic counts
// as a failure too. Calls for one task never overlap.
type HealthProvider interface {
	WorkloadHealth(ctx context.Context, task TaskHandle) error
}

// HealthProviderFunc adapts a function to HealthProvider.
type HealthProviderFunc func(ctx context.Context, task TaskHandle) error

// WorkloadHealth implements HealthProvider.
func (f HealthProviderFunc) WorkloadHealth(ctx context.Context, task TaskHandle) error {
	return f(ctx, task)
}

// VolumeInitHook prepares a task's fresh volume (its host path) before the
// task's process first starts on it. It is called once per volume: the
// TaskMon marks the volume after it returns nil, and an error fails the
// task (the next attempt calls it again). ctx ends when the task is killed.
// task.Exec is unavailable: nothing runs yet.
type VolumeInitHook func(ctx context.Context, task TaskHandle, volume string) error

// volumeMarker is the file whose presence says a volume was initialised.
const volumeMarker = ".stateful-initialized"

// taskHooks are the workload's in-process additions to a TaskMon; any may
// be nil.
type taskHooks struct {
	stats      StatsProvider
	health     HealthProvider
	initVolume VolumeInitHook
}

// TaskHandle is what a StatsProvider or HealthProvider may use of a
// running task.
type TaskHandle struct {
	// ID is the Mesos task ID.
	ID string
	// Data is the task's spec (read only).
	Data *protocol.TaskData
	// Host is the agent address the task's ports are bound to.
	Host     string
	workload Workload
	role     func() string
}

// Role returns the role the task holds now: the launch's (Data.Role) until
// the scheduler reports a promotion or demotion.
func (t TaskHandle) Role() string {
	if t.role != nil {
		return t.role()
	}
	if t.Data != nil {
		return t.Data.Role
	}
	return ""
}

// Addr returns host:port of the task's named port, "" if it has none.
func (t TaskHandle) Addr(portName string) string {
	port, ok := t.Data.Ports[portName]
	if !ok {
		return ""
	}
	return net.JoinHostPort(t.Host, strconv.FormatUint(uint64(port), 10))
}

// Exec runs a command inside the task.
func (t TaskHandle) Exec(ctx context.Context, cmd ...string) (ExecOutput, error) {
	if t.workload == nil {
		return ExecOutput{ExitCode: -1}, errors.New("the task's process has not started")
	}
	return t.workload.Exec(ctx, cmd)
}

// reporter receives what a TaskMon has to say: status updates (the
// executor adds uuid, source and executor ID) and stats messages.
type reporter interface {
	Update(status mesos.TaskStatus)
	Message(m protocol.Message)
}

// runtimeResolver picks the runtime for a task; it may probe Docker.
type runtimeResolver func(ctx context.Context, d *protocol.TaskData) (Runtime, error)

// statsTimeout is the least time stats collection is given.
const statsTimeout = 5 * time.Second

// monitorConfig holds a TaskMon's timers.
type monitorConfig struct {
	// StatsInterval is the period of stats messages; <= 0 disables them.
	StatsInterval time.Duration
	// StartupCheckInterval caps the health check interval until the first
	// success, so that a task becomes RUNNING promptly even when its
	// steady-state interval is long.
	StartupCheckInterval time.Duration
}

// TaskMon runs one task and watches it: it reports TASK_STARTING, then
// TASK_RUNNING once the task is healthy (at once with neither a spec health
// check nor a HealthProvider), health changes as TASK_RUNNING with
// REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, and the end as TASK_FINISHED,
// TASK_FAILED (exit code and stderr tail in the message) or TASK_KILLED. A
// task that never passes its health check within the grace period, or that
// fails it consecutive_failures times in a row once RUNNING, is killed and
// fails, so that the scheduler replaces it. It also sends periodic stats.
// Run blocks until the task has ended; ctx ending stops it without a report
// (the executor is going away).
type TaskMon struct {
	taskID     string
	executorID string
	data       *protocol.TaskData
	spec       StartSpec
	resolve    runtimeResolver
	rep        reporter
	hooks      taskHooks
	cfg        monitorConfig
	// policyGrace is the task's kill policy grace period.
	policyGrace time.Duration

	done chan struct{}

	mu          sync.Mutex
	killC       chan struct{} // closed by the first Kill
	killGrace   time.Duration
	killing     bool
	cancelStart context.CancelFunc
	cancelStop  context.CancelFunc
	workload    Workload
	runtimeName string
	state       mesos.TaskState
	healthy     *bool
	role        string
	// refresh asks the stats and health loops for a report at once (after
	// a role change); one pending request is enough.
	refreshStats  chan struct{}
	refreshHealth chan struct{}
}

// newTaskMon prepares a TaskMon; killGrace is the task's kill policy grace,
// used when the task is killed for failing its health check.
func newTaskMon(spec StartSpec, killGrace time.Duration, resolve runtimeResolver, rep reporter, hooks taskHooks, cfg monitorConfig) *TaskMon {
	if cfg.StartupCheckInterval <= 0 {
		cfg.StartupCheckInterval = time.Second
	}
	return &TaskMon{
		taskID:      spec.TaskID,
		executorID:  spec.ExecutorID,
		data:        spec.Data,
		spec:        spec,
		resolve:     resolve,
		rep:         rep,
		hooks:       hooks,
		cfg:         cfg,
		done:        make(chan struct{}),
		killC:       make(chan struct{}),
		killGrace:   killGrace,
		policyGrace: killGrace,
		state:       mesos.TASK_STAGING,
		role:        spec.Data.Role,

		refreshStats:  make(chan struct{}, 1),
		refreshHealth: make(chan struct{}, 1),
	}
}

// SetRole records the role the scheduler says the task holds now, and has
// stats and health checked at once with it, so that the role shown and the
// checks that depend on it (a slave's replication link) follow a promotion
// without waiting for an interval.
func (m *TaskMon) SetRole(role string) {
	m.mu.Lock()
	changed := m.role != role
	m.role = role
	m.mu.Unlock()
	if !changed {
		return
	}
	glog.Infof("task %s: role is now %s", m.taskID, role)
	m.poke(m.refreshStats)
	m.poke(m.refreshHealth)
}

// Role returns the task's current role.
func (m *TaskMon) Role() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.role
}

// Done is closed when Run has returned.
func (m *TaskMon) Done() <-chan struct{} { return m.done }

// Kill asks for the task to be stopped: SIGTERM (docker stop), then after
// grace a forced kill, then TASK_KILLED. A later Kill with a shorter grace
// forces the kill at once, as Mesos' KILL with a new kill policy may.
func (m *TaskMon) Kill(grace time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.killing {
		m.killing = true
		m.killGrace = grace
		close(m.killC)
		if m.cancelStart != nil {
			m.cancelStart()
		}
		return
	}
	if grace >= m.killGrace {
		return
	}
	m.killGrace = grace
	if m.cancelStop != nil {
		glog.V(1).Infof("task %s: kill with a shorter grace (%v) during a graceful stop: forcing it", m.taskID, grace)
		m.cancelStop()
	}
}

// Exec runs a command inside the task, for the scheduler's exec messages.
func (m *TaskMon) Exec(ctx context.Context, cmd []string) (ExecOutput, error) {
	m.mu.Lock()
	w := m.workload
	m.mu.Unlock()
	if w == nil {
		return ExecOutput{ExitCode: -1}, errors.New("the task has not started yet")
	}
	out, err := w.Exec(ctx, cmd)
	// The scheduler's commands are how a workload changes a task's role
	// (REPLICAOF ...): report the figures they change at once.
	m.poke(m.refreshStats)
	return out, err
}

// poke makes a pending request on c; one is enough.
func (m *TaskMon) poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run starts the task and watches it until it ends.
func (m *TaskMon) Run(ctx context.Context) {
	defer close(m.done)
	m.report(mesos.TASK_STARTING, "", nil, nil)

	w, err := m.start(ctx)
	if err != nil {
		if m.isKilling() {
			m.report(mesos.TASK_KILLED, "killed before it had started", nil, nil)
			return
		}
		if ctx.Err() != nil {
			return
		}
		m.report(mesos.TASK_FAILED, "failed to start: "+err.Error(), nil, nil)
		return
	}

	// The health and stats goroutines are ours: stopped and waited for
	// before Run returns.
	watchCtx, stopWatching := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopWatching()
		wg.Wait()
	}()
	handle := TaskHandle{ID: m.taskID, Data: m.data, Host: m.spec.Host, workload: w, role: m.Role}
	if m.cfg.StatsInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.statsLoop(watchCtx, handle)
		}()
	}

	var (
		healthC <-chan healthResult
		hs      healthState
	)
	if checker, ok := m.healthChecker(handle); ok {
		results := make(chan healthResult)
		healthC = results
		wg.Add(1)
		go func() {
			defer wg.Done()
			checker.loop(watchCtx, m.cfg.StartupCheckInterval, m.refreshHealth, results)
		}()
		grace := time.NewTimer(checker.health.GraceOrDefault())
		defer grace.Stop()
		hs.graceC = grace.C
		hs.grace = checker.health.GraceOrDefault()
		hs.limit = checker.health.ConsecutiveFailuresOrDefault()
	} else {
		m.report(mesos.TASK_RUNNING, "", nil, nil)
	}

	for {
		select {
		case <-w.Done():
			m.reportExit(w, "")
			return
		case <-m.killC:
			m.stop(ctx, w)
			m.reportExit(w, "killed")
			return
		case r := <-healthC:
			// A check that failed because the task is gone is no
			// verdict on its health: its exit is what to report.
			if r.err != nil && m.awaitExit(ctx, w, r.err) {
				m.reportExited(ctx, w)
				return
			}
			if msg := m.onHealth(r, &hs); msg != "" {
				unhealthy := false
				m.failUnhealthy(ctx, w, msg, &unhealthy)
				return
			}
		case <-hs.graceC:
			if m.awaitExit(ctx, w, hs.lastErr) {
				m.reportExited(ctx, w)
				return
			}
			msg := fmt.Sprintf("health check never passed within its %v grace period", hs.grace)
			if hs.lastErr != nil {
				msg += ": " + hs.lastErr.Error()
			}
			m.failUnhealthy(ctx, w, msg, nil)
			return
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), killWait)
			_ = w.Stop(stopCtx, 0)
			cancel()
			return
		}
	}
}

// exitNoticeWait bounds the wait for the runtime to report the exit of a
// workload that a health check found not running. The engine knows of the
// exit before the runtime's exit watcher is told; under load that may take
// a while, and a dead task must be reported with its exit (code, OOM kill),
// not as unhealthy.
const exitNoticeWait = 15 * time.Second

// awaitExit reports whether the workload has exited: at once if its
// runtime has seen the exit, and, when err (a failed health check) says it
// is not running, once the runtime sees it, within exitNoticeWait. A Kill
// or ctx ending meanwhile returns false, for Run's loop to handle.
func (m *TaskMon) awaitExit(ctx context.Context, w Workload, err error) bool {
	select {
	case <-w.Exited():
		return true
	default:
	}
	if !errors.Is(err, errNotRunning) {
		return false
	}
	glog.V(1).Infof("task %s: a health check found it not running; waiting for its exit", m.taskID)
	t := time.NewTimer(exitNoticeWait)
	defer t.Stop()
	select {
	case <-w.Exited():
		return true
	case <-t.C:
		glog.Warningf("task %s: found not running, but its runtime reported no exit within %v; counting a failed health check", m.taskID, exitNoticeWait)
	case <-m.killC:
	case <-ctx.Done():
	}
	return false
}

// reportExited reports the end of a workload that has exited (Exited is
// closed) once its runtime is done with it; ctx ending first stops
// without a report, as in Run.
func (m *TaskMon) reportExited(ctx context.Context, w Workload) {
	select {
	case <-w.Done():
		m.reportExit(w, "")
	case <-ctx.Done():
	}
}

// healthState is what Run keeps between health check results.
type healthState struct {
	// graceC fires when the grace period is over; nil once healthy.
	graceC <-chan time.Time
	grace  time.Duration
	// limit is how many failures in a row kill a RUNNING task; 0: never.
	limit int
	// failures counts the failures in a row since the task was last
	// healthy, once it has been RUNNING.
	failures int
	lastErr  error
}

// onHealth turns one health check result into status updates: the first
// success makes the task RUNNING (and ends the grace period); later, every
// change of health is reported. It returns why the task must be killed
// (hs.limit failures in a row), or "".
func (m *TaskMon) onHealth(r healthResult, hs *healthState) string {
	m.mu.Lock()
	was := m.healthy
	m.mu.Unlock()
	healthy := r.err == nil
	if !healthy {
		hs.lastErr = r.err
		glog.V(2).Infof("task %s: health check failed: %v", m.taskID, r.err)
	}
	switch {
	case was == nil && !healthy:
		return "" // still starting; the grace timer decides
	case was == nil:
		hs.graceC = nil
		glog.Infof("task %s: healthy, now RUNNING", m.taskID)
	case healthy:
		hs.failures = 0
		if *was {
			return ""
		}
		glog.Infof("task %s: healthy again", m.taskID)
	default:
		hs.failures++
		if hs.limit > 0 && hs.failures >= hs.limit {
			return fmt.Sprintf("health check failed %d consecutive times; last error: %v", hs.failures, r.err)
		}
		if !*was {
			return ""
		}
		glog.Infof("task %s: unhealthy: %v", m.taskID, r.err)
	}
	msg := "health check passed"
	if !healthy {
		msg = "health check failed: " + r.err.Error()
	}
	reason := mesos.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
	m.report(mesos.TASK_RUNNING, msg, &healthy, nil, withReason(reason))
	return ""
}

// failUnhealthy kills a task for its health and reports TASK_FAILED with
// msg, so that the scheduler replaces it.
func (m *TaskMon) failUnhealthy(ctx context.Context, w Workload, msg string, healthy *bool) {
	// A workload that exited meanwhile is reported with its exit.
	if m.awaitExit(ctx, w, nil) {
		m.reportExited(ctx, w)
		return
	}
	glog.Infof("task %s: %s; killing it", m.taskID, msg)
	m.mu.Lock()
	m.killing = true // an exit from here on is our doing
	m.mu.Unlock()
	m.stop(ctx, w)
	code := w.Exit().Code
	m.report(mesos.TASK_FAILED, msg, healthy, &code)
}

// healthChecker returns the task's health checker: the spec's check and
// the workload's hook, either of which may be missing; false when both
// are, and the task is RUNNING once started.
func (m *TaskMon) healthChecker(task TaskHandle) (healthChecker, bool) {
	c := healthChecker{workload: task.workload, host: m.spec.Host, ports: m.data.Ports}
	if h := m.data.Health; h != nil {
		c.health, c.spec = *h, true
	}
	if m.hooks.health != nil {
		c.hook = &hookRunner{hook: m.hooks.health, task: task, busy: make(chan struct{}, 1)}
	}
	return c, c.spec || c.hook != nil
}

func (m *TaskMon) start(ctx context.Context) (Workload, error) {
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	if m.killing {
		m.mu.Unlock()
		return nil, errors.New("killed")
	}
	m.cancelStart = cancel
	m.mu.Unlock()

	rt, err := m.resolve(startCtx, m.data)
	if err != nil {
		return nil, err
	}
	if err := m.initVolume(startCtx); err != nil {
		return nil, err
	}
	glog.Infof("task %s: starting with the %s runtime", m.taskID, rt.Name())
	w, err := rt.Start(startCtx, m.spec)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelStart = nil
	m.runtimeName = rt.Name()
	if err != nil {
		return nil, err
	}
	m.workload = w
	if m.killing {
		// The kill came while starting: the loop stops it at once.
		glog.V(1).Infof("task %s: kill requested during start", m.taskID)
	}
	return w, nil
}

// initVolume runs the workload's volume hook on a volume that was never
// initialised, and marks it once the hook has succeeded.
func (m *TaskMon) initVolume(ctx context.Context) error {
	if m.hooks.initVolume == nil || m.data.Volume == nil {
		return nil
	}
	dir := m.data.Volume.HostPath
	marker := filepath.Join(dir, volumeMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("volume %s: %w", dir, err)
	}
	glog.Infof("task %s: initialising its fresh volume %s", m.taskID, dir)
	start := time.Now()
	task := TaskHandle{ID: m.taskID, Data: m.data, Host: m.spec.Host, role: m.Role}
	if err := callVolumeHook(ctx, m.hooks.initVolume, task, dir); err != nil {
		return fmt.Errorf("initialising the volume: %w", err)
	}
	if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640); err != nil {
		return fmt.Errorf("volume %s: marking it initialised: %w", dir, err)
	}
	glog.Infof("task %s: volume initialised in %v", m.taskID, time.Since(start).Round(time.Millisecond))
	return nil
}

// callVolumeHook runs the hook; a panic becomes an error.
func callVolumeHook(ctx context.Context, hook VolumeInitHook, task TaskHandle, dir string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			glog.Errorf("task %s: the workload's volume initialisation panicked: %v\n%s", task.ID, r, debug.Stack())
			err = fmt.Errorf("panicked: %v", r)
		}
	}()
	return hook(ctx, task, dir)
}

func (m *TaskMon) isKilling() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.killing
}

// stop stops the workload with the kill grace; a second, shorter Kill
// cancels the grace.
func (m *TaskMon) stop(ctx context.Context, w Workload) {
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	m.cancelStop = cancel
	grace := m.killGrace
	m.mu.Unlock()
	glog.Infof("task %s: stopping (grace %v)", m.taskID, grace)
	if err := w.Stop(stopCtx, grace); err != nil {
		glog.Warningf("task %s: stop: %v", m.taskID, err)
	}
}

// reportExit sends the terminal update for an ended workload.
func (m *TaskMon) reportExit(w Workload, why string) {
	select {
	case <-w.Done():
	case <-time.After(killWait):
		// Stop failed to end it; report it gone anyway, as it is ours no
		// more, and say so.
		m.report(mesos.TASK_FAILED, "the task did not exit after being killed", nil, nil)
		return
	}
	exit := w.Exit()
	code := exit.Code
	if m.isKilling() {
		m.report(mesos.TASK_KILLED, fmt.Sprintf("%s: %s", firstNonEmpty(why, "killed"), exit), nil, &code)
		return
	}
	if exit.Err == nil && exit.Code == 0 {
		m.report(mesos.TASK_FINISHED, exit.String(), nil, &code)
		return
	}
	msg := exit.String()
	if tail := w.StderrTail(); tail != "" {
		msg += "; last stderr lines:\n" + tail
	}
	m.report(mesos.TASK_FAILED, msg, nil, &code)
}

type statusOpt func(*mesos.TaskStatus)

func withReason(r mesos.TaskStatus_Reason) statusOpt {
	return func(s *mesos.TaskStatus) { s.Reason = &r }
}

// report records the new state and hands the update to the executor.
func (m *TaskMon) report(state mesos.TaskState, msg string, healthy *bool, exitCode *int, opts ...statusOpt) {
	m.mu.Lock()
	m.state = state
	if healthy != nil {
		h := *healthy
		m.healthy = &h
	}
	data := protocol.StatusData{Runtime: m.runtimeName, ExitCode: exitCode, Host: m.spec.Host}
	w := m.workload
	m.mu.Unlock()
	if exitCode != nil && state == mesos.TASK_FAILED && w != nil {
		data.StderrTail = w.StderrTail()
	}
	status := mesos.TaskStatus{
		TaskID:  mesos.TaskID{Value: m.taskID},
		State:   state.Enum(),
		Healthy: healthy,
	}
	if msg != "" {
		status.Message = &msg
	}
	if b, err := protocol.EncodeStatusData(data); err == nil {
		status.Data = b
	}
	for _, o := range opts {
		o(&status)
	}
	glog.V(1).Infof("task %s: %s %s", m.taskID, state, msg)
	m.rep.Update(status)
}

func (m *TaskMon) statsLoop(ctx context.Context, task TaskHandle) {
	t := time.NewTicker(m.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.refreshStats:
		}
		m.rep.Message(m.collectStats(ctx, task))
	}
}

func (m *TaskMon) collectStats(ctx context.Context, task TaskHandle) *protocol.Stats {
	m.mu.Lock()
	s := &protocol.Stats{
		TaskID:     m.taskID,
		ExecutorID: m.executorID,
		Time:       time.Now().UTC(),
		State:      m.state.String(),
		Healthy:    m.healthy,
		Role:       m.role,
	}
	m.mu.Unlock()
	// A slow source must not hold stats back for long; Docker takes about
	// a second for one sample, so short intervals still get their figures.
	ctx, cancel := context.WithTimeout(ctx, max(m.cfg.StatsInterval, statsTimeout))
	defer cancel()
	var errs []string
	if u, err := task.workload.Usage(ctx); err != nil {
		errs = append(errs, "usage: "+err.Error())
	} else {
		s.CPUSeconds, s.MemBytes = u.CPUSeconds, u.MemBytes
	}
	if m.hooks.stats != nil {
		figures, err := m.hooks.stats.WorkloadStats(ctx, task)
		if err != nil {
			errs = append(errs, "workload stats: "+err.Error())
		}
		if len(figures) > 0 {
			s.Workload = figures
		}
	}
	s.Error = strings.Join(errs, "; ")
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// firstStartupCheck is the wait after a task's first failed health check;
// it doubles up to monitorConfig.StartupCheckInterval until one passes.
const firstStartupCheck = 50 * time.Millisecond

// healthResult is one health check's outcome; err nil means healthy.
type healthResult struct{ err error }

// healthChecker runs a task's health checks: the spec's (when spec is
// set; health then holds it, else only its defaults are used) and then the
// workload's hook (when there is one).
type healthChecker struct {
	health   protocol.Health
	spec     bool
	hook     *hookRunner
	workload Workload
	host     string
	ports    map[string]uint32
}

// loop checks at once, then at the health interval (until the first
// success at firstStartupCheck doubling up to startupInterval; at once when
// refresh fires) and sends every result
// until ctx ends.
func (c healthChecker) loop(ctx context.Context, startupInterval time.Duration, refresh <-chan struct{}, out chan<- healthResult) {
	interval := c.health.IntervalOrDefault()
	passed := false
	// Until the first success the checks come quickly (most processes
	// listen within a fraction of a second), backing off to
	// startupInterval so a slow starter is not checked needlessly often.
	startupWait := min(firstStartupCheck, startupInterval)
	for {
		err := c.check(ctx)
		if ctx.Err() != nil {
			return
		}
		passed = passed || err == nil
		select {
		case out <- healthResult{err: err}:
		case <-ctx.Done():
			return
		}
		wait := interval
		if !passed {
			wait = min(wait, startupWait)
			startupWait = min(2*startupWait, startupInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-refresh:
			t.Stop()
		}
	}
}

// check runs one round; a failure of a workload that is no longer alive
// is marked errNotRunning, so that the TaskMon reports its exit rather
// than a failed health check.
func (c healthChecker) check(ctx context.Context) error {
	err := c.checkOnce(ctx)
	if err == nil || errors.Is(err, errNotRunning) || ctx.Err() != nil {
		return err
	}
	aliveCtx, cancel := context.WithTimeout(ctx, c.health.TimeoutOrDefault())
	defer cancel()
	if !c.workload.Alive(aliveCtx) {
		return fmt.Errorf("%w: %w", errNotRunning, err)
	}
	return err
}

// checkOnce runs the spec's check, then, if it passed, the hook, so that a
// hook may count on what the spec checks (e.g. an open port).
func (c healthChecker) checkOnce(ctx context.Context) error {
	if c.spec {
		if err := c.checkSpec(ctx); err != nil {
			return err
		}
	}
	if c.hook != nil {
		return c.hook.check(ctx, c.health.TimeoutOrDefault())
	}
	return nil
}

func (c healthChecker) checkSpec(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.health.TimeoutOrDefault())
	defer cancel()
	if c.health.TCPPort != "" {
		port := c.ports[c.health.TCPPort]
		addr := net.JoinHostPort(c.host, strconv.FormatUint(uint64(port), 10))
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp connect to %s: %w", addr, err)
		}
		conn.Close()
		// A connect proves that something listens, not that it is this
		// task: ask the workload whose the listener is, where it can tell.
		if lc, ok := c.workload.(listenerChecker); ok {
			if err := lc.checkListener(ctx, c.host, port); err != nil {
				return fmt.Errorf("tcp %s: %w", addr, err)
			}
		}
		return nil
	}
	argv := c.health.Args
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-c", c.health.Command}
	}
	out, err := c.workload.Exec(ctx, argv)
	if err != nil {
		return fmt.Errorf("health command: %w", err)
	}
	if out.ExitCode != 0 {
		detail := strings.TrimSpace(firstNonEmpty(out.Stderr, out.Stdout))
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		if detail != "" {
			return fmt.Errorf("health command exited with status %d: %s", out.ExitCode, detail)
		}
		return fmt.Errorf("health command exited with status %d", out.ExitCode)
	}
	return nil
}

// hookRunner calls the workload's health hook for one task. The TaskMon
// does not wait for a call past its timeout: a hook that ignores its ctx
// fails the check instead of stalling the TaskMon (and with it the
// executor's shutdown). Such a call keeps its goroutine until it returns;
// busy keeps there from being more than one.
type hookRunner struct {
	hook HealthProvider
	task TaskHandle
	busy chan struct{} // holds a token while a call runs
}

func (h *hookRunner) check(ctx context.Context, timeout time.Duration) error {
	select {
	case h.busy <- struct{}{}:
	default:
		return errors.New("workload health check: its previous call has not returned yet")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	res := make(chan error, 1)
	go func() {
		defer func() { <-h.busy }()
		defer cancel()
		res <- h.call(ctx)
	}()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-res: // it did answer in time, or just now
		return err
	default:
	}
	if ctx.Err() == context.DeadlineExceeded {
		glog.Warningf("task %s: the workload health check took longer than its %v timeout; it counts as failed", h.task.ID, timeout)
	}
	return fmt.Errorf("workload health check: no answer within %v", timeout)
}

// call runs the hook once; a panic is logged and becomes an error.
func (h *hookRunner) call(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			glog.Errorf("task %s: the workload health check panicked: %v\n%s", h.task.ID, r, debug.Stack())
			err = fmt.Errorf("workload health check panicked: %v", r)
		}
	}()
	if err := h.hook.WorkloadHealth(ctx, h.task); err != nil {
		return fmt.Errorf("workload health check: %w", err)
	}
	return nil
}
