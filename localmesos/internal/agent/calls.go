package agent

import (
	"net/http"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

const (
	sourceExecutor = mesos.SOURCE_EXECUTOR
	stateStaging   = mesos.TASK_STAGING
)

// executorCall handles a validated executor call on the mailbox. conn is
// the subscription to use if the call is a SUBSCRIBE.
func (a *Agent) executorCall(call *executor.Call, conn executorConn) callResult {
	switch a.state {
	case stateStopped, stateLost:
		return callResult{code: codeUnreachable}
	case stateRecovering:
		if call.Type != executor.Call_SUBSCRIBE {
			return callResult{code: http.StatusServiceUnavailable, body: "Agent has not finished recovery"}
		}
	}
	fw := a.frameworks[call.FrameworkID.Value]
	if fw == nil {
		return callResult{code: http.StatusBadRequest, body: "Framework cannot be found"}
	}
	ex := fw.executors[call.ExecutorID.Value]
	if ex == nil {
		return callResult{code: http.StatusBadRequest, body: "Executor cannot be found"}
	}
	if ex.state == executorRegistering && call.Type != executor.Call_SUBSCRIBE {
		return callResult{code: http.StatusForbidden, body: "Executor is not subscribed"}
	}
	switch call.Type {
	case executor.Call_SUBSCRIBE:
		a.subscribe(fw, ex, call.Subscribe, conn)
		return callResult{code: http.StatusOK, stream: true}
	case executor.Call_UPDATE:
		// The agent acknowledges an update as soon as it has taken it
		// over, before the master hears of it: the executor never sees
		// another event of the agent's before that ACKNOWLEDGED.
		status := cloneTaskStatus(call.Update.Status)
		if owner := a.statusUpdate(fw.id(), status, ex.id(), true); owner != nil {
			a.acknowledgeToExecutor(fw.id(), owner, status)
		}
		return callResult{code: http.StatusAccepted}
	case executor.Call_MESSAGE:
		a.executorMessage(fw, ex, call.Message.Data)
		return callResult{code: http.StatusAccepted}
	}
	return callResult{code: http.StatusNotImplemented}
}

// acknowledgeToExecutor sends ACKNOWLEDGED for an update the agent took
// over to the executor of its task, on its current subscription.
func (a *Agent) acknowledgeToExecutor(frameworkID mesos.FrameworkID, owner *executorEntry, status mesos.TaskStatus) {
	fw := a.frameworks[frameworkID.Value]
	if fw == nil || fw.executors[owner.info.ExecutorID.Value] != owner {
		return
	}
	glog.V(2).Infof("agent %s: acknowledging status update %s to executor %s", a.cfg.ID.Value, describe(status), owner)
	owner.send(executor.Event{
		Type:         executor.Event_ACKNOWLEDGED,
		Acknowledged: &executor.Event_Acknowledged{TaskID: status.TaskID, UUID: status.UUID},
	})
}

// subscribe is Slave::subscribe for an HTTP executor.
func (a *Agent) subscribe(fw *framework, ex *executorEntry, sub *executor.Call_Subscribe, conn executorConn) {
	glog.V(1).Infof("agent %s: executor %s subscribes (%s)", a.cfg.ID.Value, ex, ex.state)
	shutdownAndClose := func(why string) {
		glog.Warningf("agent %s: shutting down executor %s: %s", a.cfg.ID.Value, ex, why)
		conn.send(executor.Event{Type: executor.Event_SHUTDOWN})
		conn.close()
	}
	if fw.state == frameworkTerminating {
		shutdownAndClose("the framework is terminating")
		return
	}
	switch ex.state {
	case executorTerminating, executorTerminated:
		shutdownAndClose("it is " + ex.state.String())
		return
	}
	// Nothing goes to an executor before its pid is checkpointed, or a
	// restart after a SIGKILL could take it for dead with its tasks.
	if ex.container != nil {
		ex.container.awaitStart()
	}
	if ex.conn != nil {
		glog.Warningf("agent %s: closing the existing subscription of executor %s", a.cfg.ID.Value, ex)
		ex.closeConn()
	}
	ex.state = executorRunning
	ex.conn = conn
	ex.registrationTimer.stop()
	ex.registrationTimer = nil
	a.heartbeat(ex, conn)

	// Updates the executor could not get acknowledged before (say, while
	// the agent was down) are handled like UPDATE calls; duplicates are
	// ignored by the status update manager. Their ACKNOWLEDGED events
	// follow SUBSCRIBED.
	var acks []func()
	for _, u := range sub.UnacknowledgedUpdates {
		status := cloneTaskStatus(u.Status)
		if status.GetSource() == sourceExecutor && status.GetState() == stateStaging {
			glog.Errorf("agent %s: executor %s sent TASK_STAGING, which is not allowed; shutting it down", a.cfg.ID.Value, ex)
			a.shutdownExecutor(fw, ex)
			return
		}
		if owner := a.statusUpdate(fw.id(), status, ex.id(), true); owner != nil {
			acks = append(acks, func() { a.acknowledgeToExecutor(fw.id(), owner, status) })
		}
	}
	known := map[string]bool{}
	for _, t := range sub.UnacknowledgedTasks {
		known[t.TaskID.Value] = true
	}
	// A STAGING task the executor does not know never reached it: the
	// agent died before delivering it.
	for _, t := range sortedTasks(ex.launched) {
		if t.GetState() != mesos.TASK_STAGING || known[t.TaskID.Value] {
			continue
		}
		state := mesos.TASK_DROPPED
		if !fw.partitionAware() {
			state = mesos.TASK_LOST
		}
		glog.V(1).Infof("agent %s: task %s is unknown to executor %s: %s", a.cfg.ID.Value, t.TaskID.Value, ex, state)
		a.statusUpdate(fw.id(), a.agentStatus(t.TaskID, state, mesos.REASON_AGENT_RESTARTED,
			"Task launched during agent restart", &ex.info.ExecutorID), ex.id(), false)
	}
	if !ex.everSentTask() && len(ex.queued) == 0 {
		glog.Warningf("agent %s: shutting down executor %s: it has never been sent a task and all of its queued tasks were killed before delivery", a.cfg.ID.Value, ex)
		a.shutdownExecutor(fw, ex)
		return
	}
	info := cloneExecutorInfo(ex.info)
	cid := mesos.ContainerID{Value: ex.container.id}
	conn.send(executor.Event{
		Type: executor.Event_SUBSCRIBED,
		Subscribed: &executor.Event_Subscribed{
			ExecutorInfo:  info,
			FrameworkInfo: cloneFrameworkInfo(fw.info),
			AgentInfo:     a.agentInfo(),
			ContainerID:   &cid,
		},
	})
	for _, ack := range acks {
		ack()
	}
	a.deliverQueued(ex)
}

// deliverQueued sends the executor the tasks and task groups it is owed.
func (a *Agent) deliverQueued(ex *executorEntry) {
	grouped := map[string]bool{}
	for _, g := range ex.queuedGroups {
		for _, t := range g.Tasks {
			grouped[t.TaskID.Value] = true
		}
	}
	for _, t := range ex.queued {
		if grouped[t.TaskID.Value] {
			continue
		}
		task := createTask(t, mesos.TASK_STAGING, ex.frameworkID)
		ex.launched[t.TaskID.Value] = &task
		glog.V(1).Infof("agent %s: sending task %s to executor %s", a.cfg.ID.Value, t.TaskID.Value, ex)
		ex.send(executor.Event{Type: executor.Event_LAUNCH, Launch: &executor.Event_Launch{Task: cloneTaskInfo(t)}})
	}
	for _, g := range ex.queuedGroups {
		for _, t := range g.Tasks {
			task := createTask(t, mesos.TASK_STAGING, ex.frameworkID)
			ex.launched[t.TaskID.Value] = &task
		}
		glog.V(1).Infof("agent %s: sending a task group of %d task(s) to executor %s", a.cfg.ID.Value, len(g.Tasks), ex)
		ex.send(executor.Event{Type: executor.Event_LAUNCH_GROUP, LaunchGroup: &executor.Event_LaunchGroup{TaskGroup: cloneTaskGroupInfo(g)}})
	}
	ex.queued, ex.queuedGroups = nil, nil
}

// heartbeat sends HEARTBEAT on conn every interval while conn is the
// executor's subscription.
func (a *Agent) heartbeat(ex *executorEntry, conn executorConn) {
	a.after(a.cfg.ExecutorHeartbeatInterval, func() {
		if ex.conn != conn {
			return
		}
		conn.send(executor.Event{Type: executor.Event_HEARTBEAT})
		a.heartbeat(ex, conn)
	})
}

// connectionLost forgets a subscription whose executor went away.
func (a *Agent) connectionLost(conn executorConn) {
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.conn == conn {
				glog.V(1).Infof("agent %s: executor %s closed its subscription", a.cfg.ID.Value, ex)
				ex.conn = nil
			}
		}
	}
}

func (a *Agent) agentInfo() mesos.AgentInfo {
	id := a.cfg.ID
	port := int32(a.port)
	return mesos.AgentInfo{
		ID:         &id,
		Hostname:   a.cfg.Hostname,
		Port:       &port,
		Resources:  cloneResources(a.cfg.Resources),
		Attributes: a.cfg.Attributes,
	}
}

// agentStatus is an update generated by the agent (SOURCE_AGENT, with a
// fresh uuid, so it is delivered reliably).
func (a *Agent) agentStatus(taskID mesos.TaskID, state mesos.TaskState, reason mesos.TaskStatus_Reason, message string, executorID *mesos.ExecutorID) mesos.TaskStatus {
	src := mesos.SOURCE_AGENT
	st := mesos.TaskStatus{
		TaskID:  taskID,
		State:   &state,
		Source:  &src,
		Reason:  &reason,
		Message: &message,
		UUID:    newUUID(),
	}
	if executorID != nil {
		id := *executorID
		st.ExecutorID = &id
	}
	return st
}

// statusUpdate is Slave::statusUpdate: it completes an update, records the
// task's new state and hands the update to the status update manager.
// fromExecutor says the update came from executor sender (an UPDATE call
// or a SUBSCRIBE's replay); otherwise the agent made it. The result is the
// executor to acknowledge the update to, if any.
func (a *Agent) statusUpdate(frameworkID mesos.FrameworkID, status mesos.TaskStatus, sender mesos.ExecutorID, fromExecutor bool) *executorEntry {
	if status.AgentID != nil && status.AgentID.Value != a.cfg.ID.Value {
		glog.Warningf("agent %s: ignoring status update %s for agent %s", a.cfg.ID.Value, describe(status), status.AgentID.Value)
		return nil
	}
	agentID := a.cfg.ID
	status.AgentID = &agentID
	src := mesos.SOURCE_AGENT
	if fromExecutor {
		src = sourceExecutor
		id := sender
		status.ExecutorID = &id
	}
	status.Source = &src
	if status.Timestamp == nil {
		now := float64(time.Now().UnixNano()) / 1e9
		status.Timestamp = &now
	}
	fw := a.frameworks[frameworkID.Value]
	if fw == nil {
		glog.Warningf("agent %s: ignoring status update %s for unknown framework %s", a.cfg.ID.Value, describe(status), frameworkID.Value)
		return nil
	}
	if fw.state == frameworkTerminating {
		glog.Warningf("agent %s: ignoring status update %s for terminating framework %s", a.cfg.ID.Value, describe(status), frameworkID.Value)
		return nil
	}
	ex := fw.executorOfTask(status.TaskID.Value)
	if ex == nil {
		// Forwarded anyway (the master may still wait for it), but with
		// no executor to acknowledge and no container to describe.
		glog.Warningf("agent %s: could not find the executor for status update %s", a.cfg.ID.Value, describe(status))
		a.enqueueUpdate(fw.id(), status)
		return nil
	}
	reachedExecutor := ex.queuedIndex(status.TaskID.Value) < 0 &&
		!(ex.launched[status.TaskID.Value] != nil && !fromExecutor &&
			(status.GetState() == mesos.TASK_DROPPED || status.GetState() == mesos.TASK_LOST))
	if reachedExecutor && ex.container != nil && !ex.container.hasExited() {
		status.ContainerStatus = a.containerStatus(ex.container, status.ContainerStatus)
	}
	if err := ex.updateTaskState(status); err != nil {
		a.invalidStatusUpdates++
		glog.Errorf("agent %s: failed to update state of task %s to %s: %v", a.cfg.ID.Value, status.TaskID.Value, status.GetState(), err)
		if fromExecutor {
			return ex
		}
		return nil
	}
	a.validStatusUpdates++
	if isTerminal(status.GetState()) {
		a.terminalCounts[status.GetState()]++
	}
	a.enqueueUpdate(fw.id(), status)
	if fromExecutor {
		return ex
	}
	return nil
}

// containerStatus fills in what the agent knows of the executor's
// container, keeping what the executor set itself.
func (a *Agent) containerStatus(c *container, cs *mesos.ContainerStatus) *mesos.ContainerStatus {
	out := &mesos.ContainerStatus{}
	if cs != nil {
		*out = *cs
	}
	if out.ContainerID == nil {
		out.ContainerID = &mesos.ContainerID{Value: c.id}
	}
	if len(out.NetworkInfos) == 0 {
		ip := a.cfg.IP
		out.NetworkInfos = []mesos.NetworkInfo{{IPAddresses: []mesos.NetworkInfo_IPAddress{{IPAddress: &ip}}}}
	}
	if out.ExecutorPID == nil {
		if pid := c.executorPID(); pid > 0 {
			p := uint32(pid)
			out.ExecutorPID = &p
		}
	}
	return out
}

// executorMessage forwards an executor's MESSAGE call to its framework.
func (a *Agent) executorMessage(fw *framework, ex *executorEntry, data []byte) {
	if a.state != stateRunning {
		glog.Warningf("agent %s: dropping message from executor %s: the agent is %s", a.cfg.ID.Value, ex, a.state)
		return
	}
	glog.V(2).Infof("agent %s: forwarding %d bytes of message from executor %s", a.cfg.ID.Value, len(data), ex)
	a.master.ExecutorMessage(a.cfg.ID, fw.id(), ex.id(), append([]byte(nil), data...))
}
