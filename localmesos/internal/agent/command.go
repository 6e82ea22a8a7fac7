package agent

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// The built-in command executor runs a command task, as Mesos'
// mesos-executor does (src/launcher/executor.cpp), without being a
// separate program: it is an actor of its own that speaks the executor API
// to its agent through the same entry point as HTTP executors (the agent's
// executorCall), so it subscribes, is acknowledged, survives an agent
// restart when checkpointing and re-subscribes with what was not
// acknowledged, exactly like any executor.
//
// Its "process" is the command's process group. It ends (reports its exit
// to the agent) once the agent acknowledged the task's terminal update.

const (
	// defaultKillGracePeriod: SIGTERM, then SIGKILL after this, unless the
	// task's or the KILL's kill_policy says otherwise.
	defaultKillGracePeriod = 3 * time.Second
	// shutdownReserve is what the executor keeps of the shutdown grace
	// period to report TASK_KILLED (MAX_REAP_INTERVAL + 1s in Mesos).
	shutdownReserve = 2 * time.Second
	// terminalAckTimeout: with no ACK of the terminal update, the
	// executor gives up and exits 1.
	terminalAckTimeout = time.Minute
)

type commandExecutor struct {
	a           *Agent
	c           *container
	frameworkID mesos.FrameworkID
	executorID  mesos.ExecutorID
	env         []string
	sandbox     string
	checkpoint  bool
	shutdown    time.Duration // the executor's shutdown grace period
	recovery    time.Duration
	backoffMax  time.Duration

	mb        *wire.Mailbox
	dead      atomic.Bool   // exited or killed; nothing more happens
	quit      chan struct{} // closed by close and detach
	closeOnce sync.Once
	waiters   sync.WaitGroup

	// Owned by mb.
	conn           *commandConn
	framework      *mesos.FrameworkInfo
	task           *mesos.TaskInfo
	taskAcked      bool
	unacked        []executor.Call_Update
	launched       bool
	killed         bool
	terminated     bool
	pgid           int
	killStart      time.Time
	killGrace      time.Duration
	escalation     *time.Timer
	terminalTimer  *time.Timer
	retryTimer     *time.Timer
	disconnectedAt time.Time
	backoff        time.Duration
}

func newCommandExecutor(a *Agent, c *container, fw *framework, ex *executorEntry, env []string, task mesos.TaskInfo) *commandExecutor {
	return &commandExecutor{
		a:           a,
		c:           c,
		frameworkID: fw.id(),
		executorID:  ex.id(),
		env:         env,
		sandbox:     c.sandbox,
		checkpoint:  fw.checkpoint(),
		shutdown:    a.shutdownGracePeriod(ex),
		recovery:    a.cfg.RecoveryTimeout,
		backoffMax:  a.cfg.SubscriptionBackoffMax,
		mb:          wire.NewMailbox(),
		quit:        make(chan struct{}),
	}
}

// commandConn is the executor's subscription: the agent's events become
// functions on the executor's mailbox.
type commandConn struct{ ce *commandExecutor }

func (k *commandConn) send(ev executor.Event) { k.ce.mb.Post(func() { k.ce.event(k, ev) }) }
func (k *commandConn) close()                 { k.ce.mb.Post(func() { k.ce.disconnected(k) }) }

// start subscribes; the container is ready.
func (ce *commandExecutor) start() { ce.mb.Post(ce.subscribe) }

// crash is a SIGKILL of the executor: it may be called from any goroutine.
func (ce *commandExecutor) crash() {
	if ce.dead.Swap(true) {
		return
	}
	glog.V(1).Infof("command executor '%s': killed", ce.executorID.Value)
	ce.killTask(syscall.SIGKILL)
	ce.c.report(ce.a, int32(syscall.SIGKILL), "")
}

// adopt makes the executor the one of a command that a previous agent
// process launched and that still runs as pid: it watches the pid instead
// of waiting for a child. state is the task's state as the agent
// checkpointed it; the updates the previous executor died before making
// (between starting the command and reporting it) are made now, and
// handed over in SUBSCRIBE. It runs before start.
func (ce *commandExecutor) adopt(task mesos.TaskInfo, state mesos.TaskState, pid int, start int64) {
	ce.task = &task
	ce.taskAcked = state != mesos.TASK_STAGING
	ce.launched = true
	ce.pgid = pid
	switch state {
	case mesos.TASK_STAGING:
		ce.update(task.TaskID, mesos.TASK_STARTING, "")
		fallthrough
	case mesos.TASK_STARTING:
		ce.update(task.TaskID, mesos.TASK_RUNNING, "")
	}
	ce.waiters.Add(1)
	go func() {
		defer ce.waiters.Done()
		waitGone(pid, start, ce.quit)
		ce.mb.Post(func() {
			if !ce.dead.Load() {
				// Not our child: how it ended is unknown.
				ce.reaped(-1)
			}
		})
	}()
}

// detach stops the executor's goroutines for good and leaves its command
// running, for the next agent process to adopt. A waiter for a command
// this process started stays until the command exits, only to reap it.
func (ce *commandExecutor) detach() {
	ce.closeOnce.Do(func() {
		ce.dead.Store(true)
		ce.mb.Close()
		close(ce.quit)
	})
}

// close stops the executor's goroutines for good.
func (ce *commandExecutor) close() {
	ce.closeOnce.Do(func() {
		ce.dead.Store(true)
		ce.mb.Close()
		ce.killTask(syscall.SIGKILL)
		close(ce.quit)
		ce.waiters.Wait()
	})
}

// killTask signals the command's process group.
func (ce *commandExecutor) killTask(sig syscall.Signal) {
	if pid := ce.c.executorPID(); pid > 0 {
		if sig == syscall.SIGKILL {
			killContainerProcesses(pid)
			return
		}
		_ = syscall.Kill(-pid, sig)
	}
}

// after runs f on the executor's mailbox after d.
func (ce *commandExecutor) after(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		ce.mb.Post(func() {
			if !ce.dead.Load() {
				f()
			}
		})
	})
}

// call makes an executor API call to the agent.
func (ce *commandExecutor) call(c *executor.Call, conn executorConn) callResult {
	c.FrameworkID, c.ExecutorID = ce.frameworkID, ce.executorID
	var res callResult
	if !ce.a.await(func() { res = ce.a.executorCall(c, conn) }) {
		return callResult{code: codeUnreachable}
	}
	return res
}

func (ce *commandExecutor) subscribe() {
	if ce.dead.Load() {
		return
	}
	k := &commandConn{ce: ce}
	ce.conn = k
	sub := &executor.Call_Subscribe{UnacknowledgedUpdates: append([]executor.Call_Update(nil), ce.unacked...)}
	if ce.task != nil && !ce.taskAcked {
		sub.UnacknowledgedTasks = []mesos.TaskInfo{*ce.task}
	}
	res := ce.call(&executor.Call{Type: executor.Call_SUBSCRIBE, Subscribe: sub}, k)
	if res.code != 200 {
		glog.V(1).Infof("command executor '%s': subscribe failed (%d %s)", ce.executorID.Value, res.code, res.body)
		if ce.conn == k {
			ce.conn = nil
			ce.lostAgent()
		}
	}
}

// disconnected: the agent closed the subscription.
func (ce *commandExecutor) disconnected(k *commandConn) {
	if ce.dead.Load() || ce.conn != k {
		return
	}
	ce.conn = nil
	ce.lostAgent()
}

// lostAgent retries the subscription with backoff while checkpointing,
// for up to the recovery timeout; without checkpointing it gives up.
func (ce *commandExecutor) lostAgent() {
	if !ce.checkpoint {
		glog.V(1).Infof("command executor '%s': disconnected without checkpointing; exiting", ce.executorID.Value)
		ce.exit(0)
		return
	}
	now := time.Now()
	if ce.disconnectedAt.IsZero() {
		ce.disconnectedAt = now
		ce.backoff = min(500*time.Millisecond, ce.backoffMax)
	}
	if now.Sub(ce.disconnectedAt) > ce.recovery {
		glog.Warningf("command executor '%s': agent not back within %v; exiting", ce.executorID.Value, ce.recovery)
		ce.exit(1 << 8)
		return
	}
	if ce.retryTimer != nil {
		ce.retryTimer.Stop()
	}
	ce.retryTimer = ce.after(ce.backoff, ce.subscribe)
	ce.backoff = min(2*ce.backoff, ce.backoffMax)
}

func (ce *commandExecutor) event(k *commandConn, ev executor.Event) {
	if ce.dead.Load() || ce.conn != k {
		return
	}
	switch ev.Type {
	case executor.Event_SUBSCRIBED:
		fi := ev.Subscribed.FrameworkInfo
		ce.framework = &fi
		ce.disconnectedAt = time.Time{}
		glog.V(1).Infof("command executor '%s': subscribed", ce.executorID.Value)
	case executor.Event_LAUNCH:
		ce.launch(ev.Launch.Task)
	case executor.Event_LAUNCH_GROUP:
		glog.Errorf("command executor '%s': LAUNCH_GROUP is not supported", ce.executorID.Value)
		ce.shutdownNow()
	case executor.Event_KILL:
		grace := ce.gracePeriod(ev.Kill.KillPolicy)
		ce.kill(grace)
	case executor.Event_ACKNOWLEDGED:
		ce.acknowledged(ev.Acknowledged.UUID)
	case executor.Event_SHUTDOWN:
		ce.shutdownNow()
	case executor.Event_ERROR:
		glog.Errorf("command executor '%s': error from agent: %s", ce.executorID.Value, ev.Error.Message)
	}
}

func (ce *commandExecutor) launch(task mesos.TaskInfo) {
	if ce.launched {
		ce.update(task.TaskID, mesos.TASK_FAILED, "Attempted to run multiple tasks using a \"command\" executor")
		return
	}
	ce.task = &task
	ce.taskAcked = false
	var ci mesos.CommandInfo
	if task.Command != nil {
		ci = *task.Command
	}
	env := newEnvList(ce.env)
	role := "*"
	if len(task.Resources) > 0 && task.Resources[0].AllocationInfo != nil {
		role = task.Resources[0].AllocationInfo.GetRole()
	}
	env.set("MESOS_ALLOCATION_ROLE", role)
	// The URIs were fetched for the executor's container.
	ci.URIs, ci.Environment = nil, nil
	cmd, err := buildCommand(ci, ce.sandbox, env.list(), ce.checkpoint)
	if err == nil {
		err = ce.c.startProcess(cmd)
		closeFiles(cmd)
	}
	if errors.Is(err, errDestroyed) {
		return
	}
	ce.update(task.TaskID, mesos.TASK_STARTING, "")
	ce.launched = true
	if err != nil {
		// As when mesos-containerizer fails to exec the command.
		appendToFile(ce.sandbox+"/stderr", "Failed to execute command: "+err.Error()+"\n")
		ce.update(task.TaskID, mesos.TASK_RUNNING, "")
		ce.reaped(1 << 8)
		return
	}
	ce.pgid = cmd.Process.Pid
	glog.V(1).Infof("command executor '%s': task %s runs as pid %d", ce.executorID.Value, task.TaskID.Value, ce.pgid)
	// A command that may outlive this process (checkpointing) is reaped
	// by a goroutine that detach does not wait for.
	owned := !ce.checkpoint
	if owned {
		ce.waiters.Add(1)
	}
	go func() {
		if owned {
			defer ce.waiters.Done()
		}
		_ = cmd.Wait()
		status := int32(-1)
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			status = int32(ws)
		}
		ce.mb.Post(func() {
			if !ce.dead.Load() {
				ce.reaped(status)
			}
		})
	}()
	ce.update(task.TaskID, mesos.TASK_RUNNING, "")
}

// gracePeriod: the KILL's kill_policy wins over the task's; 3s by default.
func (ce *commandExecutor) gracePeriod(override *mesos.KillPolicy) time.Duration {
	if override != nil && override.GracePeriod != nil {
		return time.Duration(override.GracePeriod.Nanoseconds)
	}
	if ce.task != nil && ce.task.KillPolicy != nil && ce.task.KillPolicy.GracePeriod != nil {
		return time.Duration(ce.task.KillPolicy.GracePeriod.Nanoseconds)
	}
	return defaultKillGracePeriod
}

// kill sends SIGTERM, then SIGKILL after grace. A later kill can only
// shorten the grace period.
func (ce *commandExecutor) kill(grace time.Duration) {
	if ce.terminated || !ce.launched {
		return
	}
	if ce.killed {
		if !ce.killStart.Add(grace).Before(ce.killStart.Add(ce.killGrace)) {
			return
		}
		remaining := max(grace-time.Since(ce.killStart), 0)
		ce.killGrace = grace
		ce.escalation.Stop()
		ce.escalation = ce.after(remaining, ce.escalate)
		return
	}
	if ce.framework != nil && hasCapability(*ce.framework, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE) {
		ce.update(ce.task.TaskID, mesos.TASK_KILLING, "")
	}
	glog.V(1).Infof("command executor '%s': SIGTERM to task %s, SIGKILL in %v", ce.executorID.Value, ce.task.TaskID.Value, grace)
	_ = syscall.Kill(-ce.pgid, syscall.SIGTERM)
	ce.killed = true
	ce.killStart = time.Now()
	ce.killGrace = grace
	ce.escalation = ce.after(grace, ce.escalate)
}

func (ce *commandExecutor) escalate() {
	if ce.terminated {
		return
	}
	glog.V(1).Infof("command executor '%s': task did not terminate after %v, SIGKILL", ce.executorID.Value, ce.killGrace)
	_ = syscall.Kill(-ce.pgid, syscall.SIGKILL)
}

// shutdownNow handles SHUTDOWN: kill the task within what is left of the
// shutdown grace period, or exit at once if there is none.
func (ce *commandExecutor) shutdownNow() {
	if !ce.launched {
		ce.exit(0)
		return
	}
	ce.kill(max(ce.shutdown-shutdownReserve, 0))
}

// reaped: the command ended; report how.
func (ce *commandExecutor) reaped(status int32) {
	ce.terminated = true
	if ce.escalation != nil {
		ce.escalation.Stop()
	}
	ws := syscall.WaitStatus(uint32(status))
	state := mesos.TASK_FAILED
	switch {
	case ce.killed:
		state = mesos.TASK_KILLED
	case status >= 0 && ws.Exited() && ws.ExitStatus() == 0:
		state = mesos.TASK_FINISHED
	}
	message := "Command " + waitStatusString(status)
	glog.V(1).Infof("command executor '%s': %s", ce.executorID.Value, message)
	ce.update(ce.task.TaskID, state, message)
	ce.terminalTimer = ce.after(terminalAckTimeout, func() {
		glog.Errorf("command executor '%s': did not receive ACK for the terminal status update from the agent", ce.executorID.Value)
		ce.exit(1 << 8)
	})
}

func (ce *commandExecutor) acknowledged(uuid []byte) {
	for i, u := range ce.unacked {
		if string(u.Status.UUID) != string(uuid) {
			continue
		}
		ce.unacked = append(ce.unacked[:i], ce.unacked[i+1:]...)
		ce.taskAcked = true
		if isTerminal(u.Status.GetState()) {
			ce.exit(0)
		}
		return
	}
	glog.Warningf("command executor '%s': acknowledgement for an unknown status update", ce.executorID.Value)
}

// update sends a status update; it stays unacknowledged (and is replayed
// on re-subscription) until the agent's ACKNOWLEDGED.
func (ce *commandExecutor) update(taskID mesos.TaskID, state mesos.TaskState, message string) {
	src := mesos.SOURCE_EXECUTOR
	now := float64(time.Now().UnixNano()) / 1e9
	execID := ce.executorID
	st := mesos.TaskStatus{
		TaskID:     taskID,
		State:      &state,
		Source:     &src,
		ExecutorID: &execID,
		Timestamp:  &now,
		UUID:       newUUID(),
	}
	if message != "" {
		st.Message = &message
	}
	u := executor.Call_Update{Status: st}
	ce.unacked = append(ce.unacked, u)
	if ce.conn == nil {
		return
	}
	ce.call(&executor.Call{Type: executor.Call_UPDATE, Update: &executor.Call_Update{Status: cloneTaskStatus(st)}}, nil)
}

// exit ends the executor: its command dies with it.
func (ce *commandExecutor) exit(status int32) {
	if ce.dead.Swap(true) {
		return
	}
	for _, t := range []*time.Timer{ce.escalation, ce.terminalTimer, ce.retryTimer} {
		if t != nil {
			t.Stop()
		}
	}
	if !ce.terminated {
		ce.killTask(syscall.SIGKILL)
	}
	glog.V(1).Infof("command executor '%s': exiting (%s)", ce.executorID.Value, waitStatusString(status))
	ce.c.report(ce.a, status, "")
}
