package master

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// offer is an outstanding offer. It holds its resources until it is
// accepted, declined or rescinded.
type offer struct {
	id        string
	framework *framework
	agent     *agent
	role      string
	resources mesos.Resources // with allocation_info
}

// offerFilter is a refusal: offers to (framework, role, agent) whose
// resources are a subset of these are withheld until expires.
type offerFilter struct {
	resources mesos.Resources // without allocation_info
	expires   time.Time
}

// maxOffersEventBytes keeps an OFFERS event (as protobuf; JSON is roughly
// twice as big) well under mesos-go's 4 MiB RecordIO frame limit.
const maxOffersEventBytes = 1 << 20

// Filters.refuse_seconds limits.
const maxRefuse = 365 * 24 * time.Hour

// refuseDuration is how long a DECLINE (or an ACCEPT's leftovers) keeps
// resources away: refuse_seconds, default 5, negative means 5, capped at
// 365 days, 0 means no filter.
func refuseDuration(f *mesos.Filters) time.Duration {
	secs := f.GetRefuseSeconds()
	switch {
	case math.IsNaN(secs):
		secs = mesos.Default_Filters_RefuseSeconds
	case secs > maxRefuse.Seconds():
		return maxRefuse
	case secs < 0:
		secs = mesos.Default_Filters_RefuseSeconds
	}
	return time.Duration(secs * float64(time.Second))
}

// allocate offers what agents have available to frameworks. For every
// agent (in random order), roles are visited by DRF share, and within a
// role the frameworks by DRF share; the first framework that wants the
// role's allocatable resources gets all of them as one offer. Suppressed
// roles, disconnected frameworks and refusal filters are skipped.
func (m *Master) allocate() {
	var agents []*agent
	total := quantities{}
	for _, a := range m.sortedAgents() {
		if a.connected {
			agents = append(agents, a)
			total.add(quantitiesOf(a.total))
		}
	}
	if len(agents) == 0 {
		return
	}
	var frameworks []*framework
	for _, f := range m.sortedFrameworks() {
		if f.connected() {
			frameworks = append(frameworks, f)
		}
	}
	if len(frameworks) == 0 {
		return
	}
	rand.Shuffle(len(agents), func(i, j int) { agents[i], agents[j] = agents[j], agents[i] })

	// What each framework (per role) and each role hold now: offers,
	// tasks and executors.
	fwAlloc := map[string]map[string]quantities{}
	roleAlloc := map[string]quantities{}
	charge := func(fid string, rs []mesos.Resource) {
		for i := range rs {
			role := rs[i].GetAllocationInfo().GetRole()
			if fwAlloc[fid] == nil {
				fwAlloc[fid] = map[string]quantities{}
			}
			if fwAlloc[fid][role] == nil {
				fwAlloc[fid][role] = quantities{}
			}
			if roleAlloc[role] == nil {
				roleAlloc[role] = quantities{}
			}
			q := quantitiesOf(rs[i : i+1])
			fwAlloc[fid][role].add(q)
			roleAlloc[role].add(q)
		}
	}
	for _, a := range m.agents {
		for fid, tasks := range a.tasks {
			for _, t := range tasks {
				if !terminalOrUnreachable(t.GetState()) {
					charge(fid, t.Resources)
				}
			}
		}
		for fid, execs := range a.executors {
			for _, e := range execs {
				charge(fid, e.Resources)
			}
		}
		for _, o := range a.offers {
			charge(o.framework.id, o.resources)
		}
	}
	roleSet := map[string]bool{}
	for _, f := range frameworks {
		for _, r := range f.roles {
			roleSet[r] = true
		}
	}
	roles := sortedKeys(roleSet)

	now := time.Now()
	made := map[string][]*offer{}
	for _, a := range agents {
		if !a.mayHaveAllocatable() {
			continue
		}
		avail := a.available()
		if !allocatable(avail) {
			continue
		}
		// Mesos' DRF sorter: dominant share, then how many allocations
		// were made (so equal shares take turns), then name.
		sort.SliceStable(roles, func(i, j int) bool {
			si, sj := roleAlloc[roles[i]].share(total), roleAlloc[roles[j]].share(total)
			if si != sj {
				return si < sj
			}
			if ci, cj := m.roleAllocations[roles[i]], m.roleAllocations[roles[j]]; ci != cj {
				return ci < cj
			}
			return roles[i] < roles[j]
		})
		agentGPUs, _ := scalar(a.total, "gpus")
		for _, role := range roles {
			var candidates []*framework
			for _, f := range frameworks {
				if f.hasRole(role) && !f.suppressed[role] && (agentGPUs == 0 || f.gpu) {
					candidates = append(candidates, f)
				}
			}
			sort.SliceStable(candidates, func(i, j int) bool {
				si := fwAlloc[candidates[i].id][role].share(total)
				sj := fwAlloc[candidates[j].id][role].share(total)
				if si != sj {
					return si < sj
				}
				if ci, cj := candidates[i].allocations[role], candidates[j].allocations[role]; ci != cj {
					return ci < cj
				}
				return candidates[i].id < candidates[j].id
			})
			for _, f := range candidates {
				res := allocatableTo(avail, role)
				if !allocatable(res) {
					break
				}
				if f.filtered(role, a.id, res, now) {
					glog.V(2).Infof("filtered offer of %s on agent %s for role %s of framework %s", formatResources(res), a.id, role, f)
					continue
				}
				o := m.newOffer(f, a, role, allocatedTo(res, role))
				f.allocations[role]++
				m.roleAllocations[role]++
				made[f.id] = append(made[f.id], o)
				charge(f.id, o.resources)
				avail = minus(avail, res)
			}
		}
	}
	for _, f := range frameworks {
		if len(made[f.id]) > 0 {
			m.sendOffers(f, made[f.id])
		}
	}
}

func (m *Master) newOffer(f *framework, a *agent, role string, rs mesos.Resources) *offer {
	o := &offer{
		id:        fmt.Sprintf("%s-O%d", m.id, m.nextOffer),
		framework: f,
		agent:     a,
		role:      role,
		resources: rs,
	}
	m.nextOffer++
	m.offers[o.id] = o
	f.offers[o.id] = o
	a.offers[o.id] = o
	return o
}

// sendOffers sends OFFERS events, split so that none gets near the
// client's frame size limit.
func (m *Master) sendOffers(f *framework, offers []*offer) {
	var batch []mesos.Offer
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		f.send(&scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: batch}})
		batch, size = nil, 0
	}
	for _, o := range offers {
		msg := m.offerMessage(o)
		n := msg.Size()
		if size+n > maxOffersEventBytes {
			flush()
		}
		batch = append(batch, msg)
		size += n
		glog.V(1).Infof("offering %s on agent %s to framework %s (role %s) as %s", formatResources(o.resources), o.agent.id, f, o.role, o.id)
	}
	flush()
}

// offerMessage renders an offer in the framework's resource format.
func (m *Master) offerMessage(o *offer) mesos.Offer {
	f, a := o.framework, o.agent
	ip := a.ip()
	msg := mesos.Offer{
		ID:          mesos.OfferID{Value: o.id},
		FrameworkID: mesos.FrameworkID{Value: f.id},
		AgentID:     mesos.AgentID{Value: a.id},
		Hostname:    a.hostname(),
		URL: &mesos.URL{
			Scheme:  "http",
			Address: mesos.Address{Hostname: proto.String(ip), IP: proto.String(ip), Port: a.port()},
			Path:    proto.String("/slave(1)"),
		},
		Resources:  formatForFramework(o.resources, f.multiRole, f.refinement),
		Attributes: append([]mesos.Attribute(nil), a.info.Attributes...),
	}
	for _, eid := range sortedKeys(boolKeys(a.executors[f.id])) {
		msg.ExecutorIDs = append(msg.ExecutorIDs, mesos.ExecutorID{Value: eid})
	}
	if f.multiRole {
		msg.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(o.role)}
	}
	return msg
}

// removeOffer takes an offer back without telling the framework (accepted,
// or discarded because the framework cannot hear about it any more).
func (m *Master) removeOffer(o *offer) {
	delete(m.offers, o.id)
	delete(o.framework.offers, o.id)
	delete(o.agent.offers, o.id)
}

// rescindOffer takes an offer back and tells the framework (RESCIND).
func (m *Master) rescindOffer(o *offer) {
	m.removeOffer(o)
	glog.V(1).Infof("rescinding offer %s of framework %s", o.id, o.framework)
	o.framework.send(&scheduler.Event{Type: scheduler.Event_RESCIND, Rescind: &scheduler.Event_Rescind{OfferID: mesos.OfferID{Value: o.id}}})
}

// declineResources returns resources of a framework's offer to the pool
// with a refusal filter for (framework, role, agent).
func (m *Master) declineResources(f *framework, a *agent, role string, rs mesos.Resources, filters *mesos.Filters) {
	if len(rs) == 0 {
		return
	}
	d := refuseDuration(filters)
	if d == 0 {
		return
	}
	// A filter lasts at least until the next allocation.
	if d < m.cfg.AllocationInterval {
		d = m.cfg.AllocationInterval
	}
	if f.filters[role] == nil {
		f.filters[role] = map[string][]*offerFilter{}
	}
	f.filters[role][a.id] = append(f.filters[role][a.id], &offerFilter{resources: unallocated(rs), expires: time.Now().Add(d)})
	glog.V(1).Infof("framework %s filtered agent %s for role %s for %v", f, a.id, role, d)
}

// filtered reports whether a refusal filter withholds rs; expired filters
// are dropped on the way.
func (f *framework) filtered(role, agentID string, rs mesos.Resources, now time.Time) bool {
	list := f.filters[role][agentID]
	if len(list) == 0 {
		return false
	}
	kept := list[:0]
	hit := false
	plain := unallocated(rs)
	for _, flt := range list {
		if now.After(flt.expires) {
			continue
		}
		kept = append(kept, flt)
		if containsAll(flt.resources, plain) {
			hit = true
		}
	}
	if len(kept) == 0 {
		delete(f.filters[role], agentID)
	} else {
		f.filters[role][agentID] = kept
	}
	return hit
}

func sortedOffers(m map[string]*offer) []*offer {
	out := make([]*offer, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
