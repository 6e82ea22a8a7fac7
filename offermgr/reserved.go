package offermgr

import (
	"fmt"
	"sort"
	"strconv"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Labels of the resources the scheduler reserves for an ordinal. Mesos
// keeps a reservation's labels and offers them back unchanged, so they are
// how an offer's reserved resources are matched to the ordinal they belong
// to, and how reservations nobody owns any more are recognised.
const (
	LabelFramework  = "stateful.framework"
	LabelInstance   = "stateful.instance"
	LabelOrdinal    = "stateful.ordinal"
	LabelResourceID = "stateful.resource_id"
	// LabelPart is "task" or "executor": the two are reserved apart (the
	// labels differ, so Mesos never merges them) and a relaunch hands each
	// part back to its owner.
	LabelPart    = "stateful.part"
	PartTask     = "task"
	PartExecutor = "executor"
)

// Reserved is one reservation as an offer carries it.
type Reserved struct {
	ID       string
	Instance string
	Ordinal  int
	// Task and Executor are the resources of each part, the volume (a disk
	// with persistence) among Task.
	Task, Executor mesos.Resources
}

// Volume returns the persistent volume among the reserved resources, if any.
func (r *Reserved) Volume() *mesos.Resource {
	for i := range r.Task {
		if r.Task[i].GetDisk().GetPersistence() != nil {
			return &r.Task[i]
		}
	}
	return nil
}

// All is every resource of the reservation.
func (r *Reserved) All() mesos.Resources {
	out := make(mesos.Resources, 0, len(r.Task)+len(r.Executor))
	out = append(out, r.Task...)
	return append(out, r.Executor...)
}

// dynamicLabels returns the labels of r's dynamic reservation (either
// resource format), or nil.
func dynamicLabels(r *mesos.Resource) *mesos.Labels {
	if r.Reservation != nil {
		return r.Reservation.Labels
	}
	if n := len(r.Reservations); n > 0 && r.Reservations[n-1].GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
		return r.Reservations[n-1].Labels
	}
	return nil
}

// ReservationOf reads the labels the scheduler puts on its reservations:
// ok is false for a resource that is not one of framework's.
func ReservationOf(r *mesos.Resource, framework string) (id, instance string, ordinal int, part string, ok bool) {
	ls := dynamicLabels(r)
	if ls == nil {
		return "", "", 0, "", false
	}
	var fw, ord string
	for _, l := range ls.Labels {
		switch l.Key {
		case LabelFramework:
			fw = l.GetValue()
		case LabelInstance:
			instance = l.GetValue()
		case LabelOrdinal:
			ord = l.GetValue()
		case LabelResourceID:
			id = l.GetValue()
		case LabelPart:
			part = l.GetValue()
		}
	}
	if fw != framework || id == "" || (part != PartTask && part != PartExecutor) {
		return "", "", 0, "", false
	}
	ordinal, _ = strconv.Atoi(ord)
	return id, instance, ordinal, part, true
}

// reservedIn is one reservation found in a pass's offers.
type reservedIn struct {
	res  Reserved
	b    *bucket
	used bool
}

// collectReserved files an offered resource under its reservation when it
// is one of the framework's.
func (p *pass) collectReserved(b *bucket, r *mesos.Resource, framework string) bool {
	if framework == "" {
		return false
	}
	id, inst, ord, part, ok := ReservationOf(r, framework)
	if !ok {
		return false
	}
	ri := p.reserved[id]
	if ri == nil {
		ri = &reservedIn{res: Reserved{ID: id, Instance: inst, Ordinal: ord}, b: b}
		p.reserved[id] = ri
	}
	if ri.b != b {
		return true // the same id on two agents cannot be ours; leave it
	}
	if part == PartTask {
		ri.res.Task = append(ri.res.Task, *r)
	} else {
		ri.res.Executor = append(ri.res.Executor, *r)
	}
	return true
}

// placeReserved places a demand that names its reservation. handled is
// false when the demand may be placed like a first launch instead.
func (p *pass) placeReserved(d *Demand) (m PlacementMetric, ok, handled bool) {
	ri := p.reserved[d.ReservationID]
	if ri != nil && (len(ri.res.Task) == 0 || (d.ExecutorReserved && len(ri.res.Executor) == 0)) {
		why := fmt.Sprintf("waiting for all of its reservation %s on agent %s (part is still in use)", d.ReservationID, ri.b.agent.id)
		return PlacementMetric{At: p.now, AgentsOffered: len(p.buckets), Summary: why}, false, true
	}
	if ri == nil || ri.used {
		if !d.Release && !d.ReservationRequired && !p.now.Before(d.StickyUntil) {
			return PlacementMetric{}, false, false
		}
		why := fmt.Sprintf("waiting for an offer carrying its reservation %s", d.ReservationID)
		if d.PrevAgent != "" {
			why += " on agent " + d.PrevAgent
		}
		return PlacementMetric{At: p.now, AgentsOffered: len(p.buckets), Summary: why}, false, true
	}
	b := ri.b
	pl := Placement{
		Demand:   *d,
		AgentID:  mesos.AgentID{Value: b.agent.id},
		Hostname: b.agent.hostname,
		Reserved: &ri.res,
		Release:  d.Release,
	}
	if !d.Release {
		var ports []uint32
		for _, r := range ri.res.Task {
			if r.Name != "ports" || r.Ranges == nil {
				continue
			}
			for _, rg := range r.Ranges.Range {
				for n := rg.Begin; n <= rg.End && len(ports) <= 65535; n++ {
					ports = append(ports, uint32(n))
				}
			}
		}
		if len(ports) != len(d.Ports) {
			why := fmt.Sprintf("its reservation %s holds %d ports, the spec names %d: replace the ordinal to reserve anew", d.ReservationID, len(ports), len(d.Ports))
			return PlacementMetric{At: p.now, AgentsOffered: len(p.buckets), Summary: why}, false, true
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
		if len(ports) > 0 {
			pl.Ports = make(map[string]uint32, len(ports))
			for i, name := range d.Ports {
				pl.Ports[name] = ports[i]
			}
		}
		pl.Resources = ri.res.Task
		pl.ExecutorResources = ri.res.Executor
		pl.ExecutorCharged = true
		pl.Reason = "its reservation " + d.ReservationID
		siblings := b.agent.tasks[d.Key.Instance]
		if len(siblings) == 0 {
			p.hosts[d.Key.Instance] = append(p.hosts[d.Key.Instance], b.agent)
		}
		b.agent.tasks[d.Key.Instance] = append(siblings, d.Key)
	} else {
		pl.Reason = "release of reservation " + d.ReservationID
	}
	ri.used = true
	p.addToLaunch(b, pl)
	return PlacementMetric{}, true, true
}

// releaseOrphans releases every reservation of the framework that no task
// knows: left by a crash, a replace, or a delete whose confirmation was
// lost. Mesos offers it only to this framework's role, so nobody else
// would ever free it.
func (p *pass) releaseOrphans(known map[string]bool) {
	if known == nil {
		return
	}
	ids := make([]string, 0, len(p.reserved))
	for id, ri := range p.reserved {
		if !ri.used && !known[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		ri := p.reserved[id]
		ri.used = true
		p.addToLaunch(ri.b, Placement{
			Demand:   Demand{Key: Key{Instance: ri.res.Instance, Ordinal: ri.res.Ordinal}, ReservationID: id, Release: true},
			AgentID:  mesos.AgentID{Value: ri.b.agent.id},
			Hostname: ri.b.agent.hostname,
			Reserved: &ri.res,
			Release:  true,
			Orphan:   true,
			Reason:   "reservation " + id + " belongs to no task",
		})
	}
}

func (p *pass) addToLaunch(b *bucket, pl Placement) {
	if b.launch == nil {
		b.launch = &Launch{AgentID: mesos.AgentID{Value: b.agent.id}, Hostname: b.agent.hostname, OfferIDs: b.offerIDs}
	}
	b.launch.Placements = append(b.launch.Placements, pl)
}
