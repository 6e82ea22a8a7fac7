package master

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// refuseUnsupportedOperations answers an ACCEPT that uses an offer
// operation localmesos does not implement (GROW_VOLUME, SHRINK_VOLUME and
// the resource provider disk operations) with 501, before anything changes: the offers stay outstanding. A real
// master would apply them; silently dropping them would let a framework
// believe it had a reservation it does not have.
func refuseUnsupportedOperations(acc *scheduler.Call_Accept) (answer, bool) {
	for i, op := range acc.Operations {
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH, mesos.Offer_Operation_LAUNCH_GROUP, mesos.Offer_Operation_UNKNOWN:
			continue
		}
		if isStorageOperation(op.Type) {
			continue
		}
		msg := fmt.Sprintf("localmesos does not support the %s offer operation (accept.operations[%d]); the ACCEPT call was not applied and its offers are still outstanding", op.Type, i)
		glog.Warning(msg)
		return answer{status: http.StatusNotImplemented, body: msg}, true
	}
	return answer{}, false
}

// accept is the ACCEPT pipeline: offer validation, then the operations in
// order against the offered resources, then the leftovers declined with
// the call's filters.
func (m *Master) accept(f *framework, acc *scheduler.Call_Accept) {
	var invalid string
	if len(acc.OfferIDs) == 0 {
		invalid = "No offers specified"
	} else {
		invalid = m.validateOffers(f, acc.OfferIDs)
	}
	if invalid != "" {
		glog.Warningf("ACCEPT of framework %s used invalid offers: %s", f, invalid)
		for _, id := range acc.OfferIDs {
			if o := m.offers[id.Value]; o != nil {
				m.removeOffer(o)
			}
		}
		state := f.lostState(mesos.TASK_DROPPED)
		for _, op := range acc.Operations {
			if isStorageOperation(op.Type) {
				m.dropOperation(f, &op, "Operation attempted with invalid offers: "+invalid)
			}
			for _, t := range operationTasks(op) {
				aid := t.AgentID
				f.send(updateEvent(masterStatus(t.TaskID, state, "Task launched with invalid offers: "+invalid, mesos.REASON_INVALID_OFFERS, &aid, nil)))
			}
		}
		return
	}

	first := m.offers[acc.OfferIDs[0].Value]
	a, role := first.agent, first.role
	var offered mesos.Resources
	for _, id := range acc.OfferIDs {
		o := m.offers[id.Value]
		offered = append(offered, o.resources...)
		m.removeOffer(o)
	}
	remaining := sum(offered)
	glog.V(1).Infof("processing ACCEPT of offers %v on agent %s for framework %s", offerIDValues(acc.OfferIDs), a.id, f)

	// Master::accept checks every operation's resource format before
	// any of them runs.
	formatOK := make([]bool, len(acc.Operations))
	for i := range acc.Operations {
		op := &acc.Operations[i]
		if !isStorageOperation(op.Type) {
			formatOK[i] = true
			continue
		}
		// The offer's role goes into every resource that lacks one
		// before anything is checked, so messages show it.
		injectAllocation(operationResources(op), role)
		if err := validateOperationFormat(op); err != "" {
			m.dropOperation(f, op, "Operation attempted with invalid resources: "+err)
			continue
		}
		formatOK[i] = true
	}
	var converted mesos.Resources
	for i, op := range acc.Operations {
		if !formatOK[i] {
			continue
		}
		switch op.Type {
		case mesos.Offer_Operation_LAUNCH:
			remaining = m.launch(f, a, role, op, remaining)
		case mesos.Offer_Operation_LAUNCH_GROUP:
			remaining = m.launchGroup(f, a, role, op, remaining)
		case mesos.Offer_Operation_RESERVE, mesos.Offer_Operation_UNRESERVE, mesos.Offer_Operation_CREATE, mesos.Offer_Operation_DESTROY:
			var conv mesos.Resources
			remaining, conv = m.storageOperation(f, a, role, op, remaining)
			converted = append(converted, conv...)
		default:
			glog.Warningf("ignoring unknown operation in ACCEPT of framework %s", f)
		}
	}
	_, untouched := splitLeftovers(remaining, converted)
	m.declineResources(f, a, role, untouched, acc.Filters)
}

func offerIDValues(ids []mesos.OfferID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Value
	}
	return out
}

// operationTasks are the tasks of a LAUNCH or LAUNCH_GROUP.
func operationTasks(op mesos.Offer_Operation) []mesos.TaskInfo {
	switch op.Type {
	case mesos.Offer_Operation_LAUNCH:
		return op.GetLaunch().GetTaskInfos()
	case mesos.Offer_Operation_LAUNCH_GROUP:
		return op.GetLaunchGroup().GetTaskGroup().Tasks
	}
	return nil
}

// validateOffers is Mesos' offer validation: unique, outstanding, this
// framework's, one allocation role, one agent.
func (m *Master) validateOffers(f *framework, ids []mesos.OfferID) string {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id.Value] {
			return "Duplicate offer " + id.Value + " in offer list"
		}
		seen[id.Value] = true
	}
	for _, id := range ids {
		if m.offers[id.Value] == nil {
			return "Offer " + id.Value + " is no longer valid"
		}
	}
	for _, id := range ids {
		if o := m.offers[id.Value]; o.framework != f {
			return "Offer " + id.Value + " has invalid framework " + o.framework.id + " while framework " + f.id + " is expected"
		}
	}
	role := ""
	for i, id := range ids {
		o := m.offers[id.Value]
		if i == 0 {
			role = o.role
		} else if o.role != role {
			return "Aggregated offers must be allocated to the same role. Offer " + id.Value + " uses role '" + o.role + " but another is using role '" + role
		}
	}
	agentID := ""
	for i, id := range ids {
		o := m.offers[id.Value]
		if i == 0 {
			agentID = o.agent.id
		} else if o.agent.id != agentID {
			return "Aggregated offers must belong to one single agent. Offer " + id.Value + " uses agent " + o.agent.id + " and agent " + agentID
		}
	}
	return ""
}

// taskError sends TASK_ERROR for tasks the master refused.
func taskError(f *framework, tasks []mesos.TaskInfo, reason mesos.TaskStatus_Reason, msg string) {
	for _, t := range tasks {
		aid := t.AgentID
		glog.V(1).Infof("task %s of framework %s is invalid: %s", t.TaskID.Value, f, msg)
		f.send(updateEvent(masterStatus(t.TaskID, mesos.TASK_ERROR, msg, reason, &aid, nil)))
	}
}

// normalizeTask converts a task's (and its executor's) resources to the
// internal format with allocation_info injected, and fills the executor's
// framework_id, as the master does before validating.
func normalizeTask(f *framework, t *mesos.TaskInfo, role string, injectFrameworkID bool) string {
	rs, err := upgradeIncoming(t.Resources)
	if err != "" {
		return err
	}
	injectAllocation(rs, role)
	t.Resources = rs
	if t.Executor != nil {
		ers, err := upgradeIncoming(t.Executor.Resources)
		if err != "" {
			return err
		}
		injectAllocation(ers, role)
		t.Executor.Resources = ers
		if injectFrameworkID && t.Executor.FrameworkID == nil {
			t.Executor.FrameworkID = &mesos.FrameworkID{Value: f.id}
		}
	}
	return ""
}

// launch runs a LAUNCH operation: each valid task is launched on its own,
// each invalid one gets TASK_ERROR. It returns what is left of the offer.
func (m *Master) launch(f *framework, a *agent, role string, op mesos.Offer_Operation, remaining mesos.Resources) mesos.Resources {
	infos := op.GetLaunch().GetTaskInfos()
	if op.ID != nil {
		taskError(f, infos, mesos.REASON_TASK_INVALID, "The `id` field cannot be set on LAUNCH operations")
		return remaining
	}
	tasks := make([]mesos.TaskInfo, len(infos))
	for i := range infos {
		tasks[i] = *proto.Clone(&infos[i]).(*mesos.TaskInfo)
		err := validateResourceList(tasks[i].Resources)
		if err == "" && tasks[i].Executor != nil {
			err = validateResourceList(tasks[i].Executor.Resources)
		}
		if err != "" {
			// One invalid resource fails the whole operation.
			taskError(f, infos, mesos.REASON_TASK_INVALID, err)
			return remaining
		}
		if err := normalizeTask(f, &tasks[i], role, true); err != "" {
			taskError(f, infos, mesos.REASON_TASK_INVALID, err)
			return remaining
		}
	}
	for i := range tasks {
		t := &tasks[i]
		if err := m.validateTask(f, a, t, remaining); err != "" {
			taskError(f, []mesos.TaskInfo{infos[i]}, mesos.REASON_TASK_INVALID, err)
			continue
		}
		consumed := append(mesos.Resources(nil), t.Resources...)
		var executor *mesos.ExecutorInfo
		if t.Executor != nil {
			executor = proto.Clone(t.Executor).(*mesos.ExecutorInfo)
			if !a.hasExecutor(f.id, t.Executor.ExecutorID.Value) {
				m.addExecutor(a, f, proto.Clone(t.Executor).(*mesos.ExecutorInfo))
				consumed = append(consumed, t.Executor.Resources...)
			}
		}
		m.addTask(a, f, newTask(f, a, t))
		remaining = minus(remaining, consumed)
		glog.V(1).Infof("launching task %s of framework %s with %s on agent %s", t.TaskID.Value, f, formatResources(t.Resources), a.id)
		a.handle.RunTask(f.info, executor, *t)
	}
	return remaining
}

// launchGroup runs a LAUNCH_GROUP: all tasks or none.
func (m *Master) launchGroup(f *framework, a *agent, role string, op mesos.Offer_Operation, remaining mesos.Resources) mesos.Resources {
	lg := op.GetLaunchGroup()
	if lg == nil {
		return remaining
	}
	infos := lg.TaskGroup.Tasks
	if op.ID != nil {
		taskError(f, infos, mesos.REASON_TASK_GROUP_INVALID, "The `id` field cannot be set on LAUNCH_GROUP operations")
		return remaining
	}
	executor := *proto.Clone(&lg.Executor).(*mesos.ExecutorInfo)
	if err := validateResourceList(executor.Resources); err != "" {
		taskError(f, infos, mesos.REASON_TASK_GROUP_INVALID, err)
		return remaining
	}
	ers, msg := upgradeIncoming(executor.Resources)
	if msg != "" {
		taskError(f, infos, mesos.REASON_TASK_GROUP_INVALID, msg)
		return remaining
	}
	injectAllocation(ers, role)
	executor.Resources = ers
	tasks := make([]mesos.TaskInfo, len(infos))
	for i := range infos {
		tasks[i] = *proto.Clone(&infos[i]).(*mesos.TaskInfo)
		if err := validateResourceList(tasks[i].Resources); err != "" {
			taskError(f, infos, mesos.REASON_TASK_GROUP_INVALID, err)
			return remaining
		}
		if tasks[i].Executor == nil {
			// The master records the group's executor in each task.
			tasks[i].Executor = proto.Clone(&lg.Executor).(*mesos.ExecutorInfo)
		}
		if err := normalizeTask(f, &tasks[i], role, false); err != "" {
			taskError(f, infos, mesos.REASON_TASK_GROUP_INVALID, err)
			return remaining
		}
	}
	if msg := m.validateTaskGroup(f, a, tasks, &executor, remaining); msg != "" {
		taskError(f, infos, mesos.REASON_TASK_GROUP_INVALID, msg)
		return remaining
	}
	var consumed mesos.Resources
	if !a.hasExecutor(f.id, executor.ExecutorID.Value) {
		m.addExecutor(a, f, proto.Clone(&executor).(*mesos.ExecutorInfo))
		consumed = append(consumed, executor.Resources...)
	}
	group := mesos.TaskGroupInfo{Tasks: tasks}
	var ids []string
	for i := range tasks {
		consumed = append(consumed, tasks[i].Resources...)
		m.addTask(a, f, newTask(f, a, &tasks[i]))
		ids = append(ids, tasks[i].TaskID.Value)
	}
	remaining = minus(remaining, consumed)
	glog.V(1).Infof("launching task group %v of framework %s on agent %s", ids, f, a.id)
	a.handle.RunTaskGroup(f.info, executor, group)
	return remaining
}

// newTask is the master's record of a launched task, in TASK_STAGING.
func newTask(f *framework, a *agent, t *mesos.TaskInfo) *mesos.Task {
	task := &mesos.Task{
		Name:        t.Name,
		TaskID:      t.TaskID,
		FrameworkID: mesos.FrameworkID{Value: f.id},
		AgentID:     mesos.AgentID{Value: a.id},
		State:       mesos.TASK_STAGING.Enum(),
		Resources:   append([]mesos.Resource(nil), t.Resources...),
		Labels:      t.Labels,
		Discovery:   t.Discovery,
		Container:   t.Container,
		HealthCheck: t.HealthCheck,
		KillPolicy:  t.KillPolicy,
	}
	if t.Executor != nil {
		id := t.Executor.ExecutorID
		task.ExecutorID = &id
	}
	if f.info.User != "" {
		task.User = proto.String(f.info.User)
	}
	if t.Command != nil && t.Command.User != nil {
		task.User = proto.String(t.Command.GetUser())
	}
	return task
}

// validateResourceList is Resources::validate, with Mesos' message.
func validateResourceList(rs []mesos.Resource) string {
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return "Invalid resource " + formatResource(rs[i]) + ": " + err.Error()
		}
		if rs[i].Role != nil && len(rs[i].Reservations) > 0 && rs[i].GetRole() != "*" {
			return "Invalid resource " + formatResource(rs[i]) + ": 'role' and 'reservations' must not both be set"
		}
	}
	return ""
}

// resourceProblems are the per-collection checks of Mesos' task and
// executor resource validation.
func resourceProblems(rs []mesos.Resource) (singleRole, revocable string) {
	role, haveRole := "", false
	for i := range rs {
		r := rs[i].GetAllocationInfo().GetRole()
		if rs[i].AllocationInfo == nil || rs[i].AllocationInfo.Role == nil {
			singleRole = "The resources are not allocated to a role"
			break
		}
		if !haveRole {
			role, haveRole = r, true
		} else if r != role {
			singleRole = "The resources have multiple allocation roles ('" + r + "' and '" + role + "') but only one allocation role is allowed"
			break
		}
	}
	rev, nonRev := map[string]bool{}, map[string]bool{}
	for i := range rs {
		if rs[i].Revocable != nil {
			rev[rs[i].Name] = true
		} else {
			nonRev[rs[i].Name] = true
		}
	}
	for name := range rev {
		if nonRev[name] {
			revocable = "Cannot use both revocable and non-revocable '" + name + "' at the same time"
		}
	}
	return singleRole, revocable
}

// validateTaskFields is Mesos' task::internal::validateTask: the checks
// shared by LAUNCH and LAUNCH_GROUP.
func (m *Master) validateTaskFields(f *framework, a *agent, t *mesos.TaskInfo) string {
	if err := validateID(t.TaskID.Value); err != "" {
		return err
	}
	if _, ok := f.tasks[t.TaskID.Value]; ok {
		return "Task has duplicate ID: " + t.TaskID.Value
	}
	if _, ok := f.unreachableTasks[t.TaskID.Value]; ok {
		return "Task reuses the ID of an unreachable task: " + t.TaskID.Value
	}
	if t.AgentID.Value != a.id {
		return "Task uses invalid agent " + t.AgentID.Value + " while agent " + a.id + " is expected"
	}
	if kp := t.KillPolicy; kp != nil && kp.GracePeriod != nil && kp.GracePeriod.Nanoseconds < 0 {
		return "Task's 'kill_policy.grace_period' must be non-negative"
	}
	if mct := t.MaxCompletionTime; mct != nil && mct.Nanoseconds < 0 {
		return "Task's `max_completion_time` must be non-negative"
	}
	if len(t.Resources) == 0 {
		return "Task uses no resources"
	}
	single, rev := resourceProblems(t.Resources)
	if single != "" {
		return "Invalid task resources: " + single
	}
	if rev != "" {
		return "Task mixes revocable and non-revocable resources: " + rev
	}
	if t.Command != nil {
		if err := validateEnvironment(t.Command.Environment); err != "" {
			return "Task's `CommandInfo` is invalid: " + err
		}
	}
	if len(t.Limits) > 0 {
		cpuLimit, hasCPU := t.Limits["cpus"]
		memLimit, hasMem := t.Limits["mem"]
		n := 0
		if hasCPU {
			n++
		}
		if hasMem {
			n++
		}
		if len(t.Limits) > n {
			return "Only cpus and mem may be included in a task's resource limits"
		}
		if hasCPU {
			cpus, ok := scalar(t.Resources, "cpus")
			if !ok {
				return "When a CPU limit is specified, a CPU request must also be specified"
			}
			if cpuLimit.GetValue() < cpus {
				return "The cpu limit must be greater than or equal to the cpu request"
			}
		}
		if hasMem {
			mem, ok := scalar(t.Resources, "mem")
			if !ok {
				return "When a memory limit is specified, a memory request must also be specified"
			}
			if v := memLimit.GetValue(); v < mem && v == v && v < 1e308 {
				return "The memory limit must be greater than or equal to the memory request"
			}
		}
	}
	return ""
}

// validateEnvironment is Mesos' CommandInfo validation.
func validateEnvironment(env *mesos.Environment) string {
	if env == nil {
		return ""
	}
	for _, v := range env.Variables {
		switch v.GetType() {
		case mesos.Environment_Variable_SECRET:
			if v.Secret == nil {
				return "Environment variable '" + v.Name + "' of type 'SECRET' must have a secret set"
			}
			if v.Value != nil {
				return "Environment variable '" + v.Name + "' of type 'SECRET' must not have a value set"
			}
		case mesos.Environment_Variable_VALUE:
			if v.Value == nil {
				return "Environment variable '" + v.Name + "' of type 'VALUE' must have a value set"
			}
			if v.Secret != nil {
				return "Environment variable '" + v.Name + "' of type 'VALUE' must not have a secret set"
			}
		default:
			return "Environment variable of type 'UNKNOWN' is not allowed"
		}
	}
	return ""
}

// validateExecutorInfo is executor::internal::validate: the checks of an
// ExecutorInfo for both LAUNCH and LAUNCH_GROUP.
func (m *Master) validateExecutorInfo(f *framework, a *agent, e *mesos.ExecutorInfo) string {
	switch e.Type {
	case mesos.ExecutorInfo_DEFAULT:
		if e.Command != nil {
			return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
		}
		if c := e.Container; c != nil {
			if c.GetType() != mesos.ContainerInfo_MESOS {
				return "'ExecutorInfo.container.type' must be 'MESOS' for 'DEFAULT' executor"
			}
			if c.Mesos != nil && c.Mesos.Image != nil {
				return "'ExecutorInfo.container.mesos.image' must not be set for 'DEFAULT' executor"
			}
		}
	case mesos.ExecutorInfo_CUSTOM:
		if e.Command == nil {
			return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
		}
	}
	if err := validateID(e.ExecutorID.Value); err != "" {
		return err
	}
	if g := e.ShutdownGracePeriod; g != nil && g.Nanoseconds < 0 {
		return "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
	}
	if e.Command != nil {
		if err := validateEnvironment(e.Command.Environment); err != "" {
			return "Executor's `CommandInfo` is invalid: " + err
		}
	}
	if e.FrameworkID == nil {
		return "'ExecutorInfo.framework_id' must be set"
	}
	if e.FrameworkID.Value != f.id {
		return "ExecutorInfo has an invalid FrameworkID (Actual: " + e.FrameworkID.Value + " vs Expected: " + f.id + ")"
	}
	single, rev := resourceProblems(e.Resources)
	if single != "" {
		return "Invalid executor resources: " + single
	}
	if rev != "" {
		return "Executor mixes revocable and non-revocable resources: " + rev
	}
	if existing, ok := a.executors[f.id][e.ExecutorID.Value]; ok && !sameExecutor(existing, e) {
		return "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n" +
			"------------------------------------------------------------\n" +
			"Existing ExecutorInfo:\n" + proto.CompactTextString(existing) + "\n" +
			"------------------------------------------------------------\n" +
			"ExecutorInfo:\n" + proto.CompactTextString(e) + "\n" +
			"------------------------------------------------------------\n"
	}
	return ""
}

// sameExecutor is Mesos' ExecutorInfo equality: resources compared as
// collections; labels and shutdown_grace_period do not count.
func sameExecutor(a, b *mesos.ExecutorInfo) bool {
	if !containsAll(a.Resources, b.Resources) || !containsAll(b.Resources, a.Resources) {
		return false
	}
	x := proto.Clone(a).(*mesos.ExecutorInfo)
	y := proto.Clone(b).(*mesos.ExecutorInfo)
	x.Resources, y.Resources = nil, nil
	x.Labels, y.Labels = nil, nil
	x.ShutdownGracePeriod, y.ShutdownGracePeriod = nil, nil
	return proto.Equal(x, y)
}

// validateTask is Mesos' task validation for LAUNCH. available is what the
// earlier operations of the ACCEPT left.
func (m *Master) validateTask(f *framework, a *agent, t *mesos.TaskInfo, available mesos.Resources) string {
	if err := m.validateTaskFields(f, a, t); err != "" {
		return err
	}
	if (t.Executor != nil) == (t.Command != nil) {
		return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
	}
	total := append(mesos.Resources(nil), t.Resources...)
	if e := t.Executor; e != nil {
		if err := m.validateExecutorInfo(f, a, e); err != "" {
			return err
		}
		if e.Type != mesos.ExecutorInfo_CUSTOM && e.Type != mesos.ExecutorInfo_UNKNOWN {
			return "'ExecutorInfo.type' must be 'CUSTOM'"
		}
		if e.Command == nil {
			return "'ExecutorInfo.command' must be set"
		}
		cpus, hasCPUs := scalar(e.Resources, "cpus")
		mem, hasMem := scalar(e.Resources, "mem")
		if !hasCPUs || cpus < minCPUs || !hasMem || mem < minMem {
			glog.Warningf("executor %s of task %s of framework %s uses less than the minimum of %v cpus and %v MB mem; this will be mandatory in future Mesos releases", e.ExecutorID.Value, t.TaskID.Value, f, minCPUs, minMem)
		}
		if !a.hasExecutor(f.id, e.ExecutorID.Value) {
			total = append(total, e.Resources...)
		}
	}
	if _, rev := resourceProblems(total); rev != "" {
		return "Task and its executor mix revocable and non-revocable resources: " + rev
	}
	if !containsAll(available, total) {
		return "Total resources " + formatResources(sum(total)) + " required by task and its executor is more than available " + formatResources(available)
	}
	return ""
}

// validateTaskGroup is Mesos' task::group::validate.
func (m *Master) validateTaskGroup(f *framework, a *agent, tasks []mesos.TaskInfo, e *mesos.ExecutorInfo, available mesos.Resources) string {
	if len(tasks) == 0 {
		return "Task group is empty"
	}
	seen := map[string]bool{}
	for i := range tasks {
		t := &tasks[i]
		err := m.validateTaskFields(f, a, t)
		if err == "" && seen[t.TaskID.Value] {
			err = "Task has duplicate ID: " + t.TaskID.Value
		}
		if err == "" && t.Container != nil && t.Container.GetType() == mesos.ContainerInfo_DOCKER {
			err = "Docker ContainerInfo is not supported on the task"
		}
		if err != "" {
			return "Task '" + t.TaskID.Value + "' is invalid: " + err
		}
		seen[t.TaskID.Value] = true
	}
	if err := m.validateExecutorInfo(f, a, e); err != "" {
		return err
	}
	if e.Type == mesos.ExecutorInfo_UNKNOWN {
		return "'ExecutorInfo.type' must be set"
	}
	if e.Container != nil && e.Container.GetType() == mesos.ContainerInfo_DOCKER {
		return "Docker ContainerInfo is not supported on the executor"
	}
	for i := range tasks {
		if !sameExecutor(tasks[i].Executor, e) {
			return "The `ExecutorInfo` of task '" + tasks[i].TaskID.Value + "' is different from executor '" + e.ExecutorID.Value + "'"
		}
	}
	if cpus, ok := scalar(e.Resources, "cpus"); !ok || cpus < minCPUs {
		return fmt.Sprintf("Executor '%s' uses less CPUs (%s) than the minimum required (0.01)", e.ExecutorID.Value, optionalScalar(cpus, ok, ""))
	}
	if mem, ok := scalar(e.Resources, "mem"); !ok || mem < minMem {
		return fmt.Sprintf("Executor '%s' uses less memory (%s) than the minimum required (32MB)", e.ExecutorID.Value, optionalScalar(mem, ok, "MB"))
	}
	if _, ok := scalar(e.Resources, "disk"); !ok {
		return "Executor '" + e.ExecutorID.Value + "' uses no disk"
	}
	total := append(mesos.Resources(nil), e.Resources...)
	for i := range tasks {
		total = append(total, tasks[i].Resources...)
	}
	if _, rev := resourceProblems(total); rev != "" {
		return "Task group and executor mix revocable and non-revocable resources: " + rev
	}
	need := mesos.Resources(nil)
	for i := range tasks {
		need = append(need, tasks[i].Resources...)
	}
	if !a.hasExecutor(f.id, e.ExecutorID.Value) {
		need = append(need, e.Resources...)
	}
	if !containsAll(available, need) {
		return "Total resources " + formatResources(sum(need)) + " required by task group and its executor are more than available " + formatResources(available)
	}
	if e.Command != nil {
		if err := validateEnvironment(e.Command.Environment); err != "" {
			return "Executor '" + e.ExecutorID.Value + "'contains an invalid command: " + err
		}
	}
	return ""
}

func optionalScalar(v float64, ok bool, unit string) string {
	if !ok {
		return "None"
	}
	return strings.TrimSpace(formatScalar(v) + unit)
}
