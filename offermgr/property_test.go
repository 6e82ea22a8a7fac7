package offermgr

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestPlaceNeverOvercommits feeds random offers and demands to Place and
// checks the invariants a scheduler relies on: no offer is over-committed
// (executors included), no port is given twice or outside the offer, every
// offer is either accepted or declined exactly once, every demand is placed
// or explained exactly once, and the spread and sticky rules hold.
func TestPlaceNeverOvercommits(t *testing.T) {
	policy := Policy{CoLocateAfter: 30 * time.Second, Candidates: 2}
	for seed := uint64(1); seed <= 3000; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		os, running := randomOffers(rng)
		ds := randomDemands(rng)
		st := State{Now: t0, Running: running, Seed: seed}
		plan := Place(policy, os, ds, st)
		if err := checkPlan(policy, os, ds, st, plan); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if err := checkComplete(policy, os, st, plan); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

func randomOffers(rng *rand.Rand) ([]mesos.Offer, map[string][]Key) {
	var os []mesos.Offer
	running := map[string][]Key{}
	for a := range 1 + rng.IntN(8) {
		agent := fmt.Sprintf("a%d", a)
		for o := range 1 + rng.IntN(2) {
			ao := agentOffer{
				id:    fmt.Sprintf("o%d-%d", a, o),
				agent: agent,
				cpus:  float64(rng.IntN(40)) / 10,
				mem:   float64(rng.IntN(4096)),
				disk:  float64(rng.IntN(4096)),
			}
			for range rng.IntN(3) {
				b := 31000 + uint64(rng.IntN(20))
				ao.ports = append(ao.ports, portRange{b, b + uint64(rng.IntN(4))})
			}
			for _, e := range []string{"e0", "e1"} {
				if rng.IntN(3) == 0 {
					ao.executors = append(ao.executors, e)
				}
			}
			offer := ao.build()
			if rng.IntN(4) == 0 {
				// Another role's offer on the same agent: its own ACCEPT.
				offer.AllocationInfo = &mesos.Resource_AllocationInfo{Role: ptr("other")}
				for i := range offer.Resources {
					offer.Resources[i].AllocationInfo = &mesos.Resource_AllocationInfo{Role: ptr("other")}
				}
			}
			if rng.IntN(3) == 0 {
				// Resources we must never take.
				dyn := mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 8},
					Reservations: []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: ptr("x")}}}
				rev := mesos.Resource{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 8192}, Revocable: &mesos.Resource_RevocableInfo{}}
				offer.Resources = append(offer.Resources, dyn, rev)
			}
			os = append(os, offer)
		}
		for range rng.IntN(3) {
			running[agent] = append(running[agent], Key{fmt.Sprintf("i%d", rng.IntN(4)), 100 + rng.IntN(5)})
		}
	}
	return os, running
}

func randomDemands(rng *rand.Rand) []Demand {
	var ds []Demand
	for i := range rng.IntN(25) {
		d := Demand{
			Key:         Key{fmt.Sprintf("i%d", rng.IntN(4)), i},
			CPU:         0.1 + float64(rng.IntN(15))/10,
			Mem:         1 + float64(rng.IntN(1024)),
			Disk:        float64(rng.IntN(1024)),
			QueuedSince: t0.Add(-time.Duration(rng.IntN(60)) * time.Second),
		}
		for p := range rng.IntN(4) {
			d.Ports = append(d.Ports, fmt.Sprintf("p%d", p))
		}
		switch rng.IntN(4) {
		case 0:
			d.Executor = ExecutorDemand{ID: "e0", CPU: 0.1, Mem: 32}
		case 1:
			d.Executor = ExecutorDemand{ID: "e1", CPU: 0.2, Mem: 64}
		case 2:
			d.Executor = ExecutorDemand{ID: "ex-" + d.Key.String(), CPU: 0.1, Mem: 32}
		}
		if rng.IntN(3) == 0 {
			d.PrevAgent = fmt.Sprintf("a%d", rng.IntN(10))
			d.StickyUntil = t0.Add(time.Duration(rng.IntN(120)-60) * time.Second)
		}
		ds = append(ds, d)
	}
	return ds
}

func checkPlan(policy Policy, os []mesos.Offer, ds []Demand, st State, plan Plan) error {
	offerByID := map[string]*mesos.Offer{}
	for i := range os {
		offerByID[os[i].ID.Value] = &os[i]
	}
	used := map[string]int{}
	for _, l := range plan.Launches {
		for _, id := range l.OfferIDs {
			used[id.Value]++
		}
	}
	for _, id := range plan.Declined {
		used[id.Value]++
	}
	for id := range offerByID {
		if used[id] != 1 {
			return fmt.Errorf("offer %s accepted or declined %d times", id, used[id])
		}
	}

	seen := map[Key]int{}
	alone := map[string]int{} // agent/instance -> placements that claim no sibling
	for _, l := range plan.Launches {
		role := ""
		var cpus, mem, disk float64
		free := map[uint64]bool{}
		execLive := map[string]bool{}
		for _, id := range l.OfferIDs {
			o := offerByID[id.Value]
			if o.AgentID != l.AgentID {
				return fmt.Errorf("launch on %s includes offer %s of agent %s", l.AgentID.Value, id.Value, o.AgentID.Value)
			}
			if role != "" && o.AllocationInfo.GetRole() != role {
				return fmt.Errorf("launch mixes roles %s and %s", role, o.AllocationInfo.GetRole())
			}
			role = o.AllocationInfo.GetRole()
			for _, r := range o.Resources {
				if !r.IsUnreserved() || r.Revocable != nil {
					continue
				}
				switch r.Name {
				case "cpus":
					cpus += r.Scalar.Value
				case "mem":
					mem += r.Scalar.Value
				case "disk":
					disk += r.Scalar.Value
				case "ports":
					for _, rg := range r.Ranges.Range {
						for n := rg.Begin; n <= rg.End; n++ {
							free[n] = true
						}
					}
				}
			}
		}
		for _, o := range os {
			if o.AgentID == l.AgentID {
				for _, e := range o.ExecutorIDs {
					execLive[e.Value] = true
				}
			}
		}
		for _, pl := range l.Placements {
			d := pl.Demand
			seen[d.Key]++
			for _, r := range append(pl.Resources.Clone(), pl.ExecutorResources...) {
				if r.GetAllocationInfo().GetRole() != role {
					return fmt.Errorf("%s: resource %s allocated to %q in a launch for role %q", d.Key, r.Name, r.GetAllocationInfo().GetRole(), role)
				}
				if !r.IsUnreserved() {
					return fmt.Errorf("%s: took reserved resource %v", d.Key, r)
				}
			}
			s := scalars(pl.Resources)
			cpus -= s["cpus"]
			mem -= s["mem"]
			disk -= s["disk"]
			if s["cpus"] != toMilli(d.CPU).float() || s["mem"] != toMilli(d.Mem).float() || s["disk"] != toMilli(d.Disk).float() {
				return fmt.Errorf("%s: resources %v do not match the demand", d.Key, s)
			}
			if pl.ExecutorCharged {
				if execLive[d.Executor.ID] {
					return fmt.Errorf("%s: executor %s charged twice on %s", d.Key, d.Executor.ID, l.AgentID.Value)
				}
				execLive[d.Executor.ID] = true
				e := scalars(pl.ExecutorResources)
				cpus -= e["cpus"]
				mem -= e["mem"]
			} else if d.Executor.ID != "" && !execLive[d.Executor.ID] {
				return fmt.Errorf("%s: executor %s not charged but not live on %s", d.Key, d.Executor.ID, l.AgentID.Value)
			}
			ports := portsOf(pl.Resources)
			if len(ports) != len(d.Ports) || len(pl.Ports) != len(d.Ports) {
				return fmt.Errorf("%s: got ports %v / %v for %v", d.Key, ports, pl.Ports, d.Ports)
			}
			for _, n := range ports {
				if !free[n] {
					return fmt.Errorf("%s: port %d given twice or not offered on %s", d.Key, n, l.AgentID.Value)
				}
				delete(free, n)
			}
			for _, name := range d.Ports {
				found := false
				for _, n := range ports {
					found = found || uint64(pl.Ports[name]) == n
				}
				if !found {
					return fmt.Errorf("%s: port %s=%d not in its resources %v", d.Key, name, pl.Ports[name], ports)
				}
			}
			// Spread: sharing only after the wait, and then said so. Two
			// launches on one agent (two roles) interleave, so the first
			// task of an instance on an agent is found after the loop.
			if strings.Contains(pl.Reason, "; shares the agent with") {
				if t0.Sub(d.QueuedSince) < policy.CoLocateAfter {
					return fmt.Errorf("%s co-located on %s after waiting only %v", d.Key, l.AgentID.Value, t0.Sub(d.QueuedSince))
				}
			} else {
				alone[l.AgentID.Value+"/"+d.Key.Instance]++
			}
			if d.PrevAgent != "" && st.Now.Before(d.StickyUntil) && l.AgentID.Value != d.PrevAgent {
				return fmt.Errorf("%s placed on %s before its sticky deadline for %s", d.Key, l.AgentID.Value, d.PrevAgent)
			}
		}
		const eps = 1e-6
		if cpus < -eps || mem < -eps || disk < -eps {
			return fmt.Errorf("agent %s over-committed: left cpus %v mem %v disk %v", l.AgentID.Value, cpus, mem, disk)
		}
	}
	for ai, n := range alone {
		agent, inst, _ := strings.Cut(ai, "/")
		if n > 1 || n == 1 && onAgentRunning(st, agent, inst) {
			return fmt.Errorf("%d tasks of %s put on %s beside a sibling without saying so", n, inst, agent)
		}
	}
	for _, u := range plan.Unplaced {
		seen[u.Demand.Key]++
		if u.Metric.Summary == "" {
			return fmt.Errorf("%s unplaced without a summary", u.Demand.Key)
		}
		if u.Metric.Invalid != "" {
			continue
		}
		n := 0
		for _, c := range u.Metric.ConstraintFiltered {
			n += c
		}
		for _, c := range u.Metric.DimensionExhausted {
			n += c
		}
		buckets := map[string]bool{}
		for _, o := range os {
			if o.AgentID.Value != "" {
				buckets[o.AgentID.Value+"/"+o.AllocationInfo.GetRole()] = true
			}
		}
		if n != len(buckets) || u.Metric.AgentsOffered != len(buckets) {
			return fmt.Errorf("%s: metric counts %d of %d offered agents: %+v", u.Demand.Key, n, len(buckets), u.Metric)
		}
	}
	for _, d := range ds {
		if seen[d.Key] == 0 {
			return fmt.Errorf("demand %s neither placed nor unplaced", d.Key)
		}
	}
	return nil
}

func onAgentRunning(st State, agent, instance string) bool {
	for _, k := range st.Running[agent] {
		if k.Instance == instance {
			return true
		}
	}
	return false
}

// checkComplete checks that no unplaced demand would fit what is left of
// an agent it was allowed on: resources only shrink during a pass, so a
// demand that fits at the end fitted when its turn came.
func checkComplete(policy Policy, os []mesos.Offer, st State, plan Plan) error {
	type left struct {
		agent           string
		cpus, mem, disk float64
		ports           map[uint64]bool
		live            map[string]bool
		instances       map[string]bool
	}
	buckets := map[string]*left{}
	get := func(o *mesos.Offer) *left {
		k := o.AgentID.Value + "/" + o.AllocationInfo.GetRole()
		if buckets[k] == nil {
			buckets[k] = &left{agent: o.AgentID.Value, ports: map[uint64]bool{}, live: map[string]bool{}, instances: map[string]bool{}}
		}
		return buckets[k]
	}
	offerByID := map[string]*mesos.Offer{}
	for i := range os {
		o := &os[i]
		if o.AgentID.Value == "" {
			continue
		}
		offerByID[o.ID.Value] = o
		b := get(o)
		for _, r := range o.Resources {
			if !r.IsUnreserved() || r.Revocable != nil {
				continue
			}
			switch r.Name {
			case "cpus":
				b.cpus += r.Scalar.Value
			case "mem":
				b.mem += r.Scalar.Value
			case "disk":
				b.disk += r.Scalar.Value
			case "ports":
				for _, rg := range r.Ranges.Range {
					for n := rg.Begin; n <= rg.End; n++ {
						b.ports[n] = true
					}
				}
			}
		}
	}
	// Agent-wide facts: live executors and instances present.
	for _, o := range os {
		for _, b := range buckets {
			if b.agent != o.AgentID.Value {
				continue
			}
			for _, e := range o.ExecutorIDs {
				b.live[e.Value] = true
			}
			for _, k := range st.Running[b.agent] {
				b.instances[k.Instance] = true
			}
		}
	}
	for _, l := range plan.Launches {
		b := get(offerByID[l.OfferIDs[0].Value])
		for _, pl := range l.Placements {
			s := scalars(pl.Resources)
			b.cpus -= s["cpus"]
			b.mem -= s["mem"]
			b.disk -= s["disk"]
			if pl.ExecutorCharged {
				e := scalars(pl.ExecutorResources)
				b.cpus -= e["cpus"]
				b.mem -= e["mem"]
			}
			for _, n := range portsOf(pl.Resources) {
				delete(b.ports, n)
			}
			for _, ob := range buckets {
				if ob.agent == b.agent {
					ob.instances[pl.Demand.Key.Instance] = true
				}
			}
		}
	}
	for _, u := range plan.Unplaced {
		d := u.Demand
		if u.Metric.Invalid != "" {
			continue
		}
		mayShare := !st.Now.Before(d.QueuedSince.Add(policy.CoLocateAfter))
		for _, b := range buckets {
			if d.PrevAgent != "" && st.Now.Before(d.StickyUntil) && b.agent != d.PrevAgent {
				continue
			}
			if b.instances[d.Key.Instance] && !mayShare {
				continue
			}
			cpus, mem := toMilli(d.CPU), toMilli(d.Mem)
			if d.Executor.ID != "" && !b.live[d.Executor.ID] {
				cpus += toMilli(d.Executor.CPU)
				mem += toMilli(d.Executor.Mem)
			}
			const eps = 1e-6
			if b.cpus+eps >= cpus.float() && b.mem+eps >= mem.float() && b.disk+eps >= toMilli(d.Disk).float() && len(b.ports) >= len(d.Ports) {
				return fmt.Errorf("%s unplaced (%s) but fits what is left on %s: cpus %v mem %v disk %v ports %d",
					d.Key, u.Metric.Summary, b.agent, b.cpus, b.mem, b.disk, len(b.ports))
			}
		}
	}
	return nil
}
