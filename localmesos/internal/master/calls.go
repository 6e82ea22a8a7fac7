package master

import (
	"bytes"
	"net/http"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// decline returns offers with a refusal filter (default 5 s). Unknown
// offers are ignored.
func (m *Master) decline(f *framework, d *scheduler.Call_Decline) {
	for _, id := range d.OfferIDs {
		o := m.offers[id.Value]
		if o == nil || o.framework != f {
			glog.V(1).Infof("ignoring decline of offer %s by framework %s: it is no longer valid", id.Value, f)
			continue
		}
		m.removeOffer(o)
		m.declineResources(f, o.agent, o.role, o.resources, d.Filters)
		glog.V(1).Infof("framework %s declined offer %s", f, o.id)
	}
}

// checkRoles validates the roles of a REVIVE or SUPPRESS: every one must
// be valid and subscribed, else the whole call is dropped. No roles means
// all of the framework's roles.
func checkRoles(f *framework, roles []string, what string) ([]string, bool) {
	if len(roles) == 0 {
		return f.roles, true
	}
	for _, r := range roles {
		if err := validateRole(r); err != "" {
			glog.Warningf("dropping %s call of framework %s: role '%s' is invalid: %s", what, f, r, err)
			return nil, false
		}
		if !f.hasRole(r) {
			glog.Warningf("dropping %s call of framework %s: role '%s' is not one of the framework's subscribed roles", what, f, r)
			return nil, false
		}
	}
	return roles, true
}

// revive un-suppresses roles and clears their refusal filters.
func (m *Master) revive(f *framework, roles []string) {
	roles, ok := checkRoles(f, roles, "REVIVE")
	if !ok {
		return
	}
	for _, r := range roles {
		delete(f.suppressed, r)
		delete(f.filters, r)
	}
	glog.V(1).Infof("framework %s revived roles %v", f, roles)
	m.allocateSoon()
}

// suppress stops offers for roles until REVIVE.
func (m *Master) suppress(f *framework, roles []string) {
	roles, ok := checkRoles(f, roles, "SUPPRESS")
	if !ok {
		return
	}
	for _, r := range roles {
		f.suppressed[r] = true
	}
	glog.V(1).Infof("framework %s suppressed roles %v", f, roles)
}

// kill forwards a KILL to the task's agent; a task the master does not
// know is answered by reconciliation.
func (m *Master) kill(f *framework, k *scheduler.Call_Kill) {
	t := f.tasks[k.TaskID.Value]
	if t == nil {
		glog.V(1).Infof("cannot kill task %s of framework %s: unknown; reconciling", k.TaskID.Value, f)
		m.reconcile(f, []scheduler.Call_Reconcile_Task{{TaskID: k.TaskID, AgentID: k.AgentID}})
		return
	}
	if k.AgentID != nil && k.AgentID.Value != t.AgentID.Value {
		glog.Warningf("cannot kill task %s of framework %s on agent %s: it runs on agent %s", k.TaskID.Value, f, k.AgentID.Value, t.AgentID.Value)
		return
	}
	a := m.agents[t.AgentID.Value]
	if a == nil {
		return
	}
	if a.killed[f.id] == nil {
		a.killed[f.id] = map[string]bool{}
	}
	a.killed[f.id][t.TaskID.Value] = true
	if !a.connected {
		glog.V(1).Infof("cannot kill task %s of framework %s yet: agent %s is disconnected; the kill is retried when it re-registers", t.TaskID.Value, f, a.id)
		return
	}
	glog.V(1).Infof("telling agent %s to kill task %s of framework %s", a.id, t.TaskID.Value, f)
	a.handle.KillTask(mesos.FrameworkID{Value: f.id}, t.TaskID, k.KillPolicy)
}

// shutdown asks an agent to shut an executor down.
func (m *Master) shutdown(f *framework, s *scheduler.Call_Shutdown) {
	a := m.agents[s.AgentID.Value]
	if a == nil {
		glog.Warningf("cannot shut down executor %s of framework %s on unknown agent %s", s.ExecutorID.Value, f, s.AgentID.Value)
		return
	}
	glog.V(1).Infof("telling agent %s to shut down executor %s of framework %s", a.id, s.ExecutorID.Value, f)
	a.handle.ShutdownExecutor(mesos.FrameworkID{Value: f.id}, s.ExecutorID)
}

// acknowledge forwards a scheduler's ACK to the agent; acknowledging the
// terminal update removes the task at the master.
func (m *Master) acknowledge(f *framework, ack *scheduler.Call_Acknowledge) {
	a := m.agents[ack.AgentID.Value]
	if a == nil {
		glog.Warningf("cannot acknowledge update %x of task %s of framework %s: agent %s is not registered", ack.UUID, ack.TaskID.Value, f, ack.AgentID.Value)
		return
	}
	if !a.connected {
		glog.Warningf("cannot acknowledge update %x of task %s of framework %s: agent %s is disconnected", ack.UUID, ack.TaskID.Value, f, a.id)
		return
	}
	if t := a.tasks[f.id][ack.TaskID.Value]; t != nil && t.StatusUpdateState != nil {
		if isTerminal(*t.StatusUpdateState) && bytes.Equal(t.StatusUpdateUUID, ack.UUID) {
			glog.V(2).Infof("terminal update of task %s of framework %s acknowledged; removing the task", t.TaskID.Value, f)
			m.removeTask(t, false)
		}
	}
	glog.V(2).Infof("forwarding acknowledgement %x of task %s of framework %s to agent %s", ack.UUID, ack.TaskID.Value, f, a.id)
	a.handle.Acknowledge(mesos.FrameworkID{Value: f.id}, ack.TaskID, append([]byte(nil), ack.UUID...))
}

// reconcile answers RECONCILE (and KILL of an unknown task) with master
// generated updates: no uuid, SOURCE_MASTER, REASON_RECONCILIATION.
func (m *Master) reconcile(f *framework, tasks []scheduler.Call_Reconcile_Task) {
	latest := func(t *mesos.Task) mesos.TaskStatus {
		state := t.GetState()
		if t.StatusUpdateState != nil {
			state = *t.StatusUpdateState
		}
		st := masterStatus(t.TaskID, state, "Reconciliation: Latest task state", mesos.REASON_RECONCILIATION, &t.AgentID, t.ExecutorID)
		st.Healthy = latestHealth(t)
		st.ContainerStatus = latestContainerStatus(t)
		return st
	}
	if len(tasks) == 0 {
		glog.V(1).Infof("implicit reconciliation for framework %s (%d tasks)", f, len(f.tasks))
		for _, t := range sortedTasks(f.tasks) {
			f.send(updateEvent(latest(t)))
		}
		return
	}
	glog.V(1).Infof("explicit reconciliation of %d tasks for framework %s", len(tasks), f)
	for _, rt := range tasks {
		var st mesos.TaskStatus
		aid := rt.AgentID
		switch t := f.tasks[rt.TaskID.Value]; {
		case t != nil:
			st = latest(t)
		case aid != nil && m.isRecovered(aid.Value), aid == nil && len(m.recovered) > 0:
			// The task may be on an agent that has not re-registered
			// since the master failed over: no answer, retry later.
			glog.V(1).Infof("dropping reconciliation of task %s of framework %s: agents have not re-registered yet", rt.TaskID.Value, f)
			continue
		case aid != nil && m.agents[aid.Value] != nil:
			st = masterStatus(rt.TaskID, f.lostState(mesos.TASK_GONE), "Reconciliation: Task is unknown to the agent", mesos.REASON_RECONCILIATION, aid, nil)
		case aid != nil && m.isUnreachable(aid.Value):
			st = masterStatus(rt.TaskID, f.lostState(mesos.TASK_UNREACHABLE), "Reconciliation: Task is unreachable", mesos.REASON_RECONCILIATION, aid, nil)
			when := m.unreachable[aid.Value]
			st.UnreachableTime = &when
		default:
			st = masterStatus(rt.TaskID, f.lostState(mesos.TASK_UNKNOWN), "Reconciliation: Task is unknown", mesos.REASON_RECONCILIATION, aid, nil)
		}
		f.send(updateEvent(st))
	}
}

func (m *Master) isRecovered(id string) bool {
	_, ok := m.recovered[id]
	return ok
}

func (m *Master) isUnreachable(id string) bool {
	_, ok := m.unreachable[id]
	return ok
}

// message delivers a scheduler MESSAGE to an executor (best effort).
func (m *Master) message(f *framework, msg *scheduler.Call_Message) {
	a := m.agents[msg.AgentID.Value]
	if a == nil || !a.connected {
		glog.Warningf("cannot send framework message of framework %s to agent %s: it is not registered or disconnected", f, msg.AgentID.Value)
		return
	}
	a.handle.FrameworkMessage(mesos.FrameworkID{Value: f.id}, msg.ExecutorID, append([]byte(nil), msg.Data...))
}

// updateFrameworkCall is UPDATE_FRAMEWORK: 200 without a body, or 400.
func (m *Master) updateFrameworkCall(f *framework, u *scheduler.Call_UpdateFramework) answer {
	info := u.FrameworkInfo
	if err := m.validateFrameworkInfo(info); err != "" {
		return badRequest("Supplied FrameworkInfo is not valid: " + err)
	}
	if (f.info.Principal == nil) != (info.Principal == nil) || f.info.GetPrincipal() != info.GetPrincipal() {
		return badRequest("FrameworkInfo update is not valid: Changing framework's principal is not allowed.")
	}
	if info.User != f.info.User {
		return badRequest("FrameworkInfo update is not valid: Updating 'FrameworkInfo.user' is unsupported; attempted to update from '" + f.info.User + "' to '" + info.User + "'")
	}
	if info.GetCheckpoint() != f.info.GetCheckpoint() {
		return badRequest("FrameworkInfo update is not valid: Updating 'FrameworkInfo.checkpoint' is unsupported; attempted to update from '" + boolText(f.info.GetCheckpoint()) + "' to '" + boolText(info.GetCheckpoint()) + "'")
	}
	if err := validateSuppressedRoles(frameworkRoles(info), u.SuppressedRoles); err != "" {
		return badRequest("'UpdateFramework' call is not valid: " + err)
	}
	m.updateFramework(f, info, u.SuppressedRoles)
	for _, a := range m.sortedAgents() {
		if a.connected {
			a.handle.UpdateFramework(f.info)
		}
	}
	glog.Infof("framework %s updated (roles %v, suppressed %v)", f, f.roles, u.SuppressedRoles)
	m.allocateSoon()
	return answer{status: http.StatusOK}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
