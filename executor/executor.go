// Package executor is the stateful toolkit's custom Mesos executor. It
// speaks the v1 executor HTTP API (mesos-go's httpexec, protobuf codec),
// runs each task with a Runtime (a plain process, or a Docker container)
// and watches it with a TaskMon: exit, health, stats. It takes commands
// from the scheduler as framework messages (package protocol), such as
// running a command inside a task.
//
// A framework binary is its own executor: when the agent starts it with an
// "executor" argument, or with MESOS_EXECUTOR_ID set, it calls Run.
package executor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/executor/calls"
	"github.com/mesos/mesos-go/api/v1/lib/executor/config"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpexec"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// Defaults.
const (
	DefaultStatsInterval = 10 * time.Second
	DefaultAckWait       = 2 * time.Second
	// DefaultKillGrace is Mesos' default kill policy grace period.
	DefaultKillGrace = 3 * time.Second

	apiPath = "/api/v1/executor"
	// callTimeout bounds a non-streaming call to the agent.
	callTimeout = 10 * time.Second
	// firstBackoff is the first wait before re-subscribing.
	firstBackoff = 250 * time.Millisecond
	// registrationWindow is how long a never-subscribed executor keeps
	// trying without checkpointing (the agent's registration timeout).
	registrationWindow = time.Minute
	// shutdownMargin is kept free of the shutdown grace period, so that
	// we exit before the agent kills us.
	shutdownMargin = 500 * time.Millisecond
	// sweepTimeout bounds the last sweep for containers of ours (a list
	// call when, as it should be, there is none).
	sweepTimeout = 3 * time.Second
)

// Options configure Run. The zero value works.
type Options struct {
	// Runtime is used for tasks whose data does not choose one: "auto"
	// (the default: docker when an engine answers and the task names an
	// image, otherwise process), "docker" or "process".
	Runtime string
	// Stats adds workload figures to every stats message; may be nil.
	Stats StatsProvider
	// Health is the workload's own health check, run with each task's
	// spec check (or alone when the spec has none) on every health
	// interval; a task is healthy only when both pass (see
	// HealthProvider). May be nil.
	Health HealthProvider
	// InitVolume prepares a fresh volume before a task's process first
	// starts on it (see VolumeInitHook); may be nil.
	InitVolume VolumeInitHook
	// StatsInterval is how often each task's stats are sent; 0 means
	// DefaultStatsInterval, negative disables stats.
	StatsInterval time.Duration
	// AckWait bounds the wait for the agent to acknowledge the last
	// updates before exiting; 0 means DefaultAckWait.
	AckWait time.Duration
	// LogVerbosity, when positive, sets glog's -v (process-wide).
	LogVerbosity int
	// Docker is the docker runtime; nil means connect to the engine named
	// by the environment (DOCKER_HOST) when a task needs it.
	Docker Runtime
	// Config replaces the Mesos environment; nil means config.FromEnv().
	Config *config.Config
}

// Run is the executor's main loop: it subscribes to the agent named by the
// Mesos environment, runs the tasks it is given and returns when it is
// done: after SHUTDOWN, once its last task has ended and its updates are
// acknowledged, or when the agent is gone for good (an error). Cancelling
// ctx stops every task and returns ctx's error.
func Run(ctx context.Context, opts Options) error {
	if opts.LogVerbosity > 0 {
		if f := flag.Lookup("v"); f != nil {
			_ = f.Value.Set(strconv.Itoa(opts.LogVerbosity))
		}
	}
	// Tasks inherit the executor's umask: what they write (a database's
	// files, logs) is not readable by other users of the agent.
	syscall.Umask(taskUmask)
	var cfg config.Config
	if opts.Config != nil {
		cfg = *opts.Config
	} else {
		var err error
		if cfg, err = config.FromEnv(); err != nil {
			return fmt.Errorf("executor: reading the Mesos environment: %w", err)
		}
	}
	e, err := newRunner(cfg, opts)
	if err != nil {
		return err
	}
	return e.run(ctx)
}

// IsExecutorInvocation tells a framework binary whether it was started as
// an executor: with "executor" as its first argument, or by an agent
// (MESOS_EXECUTOR_ID is set).
func IsExecutorInvocation(args []string) bool {
	if len(args) > 1 && args[1] == "executor" {
		return true
	}
	return os.Getenv("MESOS_EXECUTOR_ID") != ""
}

// runner is one run of the executor. Its event handlers run on the
// subscription goroutine; TaskMons and message handlers run on their own
// and report through Update and Message.
type runner struct {
	cfg  config.Config
	opts Options
	host string

	cli calls.Sender // UPDATE and MESSAGE calls
	sub calls.Sender // SUBSCRIBE, on a connection of its own

	out     *outbox
	process Runtime
	docker  *dockerProbe
	stdout  *os.File
	stderr  *os.File

	// monCtx is the TaskMons' context: cancelled only at the very end, as
	// the hard stop; graceful stops go through TaskMon.Kill.
	monCtx    context.Context
	cancelMon context.CancelFunc
	wg        sync.WaitGroup // TaskMons and message handlers

	quit     chan struct{}
	quitOnce sync.Once
	quitErr  error

	mu           sync.Mutex
	tasks        map[string]*TaskMon
	unackedTasks map[string]mesos.TaskInfo
	launched     int
	exiting      bool
	shuttingDown bool
}

func newRunner(cfg config.Config, opts Options) (*runner, error) {
	if opts.StatsInterval == 0 {
		opts.StatsInterval = DefaultStatsInterval
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	switch opts.Runtime {
	case "":
		opts.Runtime = protocol.RuntimeAuto
	case protocol.RuntimeAuto, protocol.RuntimeDocker, protocol.RuntimeProcess:
	default:
		return nil, fmt.Errorf("executor: runtime %q: must be auto, docker or process", opts.Runtime)
	}
	if cfg.AgentEndpoint == "" || cfg.FrameworkID == "" || cfg.ExecutorID == "" {
		return nil, errors.New("executor: agent endpoint, framework ID and executor ID are required")
	}
	host, _, err := net.SplitHostPort(cfg.AgentEndpoint)
	if err != nil {
		return nil, fmt.Errorf("executor: agent endpoint %q: %w", cfg.AgentEndpoint, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	sandbox := cfg.Sandbox
	if sandbox == "" {
		sandbox = cfg.Directory
	}
	cfg.Sandbox = sandbox

	endpoint := url.URL{Scheme: "http", Host: cfg.AgentEndpoint, Path: apiPath}
	client := httpcli.New(
		httpcli.Endpoint(endpoint.String()),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
	)
	callOpts := executor.CallOptions{calls.Framework(cfg.FrameworkID), calls.Executor(cfg.ExecutorID)}
	e := &runner{
		cfg:          cfg,
		opts:         opts,
		host:         host,
		cli:          calls.SenderWith(httpexec.NewSender(client.Send), callOpts...),
		sub:          calls.SenderWith(httpexec.NewSender(client.Send, httpcli.Close(true)), callOpts...),
		out:          newOutbox(time.Second),
		process:      ProcessRuntime{},
		docker:       newDockerProbe(opts.Docker),
		quit:         make(chan struct{}),
		tasks:        map[string]*TaskMon{},
		unackedTasks: map[string]mesos.TaskInfo{},
	}
	// Task output goes where Mesos users look for it: the sandbox's
	// stdout and stderr files.
	if e.stdout, err = openAppend(filepath.Join(sandbox, "stdout")); err != nil {
		return nil, err
	}
	if e.stderr, err = openAppend(filepath.Join(sandbox, "stderr")); err != nil {
		e.stdout.Close()
		return nil, err
	}
	return e, nil
}

// taskUmask is the umask of the executor and its tasks: files 0640,
// directories 0750 at most.
const taskUmask = 0o027

func openAppend(path string) (*os.File, error) {
	// Task output may echo secrets from its environment: owner and group
	// only.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("executor: sandbox output: %w", err)
	}
	return f, nil
}

func (e *runner) run(ctx context.Context) error {
	defer e.stdout.Close()
	defer e.stderr.Close()
	glog.Infof("executor %s of framework %s starting; agent %s, sandbox %s, checkpoint %v",
		e.cfg.ExecutorID, e.cfg.FrameworkID, e.cfg.AgentEndpoint, e.cfg.Sandbox, e.cfg.Checkpoint)

	e.monCtx, e.cancelMon = context.WithCancel(context.Background())
	defer e.cancelMon()

	// The outbox sender lives until everything else has stopped, so that
	// the last updates still go out.
	sendCtx, stopSending := context.WithCancel(context.Background())
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		e.out.run(sendCtx, e.postUpdate)
	}()
	defer func() {
		stopSending()
		sender.Wait()
	}()

	if e.opts.Runtime != protocol.RuntimeProcess {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.docker.cleanup(e.monCtx, e.cfg.FrameworkID)
		}()
	}

	// A cancelled ctx is a graceful stop, like SHUTDOWN.
	stopWatch := context.AfterFunc(ctx, func() {
		glog.Infof("executor: stopping: %v", context.Cause(ctx))
		e.shutdown(ctx.Err())
	})
	defer stopWatch()

	e.subscriptionLoop(ctx)
	// Whatever ended the loop, nothing of ours may outlive Run, and no
	// late shutdown may start new work.
	e.mu.Lock()
	e.shuttingDown = true
	e.mu.Unlock()
	e.stopAll(0)
	e.cancelMon()
	e.wg.Wait()
	sweepCtx, cancelSweep := context.WithTimeout(context.Background(), sweepTimeout)
	e.docker.removeOwn(sweepCtx, e.cfg.FrameworkID)
	cancelSweep()
	err := e.quitErr
	if err != nil {
		glog.Errorf("executor %s: exiting: %v", e.cfg.ExecutorID, err)
	} else {
		glog.Infof("executor %s: exiting", e.cfg.ExecutorID)
	}
	return err
}

// subscriptionLoop subscribes, handles events, and re-subscribes with
// backoff when the agent goes away, until the executor quits.
func (e *runner) subscriptionLoop(ctx context.Context) {
	var (
		everSubscribed bool
		lostAt         = time.Now()
		backoff        = firstBackoff
		maxBackoff     = e.cfg.SubscriptionBackoffMax
	)
	if maxBackoff <= 0 {
		maxBackoff = 2 * time.Second
	}
	for {
		subscribed, err := e.subscribeOnce()
		select {
		case <-e.quit:
			return
		default:
		}
		if subscribed {
			everSubscribed, lostAt, backoff = true, time.Now(), firstBackoff
		}
		glog.Warningf("executor: disconnected from agent %s: %v", e.cfg.AgentEndpoint, err)
		window := e.cfg.RecoveryTimeout
		switch {
		case everSubscribed && !e.cfg.Checkpoint:
			e.abort(errors.New("lost the agent and the framework does not checkpoint"))
			return
		case !e.cfg.Checkpoint:
			window = registrationWindow
		}
		if time.Since(lostAt) > window {
			e.abort(fmt.Errorf("could not reach the agent for %v", window))
			return
		}
		t := time.NewTimer(min(backoff, maxBackoff))
		select {
		case <-e.quit:
			t.Stop()
			return
		case <-ctx.Done():
			t.Stop()
			// shutdown is under way (AfterFunc); wait for it.
			<-e.quit
			return
		case <-t.C:
		}
		backoff *= 2
	}
}

// subscribeOnce makes one SUBSCRIBE, replaying unacknowledged tasks and
// updates, and handles events until the stream ends or the executor quits.
func (e *runner) subscribeOnce() (subscribed bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.quit:
			cancel()
		case <-ctx.Done():
		}
	}()

	updates, uuids := e.out.unacknowledged()
	tasks := e.unacknowledgedTasks()
	if len(updates) > 0 || len(tasks) > 0 {
		glog.Infof("executor: subscribing with %d unacknowledged tasks and %d unacknowledged updates", len(tasks), len(updates))
	} else {
		glog.V(1).Infof("executor: subscribing to %s", e.cfg.AgentEndpoint)
	}
	resp, err := e.sub.Send(ctx, calls.NonStreaming(calls.Subscribe(tasks, updates)))
	if resp != nil {
		defer resp.Close()
	}
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	defer e.out.disconnected()
	for {
		var ev executor.Event
		if err := resp.Decode(&ev); err != nil {
			return subscribed, err
		}
		if ev.Type == executor.Event_SUBSCRIBED {
			subscribed = true
			e.out.subscribed(uuids)
		}
		e.handle(&ev)
	}
}

// handle dispatches one event. It never blocks for long: anything slow
// runs on a TaskMon or message goroutine.
func (e *runner) handle(ev *executor.Event) {
	switch ev.Type {
	case executor.Event_SUBSCRIBED:
		s := ev.GetSubscribed()
		glog.Infof("executor: subscribed to agent %s (%s)", s.AgentInfo.GetID().GetValue(), s.AgentInfo.GetHostname())
	case executor.Event_LAUNCH:
		e.launch(ev.GetLaunch().Task)
	case executor.Event_LAUNCH_GROUP:
		for _, t := range ev.GetLaunchGroup().TaskGroup.Tasks {
			e.rejectTask(t, "task groups (LAUNCH_GROUP) are not supported by the stateful executor")
		}
	case executor.Event_KILL:
		k := ev.GetKill()
		e.kill(k.TaskID.Value, k.KillPolicy)
	case executor.Event_ACKNOWLEDGED:
		a := ev.GetAcknowledged()
		e.mu.Lock()
		delete(e.unackedTasks, a.TaskID.Value)
		e.mu.Unlock()
		if !e.out.ack(a.UUID) {
			glog.V(1).Infof("executor: ACKNOWLEDGED for an update we do not hold (task %s)", a.TaskID.Value)
		}
	case executor.Event_MESSAGE:
		data := ev.GetMessage().Data
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.handleMessage(e.monCtx, data)
		}()
	case executor.Event_SHUTDOWN:
		glog.Infof("executor: SHUTDOWN from the agent")
		e.shutdown(nil)
	case executor.Event_ERROR:
		glog.Errorf("executor: ERROR from the agent: %s", ev.GetError().Message)
	case executor.Event_HEARTBEAT:
		glog.V(2).Infof("executor: heartbeat")
	default:
		glog.Warningf("executor: ignoring unknown event type %d", ev.Type)
	}
}

func (e *runner) unacknowledgedTasks() []mesos.TaskInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.unackedTasks) == 0 {
		return nil
	}
	out := make([]mesos.TaskInfo, 0, len(e.unackedTasks))
	for _, t := range e.unackedTasks {
		out = append(out, t)
	}
	return out
}

func (e *runner) launch(task mesos.TaskInfo) {
	id := task.TaskID.Value
	e.mu.Lock()
	if _, dup := e.tasks[id]; dup {
		e.mu.Unlock()
		glog.Warningf("executor: ignoring a second LAUNCH of running task %s", id)
		return
	}
	if e.shuttingDown {
		e.mu.Unlock()
		e.rejectTask(task, "the executor is shutting down")
		return
	}
	e.mu.Unlock()

	data, err := protocol.DecodeTaskData(task.Data)
	if err != nil {
		e.rejectTask(task, "invalid task data: "+err.Error())
		return
	}
	spec := StartSpec{
		TaskID:      id,
		ExecutorID:  e.cfg.ExecutorID,
		FrameworkID: e.cfg.FrameworkID,
		Data:        data,
		Sandbox:     e.cfg.Sandbox,
		Host:        e.host,
		Stdout:      e.stdout,
		Stderr:      e.stderr,
	}
	mon := newTaskMon(spec, policyGrace(task), e.resolveRuntime, e, taskHooks{stats: e.opts.Stats, health: e.opts.Health, initVolume: e.opts.InitVolume}, monitorConfig{StatsInterval: e.opts.StatsInterval})

	e.mu.Lock()
	e.tasks[id] = mon
	e.unackedTasks[id] = task
	e.launched++
	e.exiting = false
	e.mu.Unlock()

	glog.Infof("executor: launching task %s (instance %q ordinal %d, role %q)", id, data.Instance, data.Ordinal, data.Role)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		mon.Run(e.monCtx)
	}()
}

// rejectTask fails a task that will not run. It still counts as launched,
// so an executor whose only task was rejected exits.
func (e *runner) rejectTask(task mesos.TaskInfo, why string) {
	glog.Warningf("executor: task %s: %s", task.TaskID.Value, why)
	e.mu.Lock()
	e.unackedTasks[task.TaskID.Value] = task
	e.launched++
	e.mu.Unlock()
	e.Update(mesos.TaskStatus{TaskID: task.TaskID, State: mesos.TASK_FAILED.Enum(), Message: &why})
}

// policyGrace is the grace period of a task's kill policy, or Mesos'
// default.
func policyGrace(task mesos.TaskInfo) time.Duration {
	if p := task.KillPolicy; p != nil && p.GracePeriod != nil && p.GracePeriod.Nanoseconds >= 0 {
		return time.Duration(p.GracePeriod.Nanoseconds)
	}
	return DefaultKillGrace
}

func (e *runner) kill(id string, policy *mesos.KillPolicy) {
	e.mu.Lock()
	mon := e.tasks[id]
	e.mu.Unlock()
	if mon == nil {
		// Already ended: its terminal update is on its way.
		glog.Infof("executor: KILL for task %s, which is not running", id)
		return
	}
	grace := mon.policyGrace
	if policy != nil && policy.GracePeriod != nil && policy.GracePeriod.Nanoseconds >= 0 {
		grace = time.Duration(policy.GracePeriod.Nanoseconds)
	}
	glog.Infof("executor: KILL task %s (grace %v)", id, grace)
	mon.Kill(grace)
}

// Update implements reporter: it completes a TaskMon's status update and
// queues it for the agent. A terminal update ends the task's tracking and
// may let the executor exit.
func (e *runner) Update(status mesos.TaskStatus) {
	status.Source = mesos.SOURCE_EXECUTOR.Enum()
	status.ExecutorID = &mesos.ExecutorID{Value: e.cfg.ExecutorID}
	status.UUID = newUUID()
	e.out.add(executor.Call_Update{Status: status})

	if !isTerminal(status.GetState()) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.tasks, status.TaskID.Value)
	if len(e.tasks) == 0 && e.launched > 0 && !e.exiting && !e.shuttingDown {
		e.exiting = true
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.exitWhenAcknowledged()
		}()
	}
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// exitWhenAcknowledged waits (bounded) for the agent to acknowledge the
// last updates, then quits unless a new task arrived meanwhile.
func (e *runner) exitWhenAcknowledged() {
	ctx, cancel := context.WithTimeout(e.monCtx, e.opts.AckWait)
	acked := e.out.waitEmpty(ctx)
	cancel()
	e.mu.Lock()
	if len(e.tasks) > 0 || !e.exiting {
		e.exiting = false
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	if !acked {
		glog.Warningf("executor: %d updates still unacknowledged after %v; exiting anyway", e.out.len(), e.opts.AckWait)
	}
	glog.Infof("executor: no task left; exiting")
	e.quitWith(nil)
}

// shutdown kills every task (TASK_KILLED each), waits for their updates
// to be acknowledged, and quits, all within the shutdown grace period.
// cause is what Run returns (nil for SHUTDOWN).
func (e *runner) shutdown(cause error) {
	e.mu.Lock()
	if e.shuttingDown {
		e.mu.Unlock()
		return
	}
	e.shuttingDown = true
	mons := make([]*TaskMon, 0, len(e.tasks))
	for _, m := range e.tasks {
		mons = append(mons, m)
	}
	e.mu.Unlock()

	taskGrace, ackWait := shutdownBudget(e.cfg.ExecutorShutdownGracePeriod, e.opts.AckWait)
	glog.Infof("executor: shutting down %d tasks (grace %v each)", len(mons), taskGrace)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for _, m := range mons {
			m.Kill(min(taskGrace, m.policyGrace))
		}
		for _, m := range mons {
			<-m.Done()
		}
		ctx, cancel := context.WithTimeout(context.Background(), ackWait)
		e.out.waitEmpty(ctx)
		cancel()
		e.quitWith(cause)
	}()
}

// shutdownBudget splits the agent's shutdown grace period: tasks get the
// larger part to stop gracefully, then there is time for a forced kill and
// for acknowledgements, and a margin so we exit before the agent kills us.
func shutdownBudget(period, ackWait time.Duration) (taskGrace, acks time.Duration) {
	if period <= 0 {
		period = 5 * time.Second
	}
	acks = min(ackWait, period/5)
	taskGrace = period - acks - shutdownMargin - period/5 // period/5 for SIGKILL and exit
	return max(taskGrace, 0), acks
}

// abort stops every task at once and quits with err: the agent is gone.
func (e *runner) abort(err error) {
	e.mu.Lock()
	e.shuttingDown = true
	e.mu.Unlock()
	e.stopAll(0)
	e.quitWith(err)
}

// stopAll kills every task with the given grace and waits for them.
func (e *runner) stopAll(grace time.Duration) {
	e.mu.Lock()
	mons := make([]*TaskMon, 0, len(e.tasks))
	for _, m := range e.tasks {
		mons = append(mons, m)
	}
	e.mu.Unlock()
	for _, m := range mons {
		m.Kill(grace)
	}
	for _, m := range mons {
		<-m.Done()
	}
}

func (e *runner) quitWith(err error) {
	e.quitOnce.Do(func() {
		e.quitErr = err
		close(e.quit)
	})
}

func (e *runner) postUpdate(ctx context.Context, u executor.Call_Update) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := e.cli.Send(ctx, calls.NonStreaming(calls.Update(u.Status)))
	if resp != nil {
		resp.Close()
	}
	return err
}

// Message implements reporter: it sends m to the scheduler, best effort.
func (e *runner) Message(m protocol.Message) {
	b, err := protocol.EncodeMessage(m)
	if err != nil {
		glog.Errorf("executor: encoding %s message: %v", m.MessageType(), err)
		return
	}
	ctx, cancel := context.WithTimeout(e.monCtx, callTimeout)
	defer cancel()
	resp, err := e.cli.Send(ctx, calls.NonStreaming(calls.Message(b)))
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		glog.V(1).Infof("executor: sending %s message: %v", m.MessageType(), err)
		return
	}
	glog.V(2).Infof("executor: sent %s message (%d bytes)", m.MessageType(), len(b))
}

// handleMessage acts on a framework message from the scheduler. It answers
// an exec with an exec_result, and anything it cannot act on with an
// error; a set_role is not answered (the next stats report shows it).
func (e *runner) handleMessage(ctx context.Context, data []byte) {
	m, err := protocol.DecodeMessage(data)
	if err != nil {
		glog.Warningf("executor: bad framework message: %v", err)
		e.Message(&protocol.ErrorReply{ID: protocol.MessageID(data), Error: err.Error()})
		return
	}
	if sr, ok := m.(*protocol.SetRole); ok {
		e.mu.Lock()
		mon := e.tasks[sr.TaskID]
		e.mu.Unlock()
		if mon == nil {
			glog.V(1).Infof("executor: role %s for task %s, which is not running here", sr.Role, sr.TaskID)
			return
		}
		mon.SetRole(sr.Role)
		return
	}
	ex, ok := m.(*protocol.Exec)
	if !ok {
		e.Message(&protocol.ErrorReply{ID: protocol.MessageID(data), Error: fmt.Sprintf("the executor does not accept %q messages", m.MessageType())})
		return
	}
	res := &protocol.ExecResult{ID: ex.ID, TaskID: ex.TaskID, ExitCode: -1}
	e.mu.Lock()
	mon := e.tasks[ex.TaskID]
	e.mu.Unlock()
	if mon == nil {
		res.Error = fmt.Sprintf("task %q is not running on this executor", ex.TaskID)
		e.Message(res)
		return
	}
	glog.V(1).Infof("executor: exec %q in task %s (request %s)", ex.Cmd[0], ex.TaskID, ex.ID)
	ctx, cancel := context.WithTimeout(ctx, ex.Timeout())
	defer cancel()
	out, err := mon.Exec(ctx, ex.Cmd)
	res.ExitCode, res.Stdout, res.Stderr, res.Truncated = out.ExitCode, out.Stdout, out.Stderr, out.Truncated
	if err != nil {
		res.Error = err.Error()
	}
	e.Message(res)
}

// resolveRuntime picks the runtime for one task.
func (e *runner) resolveRuntime(ctx context.Context, d *protocol.TaskData) (Runtime, error) {
	choice := d.Runtime
	if choice == "" || choice == protocol.RuntimeAuto {
		choice = e.opts.Runtime
	}
	hasCmd := d.Command != "" || len(d.Args) > 0
	switch choice {
	case protocol.RuntimeProcess:
		if !hasCmd {
			return nil, fmt.Errorf("the process runtime needs a command, and the task only names image %q", d.Image)
		}
		return e.process, nil
	case protocol.RuntimeDocker:
		if d.Image == "" {
			return nil, errors.New("the docker runtime needs an image")
		}
		rt, err := e.docker.get(ctx)
		if err != nil {
			return nil, fmt.Errorf("image %q needs the docker runtime, which is unavailable: %w", d.Image, err)
		}
		return rt, nil
	}
	// auto
	if d.Image != "" {
		rt, err := e.docker.get(ctx)
		if err == nil {
			return rt, nil
		}
		if !hasCmd {
			return nil, fmt.Errorf("image %q needs Docker, which is unavailable: %w", d.Image, err)
		}
		glog.V(1).Infof("executor: docker unavailable (%v); running the command as a process", err)
	}
	return e.process, nil
}
