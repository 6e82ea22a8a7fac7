package offermgr

import (
	"fmt"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// t0 is the fixed clock of the engine tests.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type portRange [2]uint64

// agentOffer describes one hand-built offer.
type agentOffer struct {
	id, agent       string
	cpus, mem, disk float64
	ports           []portRange
	executors       []string
}

// build makes the offer the way Mesos 1.12 sends it to a MULTI_ROLE
// framework in role "*" (see mesos-transcripts): every resource carries
// role "*" and allocation_info.
func (a agentOffer) build() mesos.Offer {
	var rs mesos.Resources
	add := func(name string, v float64) {
		if v > 0 {
			rs = append(rs, unreserved(mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}))
		}
	}
	if len(a.ports) > 0 {
		var rg []mesos.Value_Range
		for _, p := range a.ports {
			rg = append(rg, mesos.Value_Range{Begin: p[0], End: p[1]})
		}
		rs = append(rs, unreserved(mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rg}}))
	}
	add("cpus", a.cpus)
	add("mem", a.mem)
	add("disk", a.disk)
	o := mesos.Offer{
		ID:             mesos.OfferID{Value: a.id},
		FrameworkID:    mesos.FrameworkID{Value: "fw"},
		AgentID:        mesos.AgentID{Value: a.agent},
		Hostname:       "host-" + a.agent,
		Resources:      rs,
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: ptr("*")},
	}
	for _, e := range a.executors {
		o.ExecutorIDs = append(o.ExecutorIDs, mesos.ExecutorID{Value: e})
	}
	return o
}

func unreserved(r mesos.Resource) mesos.Resource {
	r.Role = ptr("*")
	r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: ptr("*")}
	return r
}

func offers(as ...agentOffer) []mesos.Offer {
	out := make([]mesos.Offer, len(as))
	for i, a := range as {
		out[i] = a.build()
	}
	return out
}

// bigAgent is an agent with room for many small tasks.
func bigAgent(agent string) agentOffer {
	return agentOffer{id: "o-" + agent, agent: agent, cpus: 8, mem: 8192, disk: 10240, ports: []portRange{{31000, 31099}}}
}

// task is a 0.5 cpu, 256 MB, 512 MB disk demand with one "redis" port.
func task(instance string, ordinal int) Demand {
	return Demand{
		Key:         Key{instance, ordinal},
		Role:        "slave",
		CPU:         0.5,
		Mem:         256,
		Disk:        512,
		Ports:       []string{"redis"},
		QueuedSince: t0,
	}
}

func state() State { return State{Now: t0, Seed: 1} }

// placedOn maps each placed task to its agent.
func placedOn(p Plan) map[Key]string {
	m := map[Key]string{}
	for _, l := range p.Launches {
		for _, pl := range l.Placements {
			m[pl.Demand.Key] = l.AgentID.Value
		}
	}
	return m
}

func unplaced(p Plan) map[Key]PlacementMetric {
	m := map[Key]PlacementMetric{}
	for _, u := range p.Unplaced {
		m[u.Demand.Key] = u.Metric
	}
	return m
}

func placementOf(t *testing.T, p Plan, k Key) Placement {
	t.Helper()
	for _, l := range p.Launches {
		for _, pl := range l.Placements {
			if pl.Demand.Key == k {
				return pl
			}
		}
	}
	t.Fatalf("%s not placed; unplaced: %v", k, describeUnplaced(p))
	return Placement{}
}

func describeUnplaced(p Plan) string {
	s := ""
	for _, u := range p.Unplaced {
		s += fmt.Sprintf("[%s: %s] ", u.Demand.Key, u.Metric.Summary)
	}
	return s
}

// scalars sums the scalar resources by name.
func scalars(rs mesos.Resources) map[string]float64 {
	m := map[string]float64{}
	for _, r := range rs {
		if r.Scalar != nil {
			m[r.Name] += r.Scalar.Value
		}
	}
	return m
}

func portsOf(rs mesos.Resources) []uint64 {
	var out []uint64
	for _, r := range rs {
		if r.Name == "ports" && r.Ranges != nil {
			for _, rg := range r.Ranges.Range {
				for n := rg.Begin; n <= rg.End; n++ {
					out = append(out, n)
				}
			}
		}
	}
	return out
}
