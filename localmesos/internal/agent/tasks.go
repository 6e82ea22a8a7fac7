package agent

import (
	"strings"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// The master's messages (wire.Agent). Each method copies its arguments on
// the caller's goroutine and posts the work to the agent's mailbox.

// RunTask launches a task; executor is nil for a command task.
func (a *Agent) RunTask(fw mesos.FrameworkInfo, ex *mesos.ExecutorInfo, task mesos.TaskInfo) {
	fw, task = cloneFrameworkInfo(fw), cloneTaskInfo(task)
	var exc *mesos.ExecutorInfo
	if ex != nil {
		c := cloneExecutorInfo(*ex)
		exc = &c
	}
	a.post(func() { a.run(fw, exc, []mesos.TaskInfo{task}, false) })
}

// RunTaskGroup launches a task group on one executor, atomically.
func (a *Agent) RunTaskGroup(fw mesos.FrameworkInfo, ex mesos.ExecutorInfo, group mesos.TaskGroupInfo) {
	fw, ex, group = cloneFrameworkInfo(fw), cloneExecutorInfo(ex), cloneTaskGroupInfo(group)
	a.post(func() { a.run(fw, &ex, group.Tasks, true) })
}

// KillTask asks the task's executor to kill it.
func (a *Agent) KillTask(frameworkID mesos.FrameworkID, taskID mesos.TaskID, policy *mesos.KillPolicy) {
	policy = cloneKillPolicy(policy)
	a.post(func() { a.killTask(frameworkID, taskID, policy) })
}

// ShutdownExecutor sends SHUTDOWN to one executor and destroys it after
// the shutdown grace period.
func (a *Agent) ShutdownExecutor(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID) {
	a.post(func() { a.handleShutdownExecutor(frameworkID, executorID) })
}

// ShutdownFramework removes a framework (teardown or failover timeout).
func (a *Agent) ShutdownFramework(frameworkID mesos.FrameworkID) {
	a.post(func() { a.shutdownFramework(frameworkID) })
}

// FrameworkMessage delivers a scheduler MESSAGE call to an executor.
func (a *Agent) FrameworkMessage(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, data []byte) {
	data = append([]byte(nil), data...)
	a.post(func() { a.frameworkMessage(frameworkID, executorID, data) })
}

// Acknowledge is a scheduler's ACKNOWLEDGE of one status update.
func (a *Agent) Acknowledge(frameworkID mesos.FrameworkID, taskID mesos.TaskID, uuid []byte) {
	uuid = append([]byte(nil), uuid...)
	a.post(func() { a.acknowledge(frameworkID, taskID, uuid) })
}

// UpdateFramework: the framework (re-)subscribed; resend pending updates.
func (a *Agent) UpdateFramework(fw mesos.FrameworkInfo) {
	fw = cloneFrameworkInfo(fw)
	a.post(func() { a.updateFramework(fw) })
}

// run is Slave::run and Slave::__run for a task or a task group.
func (a *Agent) run(fi mesos.FrameworkInfo, exInfo *mesos.ExecutorInfo, tasks []mesos.TaskInfo, group bool) {
	if fi.ID == nil || len(tasks) == 0 {
		glog.Warningf("agent %s: ignoring a launch without framework ID or tasks", a.cfg.ID.Value)
		return
	}
	for i := range tasks {
		injectAllocationInfo(tasks[i].Resources, fi)
		if tasks[i].Executor != nil {
			injectAllocationInfo(tasks[i].Executor.Resources, fi)
		}
		if tasks[i].AgentID.Value != a.cfg.ID.Value {
			glog.Warningf("agent %s: ignoring task %s intended for agent %s", a.cfg.ID.Value, tasks[i].TaskID.Value, tasks[i].AgentID.Value)
			return
		}
	}
	if a.state != stateRunning {
		glog.Warningf("agent %s: ignoring task %s because the agent is %s", a.cfg.ID.Value, tasks[0].TaskID.Value, a.state)
		return
	}
	fw := a.frameworks[fi.ID.Value]
	if fw == nil {
		fw = &framework{info: fi, state: frameworkRunning, executors: map[string]*executorEntry{}}
		a.frameworks[fi.ID.Value] = fw
		a.checkpointFramework(fw)
	}
	if fw.state == frameworkTerminating {
		glog.Warningf("agent %s: ignoring task %s of terminating framework %s", a.cfg.ID.Value, tasks[0].TaskID.Value, fi.ID.Value)
		return
	}
	command := exInfo == nil
	if command {
		info := commandExecutorInfo(fw, tasks[0])
		exInfo = &info
	} else {
		if exInfo.FrameworkID == nil {
			id := fw.id()
			exInfo.FrameworkID = &id
		}
		injectAllocationInfo(exInfo.Resources, fi)
		if !group && tasks[0].Executor == nil {
			c := cloneExecutorInfo(*exInfo)
			tasks[0].Executor = &c
		}
	}
	dropped := func(reason mesos.TaskStatus_Reason, message string) {
		state := mesos.TASK_DROPPED
		if !hasCapability(fi, mesos.FrameworkInfo_Capability_PARTITION_AWARE) {
			state = mesos.TASK_LOST
		}
		for _, t := range tasks {
			a.statusUpdate(fw.id(), a.agentStatus(t.TaskID, state, reason, message, nil), mesos.ExecutorID{}, false)
		}
		if fw.idle() {
			a.removeFramework(fw)
		}
	}
	ex := fw.executors[exInfo.ExecutorID.Value]
	if command && ex != nil {
		dropped(mesos.REASON_TASK_INVALID, "Cannot reuse an already existing executor for a command task")
		return
	}
	if ex == nil {
		ex = newExecutorEntry(*exInfo, fw, command)
		fw.executors[exInfo.ExecutorID.Value] = ex
		a.launchExecutor(fw, ex, tasks)
	} else if ex.container != nil && ex.state != executorTerminating && ex.state != executorTerminated {
		// A running container gets the new tasks' volumes linked first,
		// as Mesos updates the container before delivering a task.
		if err := a.linkTaskVolumes(ex.container.sandbox, tasks); err != nil {
			glog.Errorf("agent %s: task %s: %v", a.cfg.ID.Value, tasks[0].TaskID.Value, err)
		}
	}
	switch ex.state {
	case executorTerminating, executorTerminated:
		word := "terminating"
		if ex.state == executorTerminated {
			word = "terminated"
		}
		glog.Warningf("agent %s: asked to run task %s with executor %s which is %s", a.cfg.ID.Value, tasks[0].TaskID.Value, ex, word)
		dropped(mesos.REASON_EXECUTOR_TERMINATED, "Executor "+word)
		return
	}
	for _, t := range tasks {
		a.checkpointTask(ex, createTask(t, mesos.TASK_STAGING, fw.id()))
	}
	ex.queued = append(ex.queued, tasks...)
	if group {
		ex.queuedGroups = append(ex.queuedGroups, mesos.TaskGroupInfo{Tasks: tasks})
	}
	glog.V(1).Infof("agent %s: queued %d task(s) for executor %s", a.cfg.ID.Value, len(tasks), ex)
	if ex.state == executorRunning {
		a.deliverQueued(ex)
	}
}

// commandExecutorInfo is the ExecutorInfo the agent generates for a
// command task: executor ID = task ID, and the task's URIs and environment
// so that they are fetched and set for the executor's sandbox.
func commandExecutorInfo(fw *framework, task mesos.TaskInfo) mesos.ExecutorInfo {
	id := fw.id()
	var cmd mesos.CommandInfo
	if task.Command != nil {
		cmd = *task.Command
	}
	name := "sh -c '" + cmd.GetValue() + "'"
	if !cmd.GetShell() {
		name = "[" + strings.Join(append([]string{cmd.GetValue()}, cmd.Arguments...), ", ") + "]"
	}
	name = "Command Executor (Task: " + task.TaskID.Value + ") (Command: " + name + ")"
	source := task.TaskID.Value
	shell := false
	value := "mesos-executor (built into localmesos)"
	return mesos.ExecutorInfo{
		Type:        mesos.ExecutorInfo_CUSTOM,
		ExecutorID:  mesos.ExecutorID{Value: task.TaskID.Value},
		FrameworkID: &id,
		Name:        &name,
		Source:      &source,
		Command: &mesos.CommandInfo{
			URIs:        cmd.URIs,
			Environment: cmd.Environment,
			Shell:       &shell,
			Value:       &value,
		},
		Labels: task.Labels,
	}
}

// killTask is Slave::killTask.
func (a *Agent) killTask(frameworkID mesos.FrameworkID, taskID mesos.TaskID, policy *mesos.KillPolicy) {
	if a.state != stateRunning {
		glog.Warningf("agent %s: cannot kill task %s of framework %s because the agent is %s", a.cfg.ID.Value, taskID.Value, frameworkID.Value, a.state)
		return
	}
	fw := a.frameworks[frameworkID.Value]
	if fw == nil {
		glog.Warningf("agent %s: ignoring kill of task %s of unknown framework %s", a.cfg.ID.Value, taskID.Value, frameworkID.Value)
		return
	}
	if fw.state == frameworkTerminating {
		glog.Warningf("agent %s: ignoring kill of task %s: framework %s is terminating", a.cfg.ID.Value, taskID.Value, frameworkID.Value)
		return
	}
	ex := fw.executorOfTask(taskID.Value)
	if ex == nil {
		state := mesos.TASK_DROPPED
		if !fw.partitionAware() {
			state = mesos.TASK_LOST
		}
		glog.Warningf("agent %s: cannot kill task %s: no executor runs it (%s)", a.cfg.ID.Value, taskID.Value, state)
		a.statusUpdate(fw.id(), a.agentStatus(taskID, state, mesos.REASON_EXECUTOR_TERMINATED, "Cannot find executor", nil), mesos.ExecutorID{}, false)
		return
	}
	switch ex.state {
	case executorTerminating, executorTerminated:
		glog.Warningf("agent %s: ignoring kill of task %s: executor %s is %s", a.cfg.ID.Value, taskID.Value, ex, ex.state)
		return
	}
	if ex.state == executorRegistering || ex.queuedIndex(taskID.Value) >= 0 {
		ids := []mesos.TaskID{taskID}
		message := "Killed before delivery to the executor"
		if g := ex.queuedGroup(taskID.Value); g != nil {
			ids = ids[:0]
			for _, t := range g.Tasks {
				ids = append(ids, t.TaskID)
			}
			if ex.state == executorRegistering {
				message = "A task within the task group was killed before delivery to the executor"
			}
		}
		glog.V(1).Infof("agent %s: task %s killed before delivery to executor %s", a.cfg.ID.Value, taskID.Value, ex)
		for _, id := range ids {
			a.statusUpdate(fw.id(), a.agentStatus(id, mesos.TASK_KILLED, mesos.REASON_TASK_KILLED_DURING_LAUNCH, message, &ex.info.ExecutorID), mesos.ExecutorID{}, false)
		}
		if ex.state == executorRunning && !ex.everSentTask() && len(ex.queued) == 0 {
			a.shutdownExecutor(fw, ex)
		}
		return
	}
	glog.V(1).Infof("agent %s: asking executor %s to kill task %s", a.cfg.ID.Value, ex, taskID.Value)
	ex.send(executor.Event{Type: executor.Event_KILL, Kill: &executor.Event_Kill{TaskID: taskID, KillPolicy: policy}})
}

// handleShutdownExecutor is Slave::shutdownExecutor (the scheduler's
// SHUTDOWN call).
func (a *Agent) handleShutdownExecutor(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID) {
	if a.state != stateRunning {
		glog.Warningf("agent %s: ignoring shutdown of executor %s: the agent is %s", a.cfg.ID.Value, executorID.Value, a.state)
		return
	}
	fw := a.frameworks[frameworkID.Value]
	if fw == nil || fw.state == frameworkTerminating {
		glog.Warningf("agent %s: ignoring shutdown of executor %s of unknown or terminating framework %s", a.cfg.ID.Value, executorID.Value, frameworkID.Value)
		return
	}
	ex := fw.executors[executorID.Value]
	if ex == nil {
		glog.Warningf("agent %s: ignoring shutdown of unknown executor %s of framework %s", a.cfg.ID.Value, executorID.Value, frameworkID.Value)
		return
	}
	if ex.state == executorTerminating || ex.state == executorTerminated {
		glog.Warningf("agent %s: ignoring shutdown of executor %s: it is %s", a.cfg.ID.Value, ex, ex.state)
		return
	}
	a.shutdownExecutor(fw, ex)
}

// shutdownFramework is Slave::shutdownFramework.
func (a *Agent) shutdownFramework(frameworkID mesos.FrameworkID) {
	if a.state != stateRunning {
		glog.Warningf("agent %s: ignoring shutdown of framework %s: the agent is %s", a.cfg.ID.Value, frameworkID.Value, a.state)
		return
	}
	fw := a.frameworks[frameworkID.Value]
	if fw == nil || fw.state == frameworkTerminating {
		glog.V(1).Infof("agent %s: nothing to shut down for framework %s", a.cfg.ID.Value, frameworkID.Value)
		return
	}
	glog.Infof("agent %s: shutting down framework %s", a.cfg.ID.Value, frameworkID.Value)
	fw.state = frameworkTerminating
	// It will never acknowledge anything again.
	a.cleanupStreams(fw.id())
	for _, ex := range fw.sortedExecutors() {
		switch ex.state {
		case executorRegistering, executorRunning:
			a.shutdownExecutor(fw, ex)
		case executorTerminated:
			a.removeExecutor(fw, ex)
		}
	}
	if fw.idle() {
		a.removeFramework(fw)
	}
}

// frameworkMessage is Slave::schedulerMessage.
func (a *Agent) frameworkMessage(frameworkID mesos.FrameworkID, executorID mesos.ExecutorID, data []byte) {
	if a.state != stateRunning {
		glog.Warningf("agent %s: dropping message for executor %s: the agent is %s", a.cfg.ID.Value, executorID.Value, a.state)
		return
	}
	fw := a.frameworks[frameworkID.Value]
	if fw == nil || fw.state == frameworkTerminating {
		glog.Warningf("agent %s: dropping message for executor %s of unknown or terminating framework %s", a.cfg.ID.Value, executorID.Value, frameworkID.Value)
		return
	}
	ex := fw.executors[executorID.Value]
	if ex == nil || ex.state != executorRunning {
		glog.Warningf("agent %s: dropping message for executor %s of framework %s: not running", a.cfg.ID.Value, executorID.Value, frameworkID.Value)
		return
	}
	glog.V(2).Infof("agent %s: delivering %d bytes of message to executor %s", a.cfg.ID.Value, len(data), ex)
	ex.send(executor.Event{Type: executor.Event_MESSAGE, Message: &executor.Event_Message{Data: data}})
}

// acknowledge is Slave::statusUpdateAcknowledgement.
func (a *Agent) acknowledge(frameworkID mesos.FrameworkID, taskID mesos.TaskID, uuid []byte) {
	if a.state != stateRunning {
		glog.Warningf("agent %s: dropping acknowledgement for task %s: the agent is %s", a.cfg.ID.Value, taskID.Value, a.state)
		return
	}
	ok, ended := a.acknowledgeUpdate(frameworkID, taskID, uuid)
	if !ok {
		return
	}
	fw := a.frameworks[frameworkID.Value]
	if fw == nil {
		return
	}
	ex := fw.executorOfTask(taskID.Value)
	if ex == nil {
		return
	}
	if ended {
		ex.completeTask(taskID.Value)
		a.forgetTask(ex, taskID.Value)
	}
	if ex.state == executorTerminated && !ex.incomplete() {
		a.removeExecutor(fw, ex)
	}
	if fw.idle() {
		a.removeFramework(fw)
	}
}

// updateFramework is Slave::updateFramework: new info, and every pending
// update is sent again at once.
func (a *Agent) updateFramework(fi mesos.FrameworkInfo) {
	if a.state != stateRunning || fi.ID == nil {
		return
	}
	fw := a.frameworks[fi.ID.Value]
	if fw == nil || fw.state == frameworkTerminating {
		return
	}
	glog.V(1).Infof("agent %s: framework %s (re-)subscribed, resending pending status updates", a.cfg.ID.Value, fi.ID.Value)
	fw.info = fi
	a.checkpointFramework(fw)
	a.resumeStreams()
}
