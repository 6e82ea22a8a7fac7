package master

import (
	"bytes"
	"sort"
	"strings"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Storage operations: RESERVE, UNRESERVE, CREATE and DESTROY, from an
// ACCEPT (Master::_accept) or from the operator endpoints, with Mesos'
// validation texts and operation feedback. The master applies them to its
// view of the agent at once (Mesos' speculative apply) and sends them to
// the agent, which creates or removes volume directories and checkpoints
// its reservations and volumes; OPERATION_FINISHED comes back from the
// agent and is re-sent to the framework until acknowledged.

// isStorageOperation reports whether localmesos implements op's type here.
func isStorageOperation(t mesos.Offer_Operation_Type) bool {
	switch t {
	case mesos.Offer_Operation_RESERVE, mesos.Offer_Operation_UNRESERVE, mesos.Offer_Operation_CREATE, mesos.Offer_Operation_DESTROY:
		return true
	}
	return false
}

// trackedOperation is an operation with an ID whose feedback the framework
// has not acknowledged yet (Mesos' framework->operations).
type trackedOperation struct {
	frameworkID string
	agentID     string
	status      mesos.OperationStatus // latest
	retry       time.Duration
	timer       *time.Timer
}

// operationResources are the resources an operation names, in the order
// Mesos validates them.
func operationResources(op *mesos.Offer_Operation) []mesos.Resource {
	switch op.Type {
	case mesos.Offer_Operation_RESERVE:
		return op.GetReserve().GetResources()
	case mesos.Offer_Operation_UNRESERVE:
		return op.GetUnreserve().GetResources()
	case mesos.Offer_Operation_CREATE:
		return op.GetCreate().GetVolumes()
	case mesos.Offer_Operation_DESTROY:
		return op.GetDestroy().GetVolumes()
	}
	return nil
}

// validateOperationFormat is the format check of Master::accept
// (Resources::validate and the upgrade to the refinement format); ""
// means valid.
func validateOperationFormat(op *mesos.Offer_Operation) string {
	if op.Type == mesos.Offer_Operation_RESERVE && len(op.GetReserve().GetSource()) > 0 {
		return "Reservation updates are not yet implemented for the scheduler API."
	}
	for _, r := range operationResources(op) {
		if err := validateResourceFormat(r); err != "" {
			return "Resource '" + formatResource(r) + "' is invalid: " + err
		}
	}
	return ""
}

// validateResourceFormat is Resources::validate for one resource, for the
// reservation formats.
func validateResourceFormat(r mesos.Resource) string {
	if len(r.Reservations) == 0 {
		if err := validateRole(r.GetRole()); err != "" {
			return err
		}
		if r.Reservation != nil && r.GetRole() == "*" {
			return `Invalid reservation: role "*" cannot be dynamically reserved`
		}
		return validateResourceValue(r)
	}
	for _, ri := range r.Reservations {
		if err := validateRole(ri.GetRole()); err != "" {
			return err
		}
		if ri.GetRole() == "*" {
			return `Invalid reservation: role "*" cannot be reserved`
		}
	}
	if len(r.Reservations) > 1 {
		return "refined reservations (more than one entry in 'reservations') are not supported by localmesos"
	}
	if r.Role != nil && r.GetRole() != r.Reservations[0].GetRole() {
		return "Invalid resource format: 'Resource.role' field with '" + r.GetRole() + "' does not match the role '" + r.Reservations[0].GetRole() + "' in 'Resource.reservations'"
	}
	return validateResourceValue(r)
}

// validateResourceValue is the rest of Resources::validate (name, type,
// value), in mesos-go's words.
func validateResourceValue(r mesos.Resource) string {
	if err := r.Validate(); err != nil {
		return err.Error()
	}
	return ""
}

// upgradeOperation converts the operation's resources to the internal
// format and injects the offer's allocation role where it is missing.
func upgradeOperation(op *mesos.Offer_Operation, role string) (mesos.Resources, string) {
	rs, err := upgradeIncoming(operationResources(op))
	if err != "" {
		return nil, err
	}
	if role != "" {
		injectAllocation(rs, role)
	}
	return rs, ""
}

// agentSuffix ends the messages Master::_accept raises: "; on agent ID at
// slave(1)@ip:port (hostname)".
func agentSuffix(a *agent) string {
	return "; on agent " + a.id + " at " + a.pid() + " (" + a.hostname() + ")"
}

func isDynamicallyReserved(r *mesos.Resource) bool {
	return r.GetRole() != "*" && r.Reservation != nil
}

// validateDiskInfo is resource::validateDiskInfo.
func validateDiskInfo(rs []mesos.Resource) string {
	for i := range rs {
		d := rs[i].Disk
		if d == nil {
			continue
		}
		switch {
		case d.Persistence != nil:
			if rs[i].GetRole() == "*" {
				return "Persistent volumes cannot be created from unreserved resources"
			}
			if d.Volume == nil {
				return "Expecting 'volume' to be set for persistent volume"
			}
			if d.Volume.HostPath != nil {
				return "Expecting 'host_path' to be unset for persistent volume"
			}
			if err := validateID(d.Persistence.ID); err != "" {
				return "Invalid persistence ID for persistent volume: " + err
			}
		case d.Volume != nil:
			return "Non-persistent volume not supported"
		case d.Source == nil:
			return "DiskInfo is set but empty"
		}
	}
	return ""
}

// validateResources is resource::validate: "" or the message that
// follows "Invalid resources: ".
func validateResources(rs []mesos.Resource) string {
	if err := validateDiskInfo(rs); err != "" {
		return "Invalid DiskInfo: " + err
	}
	return ""
}

// validatePersistentVolumes is resource::validatePersistentVolume.
func validatePersistentVolumes(rs []mesos.Resource) string {
	for i := range rs {
		switch d := rs[i].Disk; {
		case d == nil:
			return "Resource " + formatResource(rs[i]) + " does not have DiskInfo"
		case d.Persistence == nil:
			return "'persistence' is not set in DiskInfo"
		case d.Volume == nil:
			return "Expecting 'volume' to be set for persistent volume"
		case d.Volume.GetMode() == mesos.RO:
			return "Read-only persistent volume not supported"
		}
	}
	return ""
}

// roleSet prints a set of roles as stout does: "{ a, b }".
func roleSet(roles []string) string {
	s := append([]string(nil), roles...)
	sort.Strings(s)
	return "{ " + strings.Join(s, ", ") + " }"
}

func isStrictSubrole(child, parent string) bool {
	return strings.HasPrefix(child, parent+"/")
}

// validateReserve is validation::operation::validate(Reserve). f is nil
// for the operator endpoint (no framework roles to check).
func validateReserve(rs []mesos.Resource, principal *string, f *framework) string {
	if err := validateResources(rs); err != "" {
		return "Invalid resources: " + err
	}
	for i := range rs {
		r := &rs[i]
		if !isDynamicallyReserved(r) {
			return "Resource " + formatResource(*r) + " is not dynamically reserved"
		}
		if principal != nil {
			if r.Reservation.Principal == nil {
				return "A reserve operation was attempted by principal '" + *principal + "', but there is a reserved resource in the request with no principal set"
			}
			if r.Reservation.GetPrincipal() != *principal {
				return "A reserve operation was attempted by authenticated principal '" + *principal + "', which does not match a reserved resource in the request with principal '" + r.Reservation.GetPrincipal() + "'"
			}
		}
		if f != nil {
			resRole, allocRole := r.GetRole(), r.GetAllocationInfo().GetRole()
			if resRole != allocRole && !isStrictSubrole(resRole, allocRole) {
				return "A reserve operation was attempted for a resource with role '" + resRole + "', but the resource was allocated to role '" + allocRole + "'"
			}
			if !f.hasRole(allocRole) {
				return "A reserve operation was attempted for a resource allocated to role '" + allocRole + "', but the framework only has roles '" + roleSet(f.roles) + "'"
			}
		}
		if r.IsPersistentVolume() {
			return "A persistent volume " + formatResource(*r) + " must already be reserved"
		}
	}
	return ""
}

// validateUnreserve is validation::operation::validate(Unreserve).
func validateUnreserve(rs []mesos.Resource) string {
	if err := validateResources(rs); err != "" {
		return "Invalid resources: " + err
	}
	for i := range rs {
		if !isDynamicallyReserved(&rs[i]) {
			return "Resource " + formatResource(rs[i]) + " is not dynamically reserved"
		}
		if rs[i].IsPersistentVolume() {
			return "A dynamically reserved persistent volume " + formatResource(rs[i]) + " cannot be unreserved directly. Please destroy the persistent volume first then unreserve the resource"
		}
	}
	return ""
}

// validateCreate is validation::operation::validate(Create).
func validateCreate(rs []mesos.Resource, checkpointed mesos.Resources, principal *string, f *framework) string {
	if err := validateResources(rs); err != "" {
		return "Invalid resources: " + err
	}
	if err := validatePersistentVolumes(rs); err != "" {
		return "Not a persistent volume: " + err
	}
	seen := map[string]bool{}
	for _, set := range [][]mesos.Resource{checkpointed, rs} {
		for i := range set {
			if !set[i].IsPersistentVolume() {
				continue
			}
			id := set[i].Disk.Persistence.ID
			key := set[i].GetRole() + "\x00" + id
			if seen[key] {
				return "Persistence ID '" + id + "' is not unique"
			}
			seen[key] = true
		}
	}
	if principal != nil {
		for i := range rs {
			p := rs[i].Disk.Persistence.Principal
			if p == nil {
				return "Create volume operation attempted by principal '" + *principal + "', but there is a volume in the operation with no principal set in 'disk.persistence'"
			}
			if *p != *principal {
				return "Create volume operation attempted by authenticated principal '" + *principal + "', which does not match a volume in the operation with principal '" + *p + "' set in 'disk.persistence'"
			}
		}
	}
	if f != nil && !hasFrameworkCapability(f.info, mesos.FrameworkInfo_Capability_SHARED_RESOURCES) {
		for i := range rs {
			if rs[i].Shared != nil {
				return "Create volume operation for framework '" + f.id + "' has shared volume without SHARED_RESOURCES capability"
			}
		}
	}
	return ""
}

// validateDestroy is validation::operation::validate(Destroy): the
// volumes must exist on the agent and no task or executor may use them.
func (m *Master) validateDestroy(a *agent, rs []mesos.Resource) string {
	vols := unallocated(rs)
	if err := validateResources(vols); err != "" {
		return "Invalid resources: " + err
	}
	if err := validatePersistentVolumes(vols); err != "" {
		return "Not a persistent volume: " + err
	}
	if !containsAll(checkpointedOf(a.total), vols) {
		return "Persistent volumes not found"
	}
	used := unallocated(a.used())
	for i := range vols {
		if containsAll(used, vols[i:i+1]) {
			return "Persistent volumes in use"
		}
	}
	return ""
}

func hasFrameworkCapability(info mesos.FrameworkInfo, c mesos.FrameworkInfo_Capability_Type) bool {
	for _, x := range info.Capabilities {
		if x.Type == c {
			return true
		}
	}
	return false
}

// validateStorageOperation validates a RESERVE, UNRESERVE, CREATE or
// DESTROY of rs on agent a, for framework f with its principal, or for
// the operator API (f and principal nil). It returns "" or the error.
func (m *Master) validateStorageOperation(a *agent, t mesos.Offer_Operation_Type, rs []mesos.Resource, principal *string, f *framework) string {
	switch t {
	case mesos.Offer_Operation_RESERVE:
		return validateReserve(rs, principal, f)
	case mesos.Offer_Operation_UNRESERVE:
		return validateUnreserve(rs)
	case mesos.Offer_Operation_CREATE:
		return validateCreate(rs, checkpointedOf(a.total), principal, f)
	case mesos.Offer_Operation_DESTROY:
		return m.validateDestroy(a, rs)
	}
	return ""
}

// conversions are getResourceConversions: what an operation takes from
// the pool and what it gives back in its place.
func conversions(t mesos.Offer_Operation_Type, rs mesos.Resources) (consumed, converted mesos.Resources) {
	for i := range rs {
		r := *proto.Clone(&rs[i]).(*mesos.Resource)
		switch t {
		case mesos.Offer_Operation_RESERVE:
			consumed = append(consumed, unreservedCopy(r))
			converted = append(converted, r)
		case mesos.Offer_Operation_UNRESERVE:
			consumed = append(consumed, r)
			converted = append(converted, unreservedCopy(r))
		case mesos.Offer_Operation_CREATE:
			consumed = append(consumed, withoutVolume(r))
			converted = append(converted, r)
		case mesos.Offer_Operation_DESTROY:
			consumed = append(consumed, r)
			converted = append(converted, withoutVolume(r))
		}
	}
	return consumed, converted
}

// unreservedCopy pops the (single) reservation.
func unreservedCopy(r mesos.Resource) mesos.Resource {
	c := *proto.Clone(&r).(*mesos.Resource)
	c.Role = proto.String("*")
	c.Reservation = nil
	c.Reservations = nil
	return c
}

// withoutVolume strips persistence and volume from a disk.
func withoutVolume(r mesos.Resource) mesos.Resource {
	c := *proto.Clone(&r).(*mesos.Resource)
	if c.Disk != nil {
		c.Disk.Persistence = nil
		c.Disk.Volume = nil
		if c.Disk.Source == nil {
			c.Disk = nil
		}
	}
	return c
}

// checkpointedOf are the dynamic reservations and volumes among an
// agent's total: what its checkpoint holds.
func checkpointedOf(total mesos.Resources) mesos.Resources {
	var out mesos.Resources
	for i := range total {
		if isDynamicallyReserved(&total[i]) || total[i].IsPersistentVolume() {
			out = append(out, *proto.Clone(&total[i]).(*mesos.Resource))
		}
	}
	return out
}

// agentTotal is an agent's total: its static resources with the
// checkpointed reservations and volumes carved out of them (Mesos applies
// the checkpointed resources to SlaveInfo.resources the same way).
func agentTotal(static, checkpointed []mesos.Resource) mesos.Resources {
	total := sum(static)
	for i := range checkpointed {
		r := checkpointed[i]
		base := withoutVolume(r)
		if isDynamicallyReserved(&base) {
			base = unreservedCopy(base)
		}
		if !containsAll(total, []mesos.Resource{base}) {
			glog.Warningf("checkpointed resource %s does not fit the agent's resources; ignoring it", formatResource(r))
			continue
		}
		total.Subtract1(base)
		total.Add1(r)
	}
	return total
}

// applyOperation is Master::_apply for the agent's default resources:
// the master's view changes at once, and the agent is told.
func (m *Master) applyOperation(f *framework, a *agent, op mesos.Offer_Operation, consumed, converted mesos.Resources) {
	total := minus(a.total, unallocated(consumed))
	for _, r := range unallocated(converted) {
		total.Add1(r)
	}
	a.total = total
	var fid *mesos.FrameworkID
	if f != nil {
		fid = &mesos.FrameworkID{Value: f.id}
		if op.ID != nil {
			m.trackOperation(f, a, op.ID.Value)
		}
	}
	glog.V(1).Infof("applying %s on agent %s: %s -> %s", op.Type, a.id, formatResources(consumed), formatResources(converted))
	a.handle.ApplyOperation(wire.ApplyOperation{FrameworkID: fid, Operation: op, Checkpointed: checkpointedOf(a.total)})
}

// storageOperation runs one RESERVE, UNRESERVE, CREATE or DESTROY of an
// ACCEPT against the pool the earlier operations left. It returns the new
// pool and what the operation converted (nil if it was dropped).
func (m *Master) storageOperation(f *framework, a *agent, role string, op mesos.Offer_Operation, pool mesos.Resources) (mesos.Resources, mesos.Resources) {
	rs, err := upgradeOperation(&op, role)
	if err != "" {
		m.dropOperation(f, &op, "Operation attempted with invalid resources: "+err)
		return pool, nil
	}
	if err := m.validateStorageOperation(a, op.Type, rs, f.info.Principal, f); err != "" {
		m.dropOperation(f, &op, err+agentSuffix(a))
		return pool, nil
	}
	consumed, converted := conversions(op.Type, rs)
	if !containsAll(pool, consumed) {
		m.dropOperation(f, &op, formatResources(pool)+" does not contain "+formatResources(sum(consumed)))
		return pool, nil
	}
	pool = minus(pool, consumed)
	for i := range converted {
		pool.Add1(converted[i])
	}
	m.applyOperation(f, a, op, consumed, converted)
	return pool, converted
}

// dropOperation is Master::drop: the operation is only logged, unless it
// has an ID, in which case the framework hears OPERATION_ERROR (no uuid,
// no agent_id: nothing to acknowledge).
func (m *Master) dropOperation(f *framework, op *mesos.Offer_Operation, msg string) {
	glog.Warningf("dropping %s operation of framework %s: %s", op.Type, f, msg)
	if op.ID == nil {
		return
	}
	id := *op.ID
	f.send(operationEvent(mesos.OperationStatus{OperationID: &id, State: mesos.OPERATION_ERROR, Message: proto.String(msg)}))
}

func operationEvent(st mesos.OperationStatus) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_UPDATE_OPERATION_STATUS, UpdateOperationStatus: &scheduler.Event_UpdateOperationStatus{Status: st}}
}

// trackOperation remembers an operation with an ID until its terminal
// status is acknowledged.
func (m *Master) trackOperation(f *framework, a *agent, id string) {
	if m.operations == nil {
		m.operations = map[string]map[string]*trackedOperation{}
	}
	if m.operations[f.id] == nil {
		m.operations[f.id] = map[string]*trackedOperation{}
	}
	if old := m.operations[f.id][id]; old != nil && old.timer != nil {
		old.timer.Stop()
	}
	opID := mesos.OperationID{Value: id}
	aid := mesos.AgentID{Value: a.id}
	m.operations[f.id][id] = &trackedOperation{
		frameworkID: f.id,
		agentID:     a.id,
		status:      mesos.OperationStatus{OperationID: &opID, State: mesos.OPERATION_PENDING, AgentID: &aid},
	}
}

// OperationStatus is an agent's answer to an operation with an ID.
func (m *Master) OperationStatus(agentID mesos.AgentID, u wire.OperationUpdate) {
	st := *proto.Clone(&u.Status).(*mesos.OperationStatus)
	m.post(func() { m.operationStatus(agentID.Value, u.FrameworkID.Value, st) })
}

// operationStatus is Master::updateOperationStatus: record the status and
// forward it; it is re-sent (10 s, doubling up to 10 min, as the agent's
// operation status update manager does) until acknowledged.
func (m *Master) operationStatus(agentID, frameworkID string, st mesos.OperationStatus) {
	op := m.operations[frameworkID][st.GetOperationID().GetValue()]
	if op == nil || op.agentID != agentID {
		glog.V(1).Infof("ignoring status %s of unknown operation %s of framework %s from agent %s", st.State, st.GetOperationID().GetValue(), frameworkID, agentID)
		return
	}
	op.status = st
	op.retry = m.cfg.OperationStatusRetryInterval
	m.sendOperationStatus(op)
}

func (m *Master) sendOperationStatus(op *trackedOperation) {
	if f := m.frameworks[op.frameworkID]; f != nil && f.connected() {
		glog.V(1).Infof("sending %s of operation %s to framework %s", op.status.State, op.status.GetOperationID().GetValue(), f)
		f.send(operationEvent(*proto.Clone(&op.status).(*mesos.OperationStatus)))
	}
	d := op.retry
	op.retry *= 2
	if op.retry > maxOperationStatusRetry {
		op.retry = maxOperationStatusRetry
	}
	gen := m.generation
	uuid := op.status.GetUUID().GetValue()
	op.timer = m.after(d, func() {
		cur := m.operations[op.frameworkID][op.status.GetOperationID().GetValue()]
		if m.generation != gen || cur != op || !bytes.Equal(op.status.GetUUID().GetValue(), uuid) {
			return
		}
		if m.frameworks[op.frameworkID] == nil {
			delete(m.operations, op.frameworkID)
			return
		}
		m.sendOperationStatus(op)
	})
}

// maxOperationStatusRetry caps the doubling retry interval.
const maxOperationStatusRetry = 10 * time.Minute

// acknowledgeOperation is ACKNOWLEDGE_OPERATION_STATUS: the status with
// this uuid is delivered; a terminal one ends the operation's tracking.
func (m *Master) acknowledgeOperation(f *framework, ack *scheduler.Call_AcknowledgeOperationStatus) {
	for id, op := range m.operations[f.id] {
		if op.agentID != ack.GetAgentID().GetValue() || !bytes.Equal(op.status.GetUUID().GetValue(), ack.UUID) {
			continue
		}
		if op.timer != nil {
			op.timer.Stop()
		}
		glog.V(1).Infof("framework %s acknowledged %s of operation %s", f, op.status.State, id)
		if isTerminalOperation(op.status.State) {
			delete(m.operations[f.id], id)
		}
		return
	}
	glog.V(1).Infof("ignoring acknowledgement of unknown operation status %x of framework %s", ack.UUID, f)
}

func isTerminalOperation(s mesos.OperationState) bool {
	switch s {
	case mesos.OPERATION_FINISHED, mesos.OPERATION_FAILED, mesos.OPERATION_ERROR, mesos.OPERATION_DROPPED, mesos.OPERATION_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// reconcileOperations is Master::reconcileOperations: the latest status of
// each named operation (all of the framework's when none is named), as
// reconciliation answers carry them: without uuid, so that they are not
// acknowledged.
func (m *Master) reconcileOperations(f *framework, rc *scheduler.Call_ReconcileOperations) []mesos.OperationStatus {
	var out []mesos.OperationStatus
	ops := m.operations[f.id]
	latest := func(op *trackedOperation) mesos.OperationStatus {
		st := *proto.Clone(&op.status).(*mesos.OperationStatus)
		st.UUID = nil
		return st
	}
	if len(rc.GetOperations()) == 0 {
		for _, id := range sortedKeys(boolKeys(ops)) {
			out = append(out, latest(ops[id]))
		}
		return out
	}
	for _, q := range rc.Operations {
		if op := ops[q.OperationID.Value]; op != nil {
			out = append(out, latest(op))
			continue
		}
		id := q.OperationID
		st := mesos.OperationStatus{OperationID: &id}
		aid := q.GetAgentID().GetValue()
		_, recovered := m.recovered[aid]
		_, unreachable := m.unreachable[aid]
		switch {
		case q.AgentID == nil:
			st.State, st.Message = mesos.OPERATION_UNKNOWN, proto.String("Reconciliation: Operation is unknown")
		case recovered:
			st.State, st.Message = mesos.OPERATION_RECOVERING, proto.String("Reconciliation: Agent is recovered but has not re-registered")
		case unreachable:
			st.State, st.Message = mesos.OPERATION_UNREACHABLE, proto.String("Reconciliation: Agent is unreachable")
		case m.agents[aid] != nil:
			st.State, st.Message = mesos.OPERATION_UNKNOWN, proto.String("Reconciliation: Operation is unknown")
		default:
			st.State, st.Message = mesos.OPERATION_UNKNOWN, proto.String("Reconciliation: Both operation and agent are unknown")
		}
		if q.AgentID != nil {
			a := *q.AgentID
			st.AgentID = &a
		}
		out = append(out, st)
	}
	return out
}

// splitLeftovers separates what is left of an ACCEPT's offers into the
// resources its operations converted (recovered without a filter, so they
// are offered again at once) and the untouched rest (declined with the
// ACCEPT's filters).
func splitLeftovers(remaining, converted mesos.Resources) (fresh, untouched mesos.Resources) {
	untouched = sum(remaining)
	for _, c := range sum(converted) {
		want := c
		for i := range untouched {
			if !untouched[i].Subtractable(c) {
				continue
			}
			if c.GetType() == mesos.SCALAR && untouched[i].GetScalar().GetValue() < c.GetScalar().GetValue() {
				want = *proto.Clone(&c).(*mesos.Resource)
				want.Scalar = &mesos.Value_Scalar{Value: untouched[i].GetScalar().GetValue()}
			}
			break
		}
		if containsAll(untouched, []mesos.Resource{want}) {
			fresh = append(fresh, want)
			untouched.Subtract1(want)
		}
	}
	return fresh, untouched
}
