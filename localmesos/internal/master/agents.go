package master

import (
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// agent is a registered agent, connected or not.
type agent struct {
	id      string
	info    mesos.AgentInfo
	handle  wire.Agent
	address string // host:port of its executor API
	total   mesos.Resources

	connected bool
	// tasks by framework ID and task ID; executors likewise (custom
	// executors only: command executors are the agent's business).
	tasks     map[string]map[string]*mesos.Task
	executors map[string]map[string]*mesos.ExecutorInfo
	offers    map[string]*offer
	// killed remembers KILLs the agent may have missed while
	// disconnected; they are sent again when it re-registers.
	killed map[string]map[string]bool

	registeredTime   time.Time
	reregisteredTime time.Time
	// pingGen identifies the disconnection the unreachable timer is for.
	pingGen int
}

func newAgent(reg wire.Registration) *agent {
	a := &agent{
		id:             reg.Info.GetID().GetValue(),
		tasks:          map[string]map[string]*mesos.Task{},
		executors:      map[string]map[string]*mesos.ExecutorInfo{},
		offers:         map[string]*offer{},
		killed:         map[string]map[string]bool{},
		registeredTime: time.Now(),
	}
	a.update(reg)
	return a
}

func (a *agent) update(reg wire.Registration) {
	a.info = reg.Info
	a.handle = reg.Agent
	a.address = reg.Address
	static, _ := upgradeIncoming(reg.Info.Resources)
	a.total = agentTotal(unallocated(static), reg.Checkpointed)
	a.connected = true
}

func (a *agent) hostname() string { return a.info.Hostname }

// ip and port of the agent's executor API, for Offer.url and the state.
func (a *agent) ip() string {
	host, _, err := net.SplitHostPort(a.address)
	if err != nil {
		return a.info.Hostname
	}
	return host
}

func (a *agent) port() int32 {
	_, p, err := net.SplitHostPort(a.address)
	if err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			return int32(n)
		}
	}
	return a.info.GetPort()
}

func (a *agent) pid() string {
	return "slave(1)@" + net.JoinHostPort(a.ip(), strconv.Itoa(int(a.port())))
}

func (a *agent) hasExecutor(frameworkID, executorID string) bool {
	_, ok := a.executors[frameworkID][executorID]
	return ok
}

// used is what tasks (not yet terminal or unreachable) and executors hold,
// with allocation_info.
func (a *agent) used() mesos.Resources {
	var out mesos.Resources
	for _, tasks := range a.tasks {
		for _, t := range tasks {
			if !terminalOrUnreachable(t.GetState()) {
				out = append(out, t.Resources...)
			}
		}
	}
	for _, execs := range a.executors {
		for _, e := range execs {
			out = append(out, e.Resources...)
		}
	}
	return sum(out)
}

func (a *agent) offered() mesos.Resources {
	var out mesos.Resources
	for _, o := range a.offers {
		out = append(out, o.resources...)
	}
	return sum(out)
}

// available is total - used - offered, without allocation_info.
func (a *agent) available() mesos.Resources {
	return minus(minus(a.total, unallocated(a.used())), unallocated(a.offered()))
}

// mayHaveAllocatable is a cheap necessary condition for allocatable
// available resources: enough unallocated cpus or mem, counted without
// building resource collections. Most agents of a busy cluster fail it
// (their resources are all offered or used), and skipping them keeps an
// allocation pass from costing every task of every agent.
func (a *agent) mayHaveAllocatable() bool {
	cpus, _ := scalar(a.total, "cpus")
	mem, _ := scalar(a.total, "mem")
	take := func(rs []mesos.Resource) {
		c, _ := scalar(rs, "cpus")
		m, _ := scalar(rs, "mem")
		cpus -= c
		mem -= m
	}
	for _, tasks := range a.tasks {
		for _, t := range tasks {
			if !terminalOrUnreachable(t.GetState()) {
				take(t.Resources)
			}
		}
	}
	for _, execs := range a.executors {
		for _, e := range execs {
			take(e.Resources)
		}
	}
	for _, o := range a.offers {
		take(o.resources)
	}
	// Float sums of task sizes may leave a hair above zero.
	const epsilon = 1e-9
	return cpus+epsilon >= minCPUs || mem+epsilon >= minMem
}

func (m *Master) sortedAgents() []*agent {
	out := make([]*agent, 0, len(m.agents))
	for _, a := range m.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func isTerminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

func terminalOrUnreachable(s mesos.TaskState) bool {
	return isTerminal(s) || s == mesos.TASK_UNREACHABLE
}

// registerAgent handles a first registration and every re-registration.
func (m *Master) registerAgent(reg wire.Registration) {
	id := reg.Info.GetID().GetValue()
	if id == "" || reg.Agent == nil {
		glog.Warningf("ignoring registration without agent ID or handle from %s", reg.Address)
		return
	}
	if a := m.agents[id]; a != nil {
		m.reregisterKnownAgent(a, reg)
		return
	}
	_, wasRecovered := m.recovered[id]
	_, wasUnreachable := m.unreachable[id]
	a := newAgent(reg)
	m.agents[id] = a
	delete(m.recovered, id)
	delete(m.unreachable, id)
	delete(m.removed, id)
	if !reg.Reregistration {
		glog.Infof("agent %s (%s) registered with %s", id, a.hostname(), formatResources(a.total))
		m.allocateSoon()
		return
	}
	a.reregisteredTime = a.registeredTime

	// Frameworks this master does not know (it failed over) are recovered
	// from the agent's FrameworkInfos; removed ones are shut down.
	infos := map[string]mesos.FrameworkInfo{}
	for _, fi := range reg.Frameworks {
		infos[fi.GetID().GetValue()] = fi
	}
	for _, fi := range reg.Frameworks {
		fid := fi.GetID().GetValue()
		if m.completedIDs[fid] {
			a.handle.ShutdownFramework(mesos.FrameworkID{Value: fid})
			continue
		}
		if f := m.frameworks[fid]; f != nil {
			a.handle.UpdateFramework(f.info)
			continue
		}
		f := newFramework(fi)
		f.recovered = true
		m.frameworks[fid] = f
		glog.Infof("recovering framework %s from re-registering agent %s", f, id)
	}
	for i := range reg.Executors {
		e := proto.Clone(&reg.Executors[i]).(*mesos.ExecutorInfo)
		fid := e.GetFrameworkID().GetValue()
		f := m.frameworks[fid]
		if f == nil {
			continue
		}
		injectRecoveredAllocation(e.Resources, f)
		m.addExecutor(a, f, e)
	}
	for i := range reg.Tasks {
		t := proto.Clone(&reg.Tasks[i]).(*mesos.Task)
		f := m.frameworks[t.FrameworkID.Value]
		if f == nil {
			if _, ok := infos[t.FrameworkID.Value]; !ok {
				glog.Warningf("agent %s re-registered task %s of unknown framework %s; ignoring it", id, t.TaskID.Value, t.FrameworkID.Value)
			}
			continue
		}
		injectRecoveredAllocation(t.Resources, f)
		t.AgentID = mesos.AgentID{Value: id}
		if !wasRecovered {
			// The agent comes back from unreachable (or from nowhere):
			// its tasks are alive after all. TASK_LOST is not final.
			delete(f.unreachableTasks, t.TaskID.Value)
			msg := "Unknown agent reregistered"
			if wasUnreachable {
				msg = "Unreachable agent re-reregistered"
			}
			st := masterStatus(t.TaskID, t.GetState(), msg, mesos.REASON_AGENT_REREGISTERED, &t.AgentID, t.ExecutorID)
			if cs := latestContainerStatus(t); cs != nil {
				st.ContainerStatus = cs
			}
			f.send(updateEvent(st))
		}
		m.addTask(a, f, t)
	}
	glog.Infof("agent %s (%s) re-registered with %d tasks and %d executors", id, a.hostname(), len(reg.Tasks), len(reg.Executors))
	m.allocateSoon()
}

// injectRecoveredAllocation gives resources from an agent the framework's
// role when they lack allocation_info (agents predating MULTI_ROLE).
func injectRecoveredAllocation(rs []mesos.Resource, f *framework) {
	if len(f.roles) == 1 {
		injectAllocation(rs, f.roles[0])
	}
}

// reregisterKnownAgent: an agent this master already has comes back (agent
// restart, or a broken connection healed). Master and agent reconcile.
func (m *Master) reregisterKnownAgent(a *agent, reg wire.Registration) {
	wasConnected := a.connected
	a.update(reg)
	a.pingGen++
	a.reregisteredTime = time.Now()

	agentTasks := map[string]map[string]mesos.Task{}
	for _, t := range reg.Tasks {
		if agentTasks[t.FrameworkID.Value] == nil {
			agentTasks[t.FrameworkID.Value] = map[string]mesos.Task{}
		}
		agentTasks[t.FrameworkID.Value][t.TaskID.Value] = t
	}
	// Tasks the master has that the agent does not know (the launch was
	// lost): Mesos asks the agent, which answers TASK_DROPPED/TASK_LOST.
	// The wire has no such question, so the master answers for it.
	for fid, tasks := range a.tasks {
		f := m.frameworks[fid]
		for _, t := range sortedTasks(tasks) {
			if _, ok := agentTasks[fid][t.TaskID.Value]; ok || isTerminal(t.GetState()) {
				continue
			}
			state := mesos.TASK_LOST
			if f != nil {
				state = f.lostState(mesos.TASK_DROPPED)
			}
			st := masterStatus(t.TaskID, state, "Reconciliation: task unknown to the agent", mesos.REASON_RECONCILIATION, &t.AgentID, t.ExecutorID)
			m.updateTask(t, st, nil)
			m.removeTask(t, false)
			if f != nil {
				f.send(updateEvent(st))
			}
		}
	}
	// Executors the agent no longer has.
	agentExecs := map[string]bool{}
	for _, e := range reg.Executors {
		agentExecs[e.GetFrameworkID().GetValue()+"/"+e.ExecutorID.Value] = true
	}
	for fid, execs := range a.executors {
		for eid := range execs {
			if !agentExecs[fid+"/"+eid] {
				m.removeExecutor(a.id, fid, eid)
			}
		}
	}
	// KILLs it may have missed.
	for _, t := range reg.Tasks {
		if !isTerminal(t.GetState()) && a.killed[t.FrameworkID.Value][t.TaskID.Value] {
			a.handle.KillTask(t.FrameworkID, t.TaskID, nil)
		}
	}
	// Frameworks removed meanwhile.
	for fid := range agentTasks {
		if m.completedIDs[fid] {
			a.handle.ShutdownFramework(mesos.FrameworkID{Value: fid})
		}
	}
	for _, fi := range reg.Frameworks {
		if f := m.frameworks[fi.GetID().GetValue()]; f != nil {
			a.handle.UpdateFramework(f.info)
		}
	}
	if !wasConnected {
		glog.Infof("agent %s (%s) reconnected", a.id, a.hostname())
	} else {
		glog.Infof("agent %s (%s) re-registered", a.id, a.hostname())
	}
	m.allocateSoon()
}

// agentDisconnected: the agent's connection broke. Its offers are
// rescinded at once, tasks of frameworks that do not checkpoint are lost
// at once, and the agent has AgentPingTimeout to come back before it is
// marked unreachable.
func (m *Master) agentDisconnected(id string) {
	a := m.agents[id]
	if a == nil || !a.connected {
		return
	}
	glog.Infof("agent %s (%s) disconnected", id, a.hostname())
	a.connected = false
	for _, o := range sortedOffers(a.offers) {
		m.rescindOffer(o)
	}
	fids := map[string]bool{}
	for fid := range a.tasks {
		fids[fid] = true
	}
	for fid := range a.executors {
		fids[fid] = true
	}
	for _, fid := range sortedKeys(fids) {
		f := m.frameworks[fid]
		if f == nil || f.info.GetCheckpoint() {
			continue
		}
		glog.Infof("removing framework %s from disconnected agent %s because the framework is not checkpointing", f, id)
		for _, t := range sortedTasks(a.tasks[fid]) {
			st := masterStatus(t.TaskID, mesos.TASK_LOST, "Agent "+a.hostname()+" disconnected", mesos.REASON_AGENT_DISCONNECTED, &t.AgentID, t.ExecutorID)
			m.updateTask(t, st, nil)
			m.removeTask(t, false)
			f.send(updateEvent(st))
		}
		for eid := range a.executors[fid] {
			m.removeExecutor(id, fid, eid)
		}
	}
	a.pingGen++
	gen, mgen := a.pingGen, m.generation
	m.after(m.cfg.AgentPingTimeout, func() {
		if m.generation != mgen {
			return
		}
		if cur := m.agents[id]; cur == a && !a.connected && a.pingGen == gen {
			m.markUnreachable(a, "health check timed out")
		}
	})
}

// markUnreachable removes an agent that stopped answering: its tasks
// become TASK_UNREACHABLE (TASK_LOST for frameworks that are not
// PARTITION_AWARE) and every connected framework hears FAILURE.
func (m *Master) markUnreachable(a *agent, message string) {
	glog.Infof("marking agent %s (%s) unreachable: %s", a.id, a.hostname(), message)
	now := time.Now()
	when := mesos.TimeInfo{Nanoseconds: now.UnixNano()}
	m.unreachable[a.id] = when
	for _, fid := range sortedTaskFrameworks(a) {
		f := m.frameworks[fid]
		for _, t := range sortedTasks(a.tasks[fid]) {
			state := mesos.TASK_LOST
			if f != nil {
				state = f.lostState(mesos.TASK_UNREACHABLE)
			}
			st := masterStatus(t.TaskID, state, message, mesos.REASON_AGENT_REMOVED, &t.AgentID, t.ExecutorID)
			ut := when
			st.UnreachableTime = &ut
			m.updateTask(t, st, nil)
			m.removeTask(t, true)
			if f != nil {
				f.send(updateEvent(st))
			}
		}
	}
	for fid, execs := range a.executors {
		for eid := range execs {
			m.removeExecutor(a.id, fid, eid)
		}
	}
	for _, o := range sortedOffers(a.offers) {
		m.rescindOffer(o)
	}
	delete(m.agents, a.id)
	m.removed[a.id] = true
	m.sendAgentLost(a.id)
}

// recoveredAgentsTimeout marks agents that did not re-register after a
// master failover unreachable (--agent_reregister_timeout).
func (m *Master) recoveredAgentsTimeout() {
	for _, id := range sortedKeys(boolKeys(m.recovered)) {
		glog.Infof("agent %s did not re-register after master failover; marking it unreachable", id)
		m.unreachable[id] = mesos.TimeInfo{Nanoseconds: time.Now().UnixNano()}
		delete(m.recovered, id)
		m.sendAgentLost(id)
	}
}

// sendAgentLost is FAILURE{agent_id} to every connected framework.
func (m *Master) sendAgentLost(id string) {
	for _, f := range m.sortedFrameworks() {
		aid := mesos.AgentID{Value: id}
		f.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &aid}})
	}
}

func sortedTaskFrameworks(a *agent) []string {
	set := map[string]bool{}
	for fid := range a.tasks {
		set[fid] = true
	}
	return sortedKeys(set)
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// statusUpdate is the head of a task's status update stream from an
// agent.
func (m *Master) statusUpdate(agentID string, u wire.StatusUpdate) {
	if m.removed[agentID] {
		glog.Warningf("ignoring status update %s for task %s from removed agent %s", u.Status.GetState(), u.Status.TaskID.Value, agentID)
		return
	}
	a := m.agents[agentID]
	if a == nil {
		glog.Warningf("ignoring status update %s for task %s from unknown agent %s", u.Status.GetState(), u.Status.TaskID.Value, agentID)
		return
	}
	if len(u.Status.UUID) != 16 {
		glog.Warningf("ignoring status update for task %s from agent %s: uuid is not 16 bytes", u.Status.TaskID.Value, agentID)
		m.invalidStatusUpdates++
		return
	}
	m.validStatusUpdates++
	fid := u.FrameworkID.Value
	f := m.frameworks[fid]
	t := a.tasks[fid][u.Status.TaskID.Value]
	if f != nil && f.connected() {
		if t != nil {
			t.StatusUpdateState = u.Status.GetState().Enum()
			t.StatusUpdateUUID = append([]byte(nil), u.Status.UUID...)
		}
		glog.V(2).Infof("forwarding status update %s (%x) for task %s of framework %s", u.Status.GetState(), u.Status.UUID, u.Status.TaskID.Value, fid)
		st := *proto.Clone(&u.Status).(*mesos.TaskStatus)
		// The scheduler always sees agent_id and timestamp, and the
		// executor_id when the master knows it.
		if st.AgentID == nil {
			st.AgentID = &mesos.AgentID{Value: agentID}
		}
		if st.Timestamp == nil {
			st.Timestamp = proto.Float64(nowSeconds())
		}
		if st.ExecutorID == nil && t != nil && t.ExecutorID != nil {
			e := *t.ExecutorID
			st.ExecutorID = &e
		}
		f.send(updateEvent(st))
	} else {
		glog.V(2).Infof("dropping status update %s for task %s of %s framework %s", u.Status.GetState(), u.Status.TaskID.Value, map[bool]string{true: "an unknown", false: "a disconnected"}[f == nil], fid)
	}
	if t == nil {
		return
	}
	latest := u.LatestState
	m.updateTask(t, u.Status, &latest)
}

// updateTask records a status: the task's state becomes the latest state
// the agent knows (which frees its resources once terminal) and the status
// joins the task's history.
func (m *Master) updateTask(t *mesos.Task, st mesos.TaskStatus, latest *mesos.TaskState) {
	state := st.GetState()
	if latest != nil {
		state = *latest
	}
	if !isTerminal(t.GetState()) {
		m.countTerminal(t.GetState(), state)
		if t.GetState() != state {
			glog.V(2).Infof("task %s of framework %s: %s -> %s", t.TaskID.Value, t.FrameworkID.Value, t.GetState(), state)
		}
		t.State = state.Enum()
	}
	keep := *proto.Clone(&st).(*mesos.TaskStatus)
	keep.Data = nil
	if n := len(t.Statuses); n > 0 && t.Statuses[n-1].GetState() == st.GetState() {
		t.Statuses[n-1] = keep
	} else {
		t.Statuses = append(t.Statuses, keep)
	}
}

// addTask records a launched (or recovered) task.
func (m *Master) addTask(a *agent, f *framework, t *mesos.Task) {
	if a.tasks[f.id] == nil {
		a.tasks[f.id] = map[string]*mesos.Task{}
	}
	a.tasks[f.id][t.TaskID.Value] = t
	f.tasks[t.TaskID.Value] = t
}

// removeTask forgets a task at the master: it goes to the framework's
// completed tasks, or to its unreachable tasks.
func (m *Master) removeTask(t *mesos.Task, unreachable bool) {
	fid, tid, aid := t.FrameworkID.Value, t.TaskID.Value, t.AgentID.Value
	if a := m.agents[aid]; a != nil {
		delete(a.tasks[fid], tid)
		if len(a.tasks[fid]) == 0 {
			delete(a.tasks, fid)
		}
		delete(a.killed[fid], tid)
	}
	f := m.frameworks[fid]
	if f == nil {
		return
	}
	if f.tasks[tid] == t {
		delete(f.tasks, tid)
	}
	if unreachable {
		f.unreachableTasks[tid] = t
	} else {
		f.addCompletedTask(t)
	}
}

func (m *Master) addExecutor(a *agent, f *framework, e *mesos.ExecutorInfo) {
	if a.executors[f.id] == nil {
		a.executors[f.id] = map[string]*mesos.ExecutorInfo{}
	}
	a.executors[f.id][e.ExecutorID.Value] = e
	if f.executors[a.id] == nil {
		f.executors[a.id] = map[string]*mesos.ExecutorInfo{}
	}
	f.executors[a.id][e.ExecutorID.Value] = e
}

func (m *Master) removeExecutor(agentID, frameworkID, executorID string) {
	if a := m.agents[agentID]; a != nil {
		delete(a.executors[frameworkID], executorID)
		if len(a.executors[frameworkID]) == 0 {
			delete(a.executors, frameworkID)
		}
	}
	if f := m.frameworks[frameworkID]; f != nil {
		delete(f.executors[agentID], executorID)
		if len(f.executors[agentID]) == 0 {
			delete(f.executors, agentID)
		}
	}
}

// executorExited frees a custom executor's resources and tells its
// framework (FAILURE, for every exit, 0 included). Command executors are
// not tracked by the master and are ignored, as in Mesos.
func (m *Master) executorExited(agentID, frameworkID, executorID string, status int32) {
	if m.removed[agentID] {
		return
	}
	a := m.agents[agentID]
	if a == nil || !a.hasExecutor(frameworkID, executorID) {
		glog.V(2).Infof("ignoring exit of unknown executor %s of framework %s on agent %s", executorID, frameworkID, agentID)
		return
	}
	glog.V(1).Infof("executor %s of framework %s on agent %s exited with status %d", executorID, frameworkID, agentID, status)
	m.removeExecutor(agentID, frameworkID, executorID)
	f := m.frameworks[frameworkID]
	if f == nil {
		return
	}
	aid, eid := mesos.AgentID{Value: agentID}, mesos.ExecutorID{Value: executorID}
	f.send(&scheduler.Event{Type: scheduler.Event_FAILURE, Failure: &scheduler.Event_Failure{AgentID: &aid, ExecutorID: &eid, Status: proto.Int32(status)}})
}

// executorMessage forwards an executor's MESSAGE to its framework.
func (m *Master) executorMessage(agentID, frameworkID, executorID string, data []byte) {
	if m.removed[agentID] || m.agents[agentID] == nil {
		return
	}
	f := m.frameworks[frameworkID]
	if f == nil {
		return
	}
	if data == nil {
		data = []byte{}
	}
	f.send(&scheduler.Event{Type: scheduler.Event_MESSAGE, Message: &scheduler.Event_Message{
		AgentID: mesos.AgentID{Value: agentID}, ExecutorID: mesos.ExecutorID{Value: executorID}, Data: append([]byte(nil), data...),
	}})
}

// latestContainerStatus is the container status of a task's most recent
// status that has one (Mesos' getTaskContainerStatus).
func latestContainerStatus(t *mesos.Task) *mesos.ContainerStatus {
	for i := len(t.Statuses) - 1; i >= 0; i-- {
		if cs := t.Statuses[i].ContainerStatus; cs != nil {
			return proto.Clone(cs).(*mesos.ContainerStatus)
		}
	}
	return nil
}

// latestHealth is the healthy flag of the task's most recent status.
func latestHealth(t *mesos.Task) *bool {
	if n := len(t.Statuses); n > 0 && t.Statuses[n-1].Healthy != nil {
		return proto.Bool(*t.Statuses[n-1].Healthy)
	}
	return nil
}
