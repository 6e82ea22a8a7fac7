package master

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
)

// Resources are kept in the pre-refinement ("legacy") format inside the
// master: an unreserved resource has role "*" (or none), a static
// reservation sets Resource.role, a dynamic one adds Resource.reservation.
// mesos-go's arithmetic compares the legacy role unless the process-wide
// mesos.CapabilityReservationRefinement switch is on, and a master must not
// flip that switch under an embedded framework. Frameworks that speak
// RESERVATION_REFINEMENT get converted copies on the way in and out.

// upgradeIncoming converts resources a framework sent (either format) to
// the internal format; the string is a validation error ("" if none). Refined reservations deeper than one level cannot be
// expressed in the legacy format; no agent here has them, so such a
// resource can never fit an offer and is reported as invalid.
func upgradeIncoming(rs []mesos.Resource) (mesos.Resources, string) {
	out := make(mesos.Resources, 0, len(rs))
	for i := range rs {
		r := proto.Clone(&rs[i]).(*mesos.Resource)
		if len(r.Reservations) > 0 {
			if r.Role != nil && r.GetRole() != "*" {
				return nil, "Resource " + formatResource(*r) + " has both 'role' and 'reservations' set"
			}
			if len(r.Reservations) > 1 {
				return nil, "Resource " + formatResource(*r) + " uses refined reservations, which no agent of this cluster offers"
			}
			res := r.Reservations[0]
			role := res.GetRole()
			if role == "" {
				return nil, "Resource " + formatResource(*r) + " has a reservation without a role"
			}
			r.Role = proto.String(role)
			if res.GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
				r.Reservation = &mesos.Resource_ReservationInfo{Principal: res.Principal, Labels: res.Labels}
			}
			r.Reservations = nil
		}
		out = append(out, *r)
	}
	return out, ""
}

// formatForFramework renders internal resources in the framework's format:
// allocation_info only for MULTI_ROLE frameworks, reservations[] for
// RESERVATION_REFINEMENT ones and the legacy role (always set, "*" when
// unreserved) for the others.
func formatForFramework(rs mesos.Resources, multiRole, refinement bool) []mesos.Resource {
	out := make([]mesos.Resource, 0, len(rs))
	for i := range rs {
		r := proto.Clone(&rs[i]).(*mesos.Resource)
		if !multiRole {
			r.AllocationInfo = nil
		}
		if refinement {
			r.Reservations = reservationStack(r)
			r.Role = nil
			r.Reservation = nil
		} else if r.Role == nil {
			r.Role = proto.String("*")
		}
		out = append(out, *r)
	}
	return out
}

// reservationStack is the refinement format's reservations of a resource
// in the legacy format (role, and reservation if dynamic): none for "*",
// else one, static or dynamic.
func reservationStack(r *mesos.Resource) []mesos.Resource_ReservationInfo {
	role := r.GetRole()
	if role == "*" {
		return nil
	}
	ri := mesos.Resource_ReservationInfo{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: proto.String(role)}
	if r.Reservation != nil {
		ri.Type = mesos.Resource_ReservationInfo_DYNAMIC.Enum()
		ri.Principal = r.Reservation.Principal
		ri.Labels = r.Reservation.Labels
	}
	return []mesos.Resource_ReservationInfo{ri}
}

// sum adds resources up into a normalised collection (equal kinds
// merged), as mesos-go's Resources.Add1 does, with cloneResource for its
// reflective proto.Clone: the allocator sums every agent's resources on
// every pass.
func sum(rss ...[]mesos.Resource) mesos.Resources {
	var out mesos.Resources
	for _, rs := range rss {
	next:
		for i := range rs {
			r := &rs[i]
			if r.Validate() != nil || r.IsEmpty() {
				continue
			}
			for j := range out {
				if out[j].Addable(*r) {
					out[j].Add(*r)
					continue next
				}
			}
			out = append(out, cloneResource(r))
		}
	}
	return out
}

// cloneResource is a deep copy through the generated (un)marshalling code,
// several times faster than proto.Clone's reflection.
func cloneResource(r *mesos.Resource) mesos.Resource {
	b, err := r.Marshal()
	if err == nil {
		var out mesos.Resource
		if err = out.Unmarshal(b); err == nil {
			return out
		}
	}
	return *proto.Clone(r).(*mesos.Resource)
}

// minus returns a - b without touching either.
func minus(a mesos.Resources, b []mesos.Resource) mesos.Resources {
	out := sum(a)
	for i := range b {
		out.Subtract1(b[i])
	}
	return out
}

// containsAll reports whether have holds all of want (as Mesos'
// Resources::contains: each wanted resource is taken out of what is left).
func containsAll(have, want []mesos.Resource) bool {
	left := sum(have)
	for _, w := range sum(want) {
		found := false
		for i := range left {
			if left[i].Contains(w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
		left.Subtract1(w)
	}
	return true
}

// unallocated strips allocation_info, giving resources comparable with an
// agent's total.
func unallocated(rs []mesos.Resource) mesos.Resources {
	out := make(mesos.Resources, 0, len(rs))
	for i := range rs {
		r := cloneResource(&rs[i])
		r.AllocationInfo = nil
		out = append(out, r)
	}
	return out
}

// allocatedTo sets allocation_info.role on a copy of rs.
func allocatedTo(rs []mesos.Resource, role string) mesos.Resources {
	out := make(mesos.Resources, 0, len(rs))
	for i := range rs {
		r := cloneResource(&rs[i])
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(role)}
		out = append(out, r)
	}
	return out
}

// injectAllocation sets allocation_info on the resources that lack it, as
// the master does for every operation of an ACCEPT.
func injectAllocation(rs []mesos.Resource, role string) {
	for i := range rs {
		if rs[i].AllocationInfo == nil {
			rs[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(role)}
		}
	}
}

// allocatableTo keeps the resources role may be offered: unreserved ones
// and those reserved for the role (or an ancestor of it).
func allocatableTo(rs mesos.Resources, role string) mesos.Resources {
	var out mesos.Resources
	for i := range rs {
		if rs[i].IsAllocatableTo(role) {
			out = append(out, rs[i])
		}
	}
	return out
}

// scalar returns the total of a scalar resource.
func scalar(rs []mesos.Resource, name string) (float64, bool) {
	var total float64
	found := false
	for i := range rs {
		if rs[i].GetName() == name && rs[i].GetType() == mesos.SCALAR {
			total += rs[i].GetScalar().GetValue()
			found = true
		}
	}
	return total, found
}

// Mesos' --min_allocatable_resources default: an agent is offered only if
// it has at least this much of one of them.
const (
	minCPUs = 0.01
	minMem  = 32.0
)

func allocatable(rs []mesos.Resource) bool {
	if len(rs) == 0 {
		return false
	}
	cpus, _ := scalar(rs, "cpus")
	mem, _ := scalar(rs, "mem")
	return cpus >= minCPUs || mem >= minMem
}

// formatResources renders resources as Mesos' operator<< does, e.g.
// "cpus(allocated: *):0.1; mem(allocated: *):32"; it appears in validation
// messages.
func formatResources(rs []mesos.Resource) string {
	parts := make([]string, 0, len(rs))
	for i := range rs {
		parts = append(parts, formatResource(rs[i]))
	}
	return strings.Join(parts, "; ")
}

func formatResource(r mesos.Resource) string {
	var b strings.Builder
	b.WriteString(r.GetName())
	if r.AllocationInfo != nil {
		fmt.Fprintf(&b, "(allocated: %s)", r.AllocationInfo.GetRole())
	}
	if len(r.Reservations) > 0 {
		b.WriteString("(reservations: [")
		for i, ri := range r.Reservations {
			if i > 0 {
				b.WriteString(",")
			}
			writeReservation(&b, ri.GetType().String(), ri.GetRole(), ri.Principal, ri.Labels)
		}
		b.WriteString("])")
	} else if role := r.GetRole(); role != "*" {
		b.WriteString("(reservations: [")
		if r.Reservation != nil {
			writeReservation(&b, "DYNAMIC", role, r.Reservation.Principal, r.Reservation.Labels)
		} else {
			writeReservation(&b, "STATIC", role, nil, nil)
		}
		b.WriteString("])")
	}
	if d := r.Disk; d != nil {
		// Mesos prints a volume as [<persistence id>:<container path>].
		b.WriteString("[")
		if p := d.Persistence; p != nil {
			b.WriteString(p.ID)
		}
		if v := d.Volume; v != nil {
			cfg := v.ContainerPath
			if v.HostPath != nil {
				cfg = v.GetHostPath() + ":" + cfg
				if v.Mode != nil {
					cfg += ":" + strings.ToLower(v.GetMode().String())
				}
			}
			b.WriteString(":" + cfg)
		}
		b.WriteString("]")
	}
	if r.Revocable != nil {
		b.WriteString("{REV}")
	}
	if r.Shared != nil {
		b.WriteString("<SHARED>")
	}
	b.WriteString(":")
	b.WriteString(formatValue(r))
	return b.String()
}

func formatValue(r mesos.Resource) string {
	switch r.GetType() {
	case mesos.SCALAR:
		return formatScalar(r.GetScalar().GetValue())
	case mesos.RANGES:
		parts := []string{}
		for _, rg := range r.GetRanges().GetRange() {
			parts = append(parts, fmt.Sprintf("%d-%d", rg.Begin, rg.End))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case mesos.SET:
		return "{" + strings.Join(r.GetSet().GetItem(), ", ") + "}"
	}
	return ""
}

// formatScalar prints like a C++ stream: no exponent, no trailing zeros.
func formatScalar(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// stateResources is the resource summary of /master/state.
func stateResources(rs []mesos.Resource) map[string]any { return mesosjson.ResourceSummary(rs) }

// quantities are scalar totals by name, for DRF shares.
type quantities map[string]float64

func quantitiesOf(rs []mesos.Resource) quantities {
	q := quantities{}
	for i := range rs {
		if rs[i].GetType() == mesos.SCALAR {
			q[rs[i].GetName()] += rs[i].GetScalar().GetValue()
		}
	}
	return q
}

func (q quantities) add(o quantities) {
	for k, v := range o {
		q[k] += v
	}
}

// share is the dominant share of q in total.
func (q quantities) share(total quantities) float64 {
	var s float64
	for k, v := range q {
		if t := total[k]; t > 0 && v/t > s {
			s = v / t
		}
	}
	return s
}

// writeReservation prints a ReservationInfo as Mesos does:
// (DYNAMIC,role,principal,{key: value, ...}).
func writeReservation(b *strings.Builder, typ, role string, principal *string, labels *mesos.Labels) {
	b.WriteString("(" + typ + "," + role)
	if principal != nil {
		b.WriteString("," + *principal)
	}
	if labels != nil {
		b.WriteString(",{")
		for i, l := range labels.Labels {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(l.Key)
			if l.Value != nil {
				b.WriteString(": " + *l.Value)
			}
		}
		b.WriteString("}")
	}
	b.WriteString(")")
}
