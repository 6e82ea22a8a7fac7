package master

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// framework is a framework known to the master.
type framework struct {
	id   string
	info mesos.FrameworkInfo

	roles      []string // sorted
	suppressed map[string]bool
	multiRole  bool
	partition  bool // PARTITION_AWARE
	refinement bool // RESERVATION_REFINEMENT
	gpu        bool // GPU_RESOURCES

	// stream is the current subscription; nil while disconnected.
	stream *stream
	// recovered: learnt from a re-registering agent after a master
	// failover, not yet re-subscribed.
	recovered bool

	tasks            map[string]*mesos.Task
	unreachableTasks map[string]*mesos.Task
	completedTasks   []*mesos.Task
	// executors by agent ID and executor ID (custom executors only).
	executors map[string]map[string]*mesos.ExecutorInfo
	offers    map[string]*offer
	// filters by role and agent ID.
	filters map[string]map[string][]*offerFilter
	// allocations counts offers made per role: the DRF tie-breaker.
	allocations map[string]int

	registeredTime   time.Time
	reregisteredTime time.Time
	unregisteredTime time.Time
	// failoverGen identifies the disconnection a failover timer was set
	// for; any re-subscription makes older timers void.
	failoverGen int
}

func newFramework(info mesos.FrameworkInfo) *framework {
	now := time.Now()
	f := &framework{
		id:               info.GetID().GetValue(),
		tasks:            map[string]*mesos.Task{},
		unreachableTasks: map[string]*mesos.Task{},
		executors:        map[string]map[string]*mesos.ExecutorInfo{},
		offers:           map[string]*offer{},
		filters:          map[string]map[string][]*offerFilter{},
		suppressed:       map[string]bool{},
		allocations:      map[string]int{},
		registeredTime:   now,
		reregisteredTime: now,
	}
	f.setInfo(info)
	return f
}

func (f *framework) setInfo(info mesos.FrameworkInfo) {
	f.info = info
	f.multiRole, f.partition, f.refinement, f.gpu = false, false, false, false
	for _, c := range info.Capabilities {
		switch c.GetType() {
		case mesos.FrameworkInfo_Capability_MULTI_ROLE:
			f.multiRole = true
		case mesos.FrameworkInfo_Capability_PARTITION_AWARE:
			f.partition = true
		case mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT:
			f.refinement = true
		case mesos.FrameworkInfo_Capability_GPU_RESOURCES:
			f.gpu = true
		}
	}
	f.roles = frameworkRoles(info)
}

// frameworkRoles are the roles a framework subscribes to: roles[] with
// MULTI_ROLE, else role (default "*").
func frameworkRoles(info mesos.FrameworkInfo) []string {
	var roles []string
	if hasCapability(info, mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		seen := map[string]bool{}
		for _, r := range info.Roles {
			if !seen[r] {
				seen[r] = true
				roles = append(roles, r)
			}
		}
	} else {
		roles = []string{info.GetRole()}
	}
	sort.Strings(roles)
	return roles
}

func hasCapability(info mesos.FrameworkInfo, c mesos.FrameworkInfo_Capability_Type) bool {
	for _, x := range info.Capabilities {
		if x.GetType() == c {
			return true
		}
	}
	return false
}

func (f *framework) hasRole(role string) bool {
	for _, r := range f.roles {
		if r == role {
			return true
		}
	}
	return false
}

func (f *framework) connected() bool { return f.stream != nil }

// send delivers an event if the framework is connected; Mesos drops
// events for disconnected frameworks (agents retry status updates).
func (f *framework) send(ev *scheduler.Event) {
	if f.stream != nil {
		f.stream.send(ev)
	}
}

func (f *framework) String() string {
	return fmt.Sprintf("%s (%s)", f.id, f.info.Name)
}

// lostState is TASK_LOST for frameworks that are not PARTITION_AWARE,
// which do not know the newer states.
func (f *framework) lostState(partitionAware mesos.TaskState) mesos.TaskState {
	if f.partition {
		return partitionAware
	}
	return mesos.TASK_LOST
}

// subscribe handles a SUBSCRIBE whose HTTP answer (200 and headers) has
// already gone out on s. Refusals are an ERROR event and the stream's end.
func (m *Master) subscribe(s *stream, sub *scheduler.Call_Subscribe) {
	info := *proto.Clone(sub.FrameworkInfo).(*mesos.FrameworkInfo)
	refuse := func(msg string) {
		glog.Infof("refusing subscription of framework %q: %s", info.Name, msg)
		s.send(errorEvent(msg))
		s.close()
	}
	if err := m.validateFrameworkInfo(info); err != "" {
		refuse(err)
		return
	}
	if err := validateSuppressedRoles(frameworkRoles(info), sub.SuppressedRoles); err != "" {
		refuse(err)
		return
	}

	if info.GetID().GetValue() == "" {
		info.ID = &mesos.FrameworkID{Value: fmt.Sprintf("%s-%04d", m.id, m.nextFramework)}
		m.nextFramework++
		f := newFramework(info)
		f.setSuppressed(sub.SuppressedRoles)
		m.frameworks[f.id] = f
		m.connect(f, s)
		glog.Infof("framework %s subscribed (roles %v, checkpoint %v, capabilities %v)", f, f.roles, info.GetCheckpoint(), capabilityNames(info))
		m.allocateSoon()
		return
	}

	id := info.GetID().GetValue()
	f := m.frameworks[id]
	if f == nil {
		// Unknown to this master (it failed over, and no agent running
		// the framework's tasks has re-registered yet): recover it from
		// what the scheduler sends.
		f = newFramework(info)
		f.recovered = true
		m.frameworks[id] = f
		glog.Infof("recovering framework %s from its SUBSCRIBE", f)
	}
	// user and checkpoint cannot change; Mesos silently keeps the old.
	info.User = f.info.User
	info.Checkpoint = f.info.Checkpoint
	if f.info.GetPrincipal() != info.GetPrincipal() || (f.info.Principal == nil) != (info.Principal == nil) {
		refuse("Changing framework's principal is not allowed.")
		return
	}
	m.updateFramework(f, info, sub.SuppressedRoles)
	f.reregisteredTime = time.Now()
	f.failoverGen++
	if f.recovered {
		f.recovered = false
		f.registeredTime = f.reregisteredTime
		glog.Infof("framework %s re-subscribed after master failover", f)
	} else {
		if f.stream != nil {
			// Only one subscription per framework: the old one hears
			// why it ends.
			f.stream.send(errorEvent("Framework failed over"))
			f.stream.close()
			glog.Infof("framework %s failed over to a new subscription", f)
		} else {
			glog.Infof("framework %s re-subscribed", f)
		}
		// Offers of the old subscription are gone, without RESCIND.
		for _, o := range sortedOffers(f.offers) {
			m.removeOffer(o)
		}
	}
	m.connect(f, s)
	// Agents resend pending status updates at once (Mesos sends them the
	// new FrameworkInfo, which resumes their status update streams).
	for _, a := range m.sortedAgents() {
		if a.connected {
			a.handle.UpdateFramework(f.info)
		}
	}
	m.allocateSoon()
}

// connect attaches a subscription and sends SUBSCRIBED and the first
// HEARTBEAT.
func (m *Master) connect(f *framework, s *stream) {
	s.frameworkID = f.id
	f.stream = s
	id := mesos.FrameworkID{Value: f.id}
	info := m.info
	s.send(&scheduler.Event{
		Type: scheduler.Event_SUBSCRIBED,
		Subscribed: &scheduler.Event_Subscribed{
			FrameworkID:              &id,
			HeartbeatIntervalSeconds: proto.Float64(m.cfg.HeartbeatInterval.Seconds()),
			MasterInfo:               &info,
		},
	})
	hb := heartbeatEvent
	s.send(&hb)
}

// updateFramework applies a (re-)subscription's or UPDATE_FRAMEWORK's
// FrameworkInfo: offers for roles the framework left are rescinded, and
// the suppressed roles are replaced.
func (m *Master) updateFramework(f *framework, info mesos.FrameworkInfo, suppressed []string) {
	f.setInfo(info)
	for _, o := range sortedOffers(f.offers) {
		if !f.hasRole(o.role) {
			m.rescindOffer(o)
		}
	}
	for role := range f.filters {
		if !f.hasRole(role) {
			delete(f.filters, role)
		}
	}
	f.setSuppressed(suppressed)
}

// setSuppressed replaces the suppressed roles; roles that stop being
// suppressed are revived, which also clears their refusal filters (as the
// Mesos allocator's updateFramework does).
func (f *framework) setSuppressed(roles []string) {
	old := f.suppressed
	f.suppressed = map[string]bool{}
	for _, r := range roles {
		f.suppressed[r] = true
	}
	for r := range old {
		if !f.suppressed[r] {
			delete(f.filters, r)
		}
	}
}

// validateFrameworkInfo is Mesos' validateFramework: roles, framework ID,
// failover timeout, and frameworks that were removed. It returns "" when
// the FrameworkInfo is acceptable.
func (m *Master) validateFrameworkInfo(info mesos.FrameworkInfo) string {
	multiRole := hasCapability(info, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	if multiRole {
		if info.Role != nil {
			return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
		}
		seen, dup := map[string]bool{}, map[string]bool{}
		for _, r := range info.Roles {
			if seen[r] {
				dup[r] = true
			}
			seen[r] = true
		}
		if len(dup) > 0 {
			return "'FrameworkInfo.roles' contains duplicate items: " + stringSet(dup)
		}
		for _, r := range info.Roles {
			if err := validateRole(r); err != "" {
				return "'FrameworkInfo.roles' contains invalid role: " + err
			}
		}
	} else {
		if len(info.Roles) > 0 {
			return "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
		}
		if err := validateRole(info.GetRole()); err != "" {
			return "'FrameworkInfo.role' is not a valid role: " + err
		}
	}
	if id := info.GetID().GetValue(); id != "" {
		if err := validateID(id); err != "" {
			return err
		}
	}
	if t := info.GetFailoverTimeout(); math.IsNaN(t) || math.IsInf(t, 0) || math.Abs(t*1e9) > math.MaxInt64 {
		return fmt.Sprintf("The framework failover_timeout (%v) is invalid", t)
	}
	// --root_submissions is true by default, so user root is allowed.
	if id := info.GetID().GetValue(); id != "" && m.completedIDs[id] {
		return "Framework has been removed"
	}
	return ""
}

func validateSuppressedRoles(roles, suppressed []string) string {
	bad := map[string]bool{}
	for _, s := range suppressed {
		found := false
		for _, r := range roles {
			if r == s {
				found = true
			}
		}
		if !found {
			bad[s] = true
		}
	}
	if len(bad) > 0 {
		return "Suppressed roles " + stringSet(bad) + " are not contained in the set of roles"
	}
	return ""
}

// stringSet renders a set as stout's stringify does: "{ a, b }".
func stringSet(set map[string]bool) string {
	items := make([]string, 0, len(set))
	for k := range set {
		items = append(items, k)
	}
	sort.Strings(items)
	return "{ " + strings.Join(items, ", ") + " }"
}

// validateRole is Mesos' roles::validate.
func validateRole(role string) string {
	if role == "*" {
		return ""
	}
	if strings.HasPrefix(role, "/") {
		return "Role '" + role + "' cannot start with a slash"
	}
	if strings.HasSuffix(role, "/") {
		return "Role '" + role + "' cannot end with a slash"
	}
	if strings.Contains(role, "//") {
		return "Role '" + role + "' cannot contain two adjacent slashes"
	}
	var parts []string
	for _, p := range strings.Split(role, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "Role names cannot be the empty string"
	}
	for _, p := range parts {
		switch {
		case p == ".":
			return "Role '" + role + "' cannot include '.' as a component"
		case p == "..":
			return "Role '" + role + "' cannot include '..' as a component"
		case p == "*":
			return "Role '" + role + "' cannot include '*' as a component"
		case strings.HasPrefix(p, "-"):
			return "Role component '" + p + "' is invalid because it starts with a dash"
		case strings.ContainsAny(p, "\x09\x0a\x0b\x0c\x0d\x20\x7f"):
			return "Role component '" + p + "' is invalid because it contains backspace or whitespace"
		}
	}
	return ""
}

// validateID is Mesos' common ID validation (task, executor, framework).
func validateID(id string) string {
	if id == "" {
		return "ID must not be empty"
	}
	if len(id) > 255 {
		return "ID must not be greater than 255 characters"
	}
	if id == "." || id == ".." {
		return "'" + id + "' is disallowed"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x20 || c == 0x7f || c == '/' || c == '\\' {
			return "'" + id + "' contains invalid characters"
		}
	}
	return ""
}

func capabilityNames(info mesos.FrameworkInfo) []string {
	var out []string
	for _, c := range info.Capabilities {
		out = append(out, c.GetType().String())
	}
	return out
}

// streamGone is the end of a subscription's connection. It matters only
// if it is still the framework's current one.
func (m *Master) streamGone(s *stream) {
	f := m.frameworks[s.frameworkID]
	if f == nil || f.stream != s {
		return
	}
	glog.Infof("framework %s disconnected", f)
	m.disconnect(f)
}

// disconnect makes a framework inactive: its offers go away silently (it
// cannot hear a RESCIND), its filters are dropped, and failover_timeout
// starts; when it expires the framework is removed and its tasks are
// killed.
func (m *Master) disconnect(f *framework) {
	f.stream = nil
	for _, o := range sortedOffers(f.offers) {
		m.removeOffer(o)
	}
	// An inactive framework loses its refusal filters (Mesos' allocator
	// clears them on deactivation), so a re-subscription gets offers at
	// once.
	f.filters = map[string]map[string][]*offerFilter{}
	f.failoverGen++
	gen, mgen := f.failoverGen, m.generation
	timeout := time.Duration(f.info.GetFailoverTimeout() * float64(time.Second))
	glog.Infof("giving framework %s %v to fail over", f, timeout)
	expire := func() {
		if m.generation != mgen {
			return
		}
		if cur := m.frameworks[f.id]; cur == f && !f.connected() && f.failoverGen == gen {
			glog.Infof("framework %s failover timeout expired, removing it", f)
			m.removeFramework(f)
		}
	}
	if timeout <= 0 {
		m.post(expire)
		return
	}
	m.after(timeout, expire)
}

// removeFramework tears a framework down (TEARDOWN or failover timeout):
// agents shut its executors down, its tasks are marked TASK_KILLED without
// telling the scheduler, its resources are free at once, and its ID can
// never subscribe again.
func (m *Master) removeFramework(f *framework) {
	glog.Infof("removing framework %s", f)
	for _, o := range sortedOffers(f.offers) {
		m.removeOffer(o)
	}
	for _, a := range m.sortedAgents() {
		a.handle.ShutdownFramework(mesos.FrameworkID{Value: f.id})
	}
	for _, t := range sortedTasks(f.tasks) {
		st := masterStatus(t.TaskID, mesos.TASK_KILLED, "Framework "+f.id+" removed", mesos.REASON_FRAMEWORK_REMOVED, &t.AgentID, t.ExecutorID)
		m.updateTask(t, st, nil)
		m.removeTask(t, false)
	}
	for _, t := range sortedTasks(f.unreachableTasks) {
		st := masterStatus(t.TaskID, mesos.TASK_KILLED, "Framework "+f.id+" removed", mesos.REASON_FRAMEWORK_REMOVED, &t.AgentID, t.ExecutorID)
		m.updateTask(t, st, nil)
		delete(f.unreachableTasks, t.TaskID.Value)
		f.addCompletedTask(t)
	}
	for agentID, execs := range f.executors {
		for execID := range execs {
			m.removeExecutor(agentID, f.id, execID)
		}
	}
	if f.stream != nil {
		f.stream.close()
		f.stream = nil
	}
	f.failoverGen++
	f.unregisteredTime = time.Now()
	delete(m.frameworks, f.id)
	m.completedIDs[f.id] = true
	m.completed = append(m.completed, f)
	if len(m.completed) > maxCompletedFrameworks {
		m.completed = m.completed[1:]
	}
}

func (f *framework) addCompletedTask(t *mesos.Task) {
	f.completedTasks = append(f.completedTasks, t)
	if len(f.completedTasks) > maxCompletedTasks {
		f.completedTasks = f.completedTasks[1:]
	}
}

func sortedTasks(m map[string]*mesos.Task) []*mesos.Task {
	out := make([]*mesos.Task, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID.Value < out[j].TaskID.Value })
	return out
}

func (m *Master) sortedFrameworks() []*framework {
	out := make([]*framework, 0, len(m.frameworks))
	for _, f := range m.frameworks {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
