package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// Executor lifecycle on the agent's mailbox: launch, registration timeout,
// shutdown, termination and removal.

// sandboxDir is the run directory Mesos gives an executor's container.
func (a *Agent) sandboxDir(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, containerID string) string {
	return filepath.Join(a.executorDir(frameworkID, executorID), "runs", containerID)
}

func (a *Agent) executorDir(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID) string {
	return filepath.Join(a.cfg.WorkDir, "slaves", a.cfg.ID.Value, "frameworks", frameworkID.Value, "executors", executorID.Value)
}

// launchExecutor starts an executor's container: sandbox, fetch, process
// (or the built-in command executor). The work happens on a goroutine; the
// registration timeout starts now, as on Mesos, so a slow fetch counts.
func (a *Agent) launchExecutor(fw *framework, ex *executorEntry, tasks []mesos.TaskInfo) {
	cid := newUUIDString()
	sandbox := a.sandboxDir(fw.id(), ex.id(), cid)
	ctx, cancel := context.WithCancel(context.Background())
	c := &container{id: cid, sandbox: sandbox, frameworkID: fw.id(), executorID: ex.id(), cancel: cancel}
	ex.container = c
	a.checkpointExecutor(ex)
	c.runDir = a.runDirForPID(ex)
	glog.Infof("agent %s: launching executor %s in container %s", a.cfg.ID.Value, ex, cid)
	ex.registrationTimer = a.after(a.cfg.ExecutorRegistrationTimeout, func() { a.registrationTimeout(fw.id(), ex, c) })

	env, err := a.executorEnv(fw, ex, sandbox)
	spec := launchSpec{
		sandbox: sandbox,
		latest:  filepath.Join(a.executorDir(fw.id(), ex.id()), "runs", "latest"),
		env:     env,
		err:     err,
		volumes: a.volumeLinks(containerResources(ex.info, tasks)),
	}
	if ex.info.Command != nil {
		spec.command = *ex.info.Command
	}
	if ex.info.Type == mesos.ExecutorInfo_DEFAULT && spec.err == nil {
		spec.err = errors.New("the DEFAULT executor is not available in localmesos; use a CUSTOM executor")
	}
	if ex.command {
		c.cmd = newCommandExecutor(a, c, fw, ex, spec.env, tasks[0])
		a.cmdExecs[c.cmd] = struct{}{}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.runContainer(ctx, c, spec)
	}()
}

// containerExited runs on the mailbox when an executor's container ended
// (its process exited, or the built-in executor finished).
func (a *Agent) containerExited(c *container, status int32) {
	defer a.notifyIdle()
	glog.V(1).Infof("agent %s: container %s of executor '%s' exited (%s)", a.cfg.ID.Value, c.id, c.executorID.Value, waitStatusString(status))
	switch a.state {
	case stateStopped:
		// Noticed when the agent recovers.
		return
	case stateLost:
		return
	}
	fw := a.frameworks[c.frameworkID.Value]
	if fw == nil {
		return
	}
	ex := fw.executors[c.executorID.Value]
	if ex == nil || ex.container != c || ex.state == executorTerminated {
		return
	}
	a.executorTerminated(fw, ex, status)
}

// containerLaunchFailed records why a container never started; its tasks
// fail with REASON_CONTAINER_LAUNCH_FAILED when it is reported exited.
func (a *Agent) containerLaunchFailed(c *container, failure string) {
	glog.Errorf("agent %s: container %s for executor '%s' of framework %s failed to start: %s", a.cfg.ID.Value, c.id, c.executorID.Value, c.frameworkID.Value, failure)
	fw := a.frameworks[c.frameworkID.Value]
	if fw == nil {
		return
	}
	ex := fw.executors[c.executorID.Value]
	if ex == nil || ex.container != c {
		return
	}
	if ex.pendingTermination == nil {
		ex.pendingTermination = &termination{
			state:   mesos.TASK_FAILED,
			reason:  mesos.REASON_CONTAINER_LAUNCH_FAILED,
			message: "Failed to launch container: " + failure,
		}
	}
}

// executorTerminated is Slave::executorTerminated.
func (a *Agent) executorTerminated(fw *framework, ex *executorEntry, status int32) {
	glog.Infof("agent %s: executor %s %s", a.cfg.ID.Value, ex, waitStatusString(status))
	ex.state = executorTerminated
	a.executorsTerminated++
	a.checkpointExited(ex, status)
	ex.closeConn()
	ex.registrationTimer.stop()
	ex.shutdownTimer.stop()
	ex.registrationTimer, ex.shutdownTimer = nil, nil
	a.retireCommand(ex)
	if fw.state != frameworkTerminating {
		for _, t := range sortedTasks(ex.launched) {
			if !isTerminal(t.GetState()) {
				a.sendExecutorTerminatedUpdate(fw, ex, t.TaskID)
			}
		}
		for len(ex.queued) > 0 {
			a.sendExecutorTerminatedUpdate(fw, ex, ex.queued[0].TaskID)
		}
	} else {
		for id, t := range ex.launched {
			delete(ex.launched, id)
			ex.terminated[id] = t
		}
	}
	// Mesos' agent does not tell its master about command executors (the
	// master does not know them); the wire contract has the master ignore
	// them instead, so that it need not guess.
	fwID, exID := fw.id(), ex.id()
	a.toMasterWhenRegistered(func() { a.master.ExecutorExited(a.cfg.ID, fwID, exID, status) })
	if fw.state == frameworkTerminating || !ex.incomplete() {
		a.removeExecutor(fw, ex)
	}
	if fw.idle() {
		a.removeFramework(fw)
	}
}

// sendExecutorTerminatedUpdate is Slave::sendExecutorTerminatedStatusUpdate.
func (a *Agent) sendExecutorTerminatedUpdate(fw *framework, ex *executorEntry, taskID mesos.TaskID) {
	state, reason, message := mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated"
	if t := ex.pendingTermination; t != nil {
		state, reason, message = t.state, t.reason, t.message
	}
	before := len(ex.queued)
	a.statusUpdate(fw.id(), a.agentStatus(taskID, state, reason, message, &ex.info.ExecutorID), mesos.ExecutorID{}, false)
	if i := ex.queuedIndex(taskID.Value); i >= 0 && len(ex.queued) == before {
		// The update was refused; never loop on a task that stays queued.
		ex.dequeue(taskID.Value)
	}
}

// removeExecutor is Slave::removeExecutor (the sandbox stays on disk).
func (a *Agent) removeExecutor(fw *framework, ex *executorEntry) {
	glog.V(1).Infof("agent %s: cleaning up executor %s", a.cfg.ID.Value, ex)
	ex.closeConn()
	ex.registrationTimer.stop()
	ex.shutdownTimer.stop()
	a.retireCommand(ex)
	delete(fw.executors, ex.info.ExecutorID.Value)
	a.forgetExecutor(ex)
}

// removeFramework is Slave::removeFramework.
func (a *Agent) removeFramework(fw *framework) {
	glog.V(1).Infof("agent %s: cleaning up framework %s", a.cfg.ID.Value, fw.id().Value)
	a.cleanupStreams(fw.id())
	delete(a.frameworks, fw.id().Value)
	a.forgetFramework(fw)
}

// retireCommand stops the goroutine of an executor's built-in command
// executor, if it has one, once it is finished or forgotten. Its mailbox
// cannot be closed from the agent's own goroutine (it may be waiting for
// the agent), hence the goroutine.
func (a *Agent) retireCommand(ex *executorEntry) {
	if ex.container == nil || ex.container.cmd == nil {
		return
	}
	ce := ex.container.cmd
	if _, ok := a.cmdExecs[ce]; !ok {
		return
	}
	delete(a.cmdExecs, ce)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ce.close()
	}()
}

// registrationTimeout is Slave::registerExecutorTimeout.
func (a *Agent) registrationTimeout(frameworkID mesos.FrameworkID, ex *executorEntry, c *container) {
	fw := a.frameworks[frameworkID.Value]
	if fw == nil || fw.state == frameworkTerminating || fw.executors[ex.info.ExecutorID.Value] != ex || ex.container != c {
		return
	}
	ex.registrationTimer = nil
	if ex.state != executorRegistering {
		return
	}
	glog.Infof("agent %s: terminating executor %s: it did not register within %v", a.cfg.ID.Value, ex, a.cfg.ExecutorRegistrationTimeout)
	ex.state = executorTerminating
	ex.pendingTermination = &termination{
		state:   mesos.TASK_FAILED,
		reason:  mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT,
		message: "Executor did not register within " + stoutDuration(a.cfg.ExecutorRegistrationTimeout),
	}
	a.destroy(ex, "registration timeout")
}

// shutdownExecutor is Slave::_shutdownExecutor: SHUTDOWN now, destroy
// after the grace period.
func (a *Agent) shutdownExecutor(fw *framework, ex *executorEntry) {
	glog.Infof("agent %s: shutting down executor %s", a.cfg.ID.Value, ex)
	ex.state = executorTerminating
	ex.send(executor.Event{Type: executor.Event_SHUTDOWN})
	grace := a.shutdownGracePeriod(ex)
	c := ex.container
	fwID := fw.id()
	ex.shutdownTimer.stop()
	ex.shutdownTimer = a.after(grace, func() {
		fw := a.frameworks[fwID.Value]
		if fw == nil || fw.executors[ex.info.ExecutorID.Value] != ex || ex.container != c {
			glog.V(1).Infof("agent %s: executor %s seems to have exited; ignoring its shutdown timeout", a.cfg.ID.Value, ex)
			return
		}
		ex.shutdownTimer = nil
		if ex.state == executorTerminating {
			glog.Infof("agent %s: killing executor %s: it did not exit within %v of SHUTDOWN", a.cfg.ID.Value, ex, grace)
			a.destroy(ex, "shutdown grace period over")
		}
	})
}

func (a *Agent) shutdownGracePeriod(ex *executorEntry) time.Duration {
	if p := ex.info.ShutdownGracePeriod; p != nil {
		return time.Duration(p.Nanoseconds)
	}
	return a.cfg.ExecutorShutdownGracePeriod
}

// destroy kills an executor's container; its exit is then handled as any
// other.
func (a *Agent) destroy(ex *executorEntry, why string) {
	if c := ex.container; c != nil {
		glog.V(1).Infof("agent %s: destroying container %s of executor %s: %s", a.cfg.ID.Value, c.id, ex, why)
		c.destroy()
	}
}

// killExecutor simulates an executor crash (SIGKILL of its process group).
func (a *Agent) killExecutor(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID) error {
	fw := a.frameworks[frameworkID.Value]
	if fw == nil {
		return fmt.Errorf("%w: framework %s has no executor on agent %s", ErrUnknownExecutor, frameworkID.Value, a.cfg.ID.Value)
	}
	ex := fw.executors[executorID.Value]
	if ex == nil || ex.container == nil || ex.state == executorTerminated || ex.container.hasExited() {
		return fmt.Errorf("%w: executor %s of framework %s does not run on agent %s", ErrUnknownExecutor, executorID.Value, frameworkID.Value, a.cfg.ID.Value)
	}
	glog.Infof("agent %s: killing executor %s (SIGKILL)", a.cfg.ID.Value, ex)
	ex.container.destroy()
	return nil
}
