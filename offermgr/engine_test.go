package offermgr

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestPlaceFits(t *testing.T) {
	p := Place(DefaultPolicy(), offers(bigAgent("a1")), []Demand{task("cache1", 0)}, state())
	if len(p.Launches) != 1 || len(p.Declined) != 0 || len(p.Unplaced) != 0 {
		t.Fatalf("plan = %+v, want one launch", p)
	}
	l := p.Launches[0]
	if l.AgentID.Value != "a1" || l.Hostname != "host-a1" || !slices.Equal(l.OfferIDs, []mesos.OfferID{{Value: "o-a1"}}) {
		t.Errorf("launch on %s/%s offers %v, want a1/host-a1 [o-a1]", l.AgentID.Value, l.Hostname, l.OfferIDs)
	}
	pl := placementOf(t, p, Key{"cache1", 0})
	if got, want := scalars(pl.Resources), map[string]float64{"cpus": 0.5, "mem": 256, "disk": 512}; !reflect.DeepEqual(got, want) {
		t.Errorf("scalars = %v, want %v", got, want)
	}
	if got := portsOf(pl.Resources); !slices.Equal(got, []uint64{31000}) {
		t.Errorf("ports resource = %v, want [31000]", got)
	}
	if pl.Ports["redis"] != 31000 {
		t.Errorf("Ports = %v, want redis:31000", pl.Ports)
	}
	for _, r := range pl.Resources {
		if r.GetRole() != "*" || r.GetAllocationInfo().GetRole() != "*" {
			t.Errorf("resource %s has role %q allocation %v, want the offer's role * and allocation_info", r.Name, r.GetRole(), r.AllocationInfo)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("resource %s invalid: %v", r.Name, err)
		}
	}
	if pl.ExecutorResources != nil || pl.ExecutorCharged {
		t.Errorf("a command task got executor resources %v charged=%v", pl.ExecutorResources, pl.ExecutorCharged)
	}
}

func TestPlaceExhausted(t *testing.T) {
	small := func(agent string) agentOffer {
		return agentOffer{id: "o-" + agent, agent: agent, cpus: 1, mem: 1024, disk: 1024, ports: []portRange{{31000, 31000}}}
	}
	tests := []struct {
		name    string
		offers  []agentOffer
		demand  func(*Demand)
		counts  map[string]int
		summary string
	}{
		{
			name:    "cpus",
			offers:  []agentOffer{small("a1"), small("a2")},
			demand:  func(d *Demand) { d.CPU = 2 },
			counts:  map[string]int{"cpus": 2},
			summary: "2 agents: 2 lack cpus (need 2, best 1)",
		},
		{
			name:    "mem, best of three",
			offers:  []agentOffer{small("a1"), {id: "o2", agent: "a2", cpus: 1, mem: 128, disk: 1024, ports: []portRange{{31000, 31000}}}, {id: "o3", agent: "a3", cpus: 0.1, mem: 4096, disk: 1024}},
			demand:  func(d *Demand) { d.Mem = 2048 },
			counts:  map[string]int{"mem": 2, "cpus": 1},
			summary: "3 agents: 2 lack mem (need 2048, best 1024), 1 lacks cpus (need 0.5, best 0.1)",
		},
		{
			name:    "disk",
			offers:  []agentOffer{small("a1")},
			demand:  func(d *Demand) { d.Disk = 4096 },
			counts:  map[string]int{"disk": 1},
			summary: "1 agent: 1 lacks disk (need 4096, best 1024)",
		},
		{
			name:    "ports",
			offers:  []agentOffer{small("a1"), {id: "o2", agent: "a2", cpus: 1, mem: 1024, disk: 1024}},
			demand:  func(d *Demand) { d.Ports = []string{"redis", "bus"} },
			counts:  map[string]int{"ports": 2},
			summary: "2 agents: 2 lack ports (need 2, best 1)",
		},
		{
			name:    "fractional cpus stay exact",
			offers:  []agentOffer{{id: "o1", agent: "a1", cpus: 0.3, mem: 1024, disk: 1024, ports: []portRange{{31000, 31000}}}},
			demand:  func(d *Demand) { d.CPU = 0.30000001 },
			counts:  nil, // 0.30000001 rounds to Mesos' 0.300, which fits
			summary: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := task("cache1", 0)
			tt.demand(&d)
			var os []agentOffer
			os = append(os, tt.offers...)
			p := Place(DefaultPolicy(), offers(os...), []Demand{d}, state())
			if tt.counts == nil {
				placementOf(t, p, d.Key)
				return
			}
			m, ok := unplaced(p)[d.Key]
			if !ok {
				t.Fatalf("placed on %v, want unplaced", placedOn(p))
			}
			if !reflect.DeepEqual(m.DimensionExhausted, tt.counts) || len(m.ConstraintFiltered) != 0 {
				t.Errorf("exhausted %v filtered %v, want %v and none", m.DimensionExhausted, m.ConstraintFiltered, tt.counts)
			}
			if m.Summary != tt.summary {
				t.Errorf("summary = %q, want %q", m.Summary, tt.summary)
			}
			if m.AgentsOffered != len(tt.offers) || !m.At.Equal(t0) {
				t.Errorf("agents offered %d at %v, want %d at %v", m.AgentsOffered, m.At, len(tt.offers), t0)
			}
			if len(p.Declined) != len(tt.offers) {
				t.Errorf("declined %v, want every offer", p.Declined)
			}
		})
	}
}

func TestPlaceSpreadsMasterAndSlaves(t *testing.T) {
	demands := []Demand{task("cache1", 0), task("cache1", 1), task("cache1", 2)}
	demands[0].Role = "master"
	for seed := uint64(0); seed < 20; seed++ {
		st := state()
		st.Seed = seed
		p := Place(DefaultPolicy(), offers(bigAgent("a1"), bigAgent("a2"), bigAgent("a3")), demands, st)
		on := placedOn(p)
		hosts := map[string]bool{}
		for _, a := range on {
			hosts[a] = true
		}
		if len(on) != 3 || len(hosts) != 3 {
			t.Fatalf("seed %d: placed %v, want 3 tasks on 3 distinct agents", seed, on)
		}
	}
}

func TestPlaceCoLocation(t *testing.T) {
	policy := Policy{CoLocateAfter: 30 * time.Second, Candidates: 4}
	waited := func(ds []Demand, d time.Duration) []Demand {
		out := slices.Clone(ds)
		for i := range out {
			out[i].QueuedSince = t0.Add(-d)
		}
		return out
	}
	three := []Demand{task("cache1", 0), task("cache1", 1), task("cache1", 2)}

	t.Run("refused before the wait", func(t *testing.T) {
		p := Place(policy, offers(bigAgent("a1"), bigAgent("a2")), waited(three, 10*time.Second), state())
		if on := placedOn(p); len(on) != 2 || on[Key{"cache1", 0}] == on[Key{"cache1", 1}] {
			t.Fatalf("placed %v, want ordinals 0 and 1 on distinct agents", on)
		}
		m := unplaced(p)[Key{"cache1", 2}]
		if m.ConstraintFiltered[ConstraintSpread] != 2 {
			t.Errorf("filtered = %v, want spread: 2", m.ConstraintFiltered)
		}
		want := "2 agents: 2 hold cache1-0, cache1-1 (spread; may share an agent from 12:00:20)"
		if m.Summary != want {
			t.Errorf("summary = %q, want %q", m.Summary, want)
		}
	})
	t.Run("allowed after the wait when no other agent fits", func(t *testing.T) {
		p := Place(policy, offers(bigAgent("a1"), bigAgent("a2")), waited(three, time.Minute), state())
		on := placedOn(p)
		if len(on) != 3 {
			t.Fatalf("placed %v (%s), want all three", on, describeUnplaced(p))
		}
		pl := placementOf(t, p, Key{"cache1", 2})
		if !strings.Contains(pl.Reason, "; shares the agent with cache1-") {
			t.Errorf("reason = %q, want it to say which task it shares with", pl.Reason)
		}
	})
	t.Run("never while another agent fits", func(t *testing.T) {
		for seed := uint64(0); seed < 20; seed++ {
			st := state()
			st.Seed = seed
			p := Place(policy, offers(bigAgent("a1"), bigAgent("a2"), bigAgent("a3")), waited(three, time.Hour), st)
			hosts := map[string]bool{}
			for _, a := range placedOn(p) {
				hosts[a] = true
			}
			if len(hosts) != 3 {
				t.Fatalf("seed %d: placed %v, want 3 distinct agents", seed, placedOn(p))
			}
		}
	})
	t.Run("running tasks count", func(t *testing.T) {
		st := state()
		st.Running = map[string][]Key{"a1": {{"cache1", 0}}, "a9": {{"cache1", 1}}}
		d := waited([]Demand{task("cache1", 2)}, time.Hour)
		p := Place(policy, offers(bigAgent("a1"), bigAgent("a2")), d, st)
		if on := placedOn(p); on[Key{"cache1", 2}] != "a2" {
			t.Fatalf("placed %v, want cache1-2 on a2 (a1 runs cache1-0)", on)
		}
		p = Place(policy, offers(bigAgent("a1")), d, st)
		pl := placementOf(t, p, Key{"cache1", 2})
		if pl.AgentID.Value != "a1" || !strings.Contains(pl.Reason, "cache1-0") {
			t.Errorf("placed on %s because %q, want a1 sharing with cache1-0", pl.AgentID.Value, pl.Reason)
		}
	})
	t.Run("fewest siblings when sharing", func(t *testing.T) {
		st := state()
		st.Running = map[string][]Key{"a1": {{"cache1", 0}, {"cache1", 1}}, "a2": {{"cache1", 2}}}
		p := Place(policy, offers(bigAgent("a1"), bigAgent("a2")), waited([]Demand{task("cache1", 3)}, time.Hour), st)
		if on := placedOn(p); on[Key{"cache1", 3}] != "a2" {
			t.Fatalf("placed %v, want a2 (one sibling, a1 has two)", on)
		}
	})
}

func TestPlaceSticky(t *testing.T) {
	policy := DefaultPolicy()
	sticky := func(until time.Time) Demand {
		d := task("db", 1)
		d.PrevAgent = "a2"
		d.StickyUntil = until
		return d
	}
	// a3 has the most room, so without stickiness least-loaded picks it.
	huge := agentOffer{id: "o-a3", agent: "a3", cpus: 64, mem: 65536, disk: 100000, ports: []portRange{{31000, 32000}}}
	before, after := t0.Add(time.Minute), t0.Add(-time.Second)
	tests := []struct {
		name   string
		until  time.Time
		offers []agentOffer
		want   string // agent, or "" for unplaced
	}{
		{"returns to previous agent", before, []agentOffer{bigAgent("a1"), bigAgent("a2"), huge}, "a2"},
		{"waits while previous agent not offered", before, []agentOffer{bigAgent("a1"), huge}, ""},
		{"still prefers previous agent after the deadline", after, []agentOffer{bigAgent("a1"), bigAgent("a2"), huge}, "a2"},
		{"falls back after the deadline", after, []agentOffer{bigAgent("a1"), huge}, "a3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Place(policy, offers(tt.offers...), []Demand{sticky(tt.until)}, state())
			got := placedOn(p)[Key{"db", 1}]
			if got != tt.want {
				t.Fatalf("placed on %q, want %q (%s)", got, tt.want, describeUnplaced(p))
			}
			if tt.want == "" {
				m := unplaced(p)[Key{"db", 1}]
				if m.ConstraintFiltered[ConstraintSticky] != 2 {
					t.Errorf("filtered = %v, want sticky: 2", m.ConstraintFiltered)
				}
				want := "2 agents: 2 are not agent a2 (sticky until 12:01:00); the previous agent was not offered"
				if m.Summary != want {
					t.Errorf("summary = %q, want %q", m.Summary, want)
				}
			}
		})
	}
	t.Run("sticky task is placed before others take its agent", func(t *testing.T) {
		// a2 fits exactly one task; the non-sticky task is older.
		other := task("web", 0)
		other.QueuedSince = t0.Add(-time.Hour)
		one := agentOffer{id: "o-a2", agent: "a2", cpus: 0.5, mem: 256, disk: 512, ports: []portRange{{31000, 31000}}}
		p := Place(policy, offers(one), []Demand{other, sticky(before)}, state())
		if on := placedOn(p); on[Key{"db", 1}] != "a2" {
			t.Fatalf("placed %v, want db-1 on a2", on)
		}
	})
}

func TestPlaceExecutorCharge(t *testing.T) {
	withExec := func(instance string, ordinal int, exec string) Demand {
		d := task(instance, ordinal)
		d.CPU, d.Mem = 1, 256
		d.Executor = ExecutorDemand{ID: exec, CPU: 0.1, Mem: 32}
		return d
	}
	offer := func(cpus float64, executors ...string) agentOffer {
		return agentOffer{id: "o1", agent: "a1", cpus: cpus, mem: 4096, disk: 4096, ports: []portRange{{31000, 31010}}, executors: executors}
	}
	tests := []struct {
		name    string
		offer   agentOffer
		demands []Demand
		placed  int
		charged []bool
		summary string
	}{
		{"charged when new", offer(1.1), []Demand{withExec("a", 0, "ex-a-0")}, 1, []bool{true}, ""},
		{"does not fit with executor", offer(1.05), []Demand{withExec("a", 0, "ex-a-0")}, 0, nil,
			"1 agent: 1 lacks cpus (need 1.1 incl. executor, best 1.05)"},
		{"not charged when live", offer(1.0, "ex-a-0"), []Demand{withExec("a", 0, "ex-a-0")}, 1, []bool{false}, ""},
		{"charged once per agent", offer(2.1), []Demand{withExec("a", 0, "shared"), withExec("b", 0, "shared")}, 2, []bool{true, false}, ""},
		{"charged per executor", offer(2.1), []Demand{withExec("a", 0, "ex1"), withExec("b", 0, "ex2")}, 1, []bool{true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Place(DefaultPolicy(), offers(tt.offer), tt.demands, state())
			var charged []bool
			var cpus float64
			for _, l := range p.Launches {
				for _, pl := range l.Placements {
					charged = append(charged, pl.ExecutorCharged)
					cpus += scalars(pl.Resources)["cpus"]
					if pl.ExecutorCharged {
						cpus += scalars(pl.ExecutorResources)["cpus"]
					}
					if got := scalars(pl.ExecutorResources); got["cpus"] != 0.1 || got["mem"] != 32 {
						t.Errorf("executor resources = %v, want cpus 0.1 mem 32 whether charged or not", got)
					}
				}
			}
			if len(charged) != tt.placed || !slices.Equal(charged, tt.charged) {
				t.Fatalf("charged = %v, want %v (%s)", charged, tt.charged, describeUnplaced(p))
			}
			if cpus > tt.offer.cpus+1e-9 {
				t.Errorf("took %v cpus from an offer of %v", cpus, tt.offer.cpus)
			}
			if tt.summary != "" {
				if got := p.Unplaced[0].Metric.Summary; got != tt.summary {
					t.Errorf("summary = %q, want %q", got, tt.summary)
				}
			}
		})
	}
}

func TestPlaceManyOnOneOffer(t *testing.T) {
	o := agentOffer{id: "o1", agent: "a1", cpus: 2, mem: 1024, disk: 2048, ports: []portRange{{31005, 31010}, {31000, 31002}}}
	var demands []Demand
	for i := range 5 {
		d := task("inst"+string(rune('a'+i)), 0)
		d.Ports = []string{"client", "peer"}
		demands = append(demands, d)
	}
	p := Place(Policy{Candidates: 0}, offers(o), demands, state())
	if len(p.Launches) != 1 {
		t.Fatalf("launches = %d, want 1", len(p.Launches))
	}
	// 2 cpus and 1024 mem hold four 0.5/256 tasks; 9 ports hold four pairs.
	pls := p.Launches[0].Placements
	if len(pls) != 4 || len(p.Unplaced) != 1 {
		t.Fatalf("placed %d unplaced %d, want 4 and 1", len(pls), len(p.Unplaced))
	}
	seen := map[uint64]bool{}
	total := map[string]float64{}
	for _, pl := range pls {
		for name, v := range scalars(pl.Resources) {
			total[name] += v
		}
		ports := portsOf(pl.Resources)
		if len(ports) != 2 || uint64(pl.Ports["client"]) != ports[0] || uint64(pl.Ports["peer"]) != ports[1] {
			t.Errorf("%s: Ports %v vs resource %v", pl.Demand.Key, pl.Ports, ports)
		}
		for _, n := range ports {
			if seen[n] {
				t.Errorf("port %d given twice", n)
			}
			seen[n] = true
			if !(n >= 31000 && n <= 31002 || n >= 31005 && n <= 31010) {
				t.Errorf("port %d is outside the offered ranges", n)
			}
		}
	}
	if total["cpus"] > 2 || total["mem"] > 1024 || total["disk"] > 2048 {
		t.Errorf("took %v, more than offered", total)
	}
	m := p.Unplaced[0].Metric
	if m.DimensionExhausted["cpus"] != 1 {
		t.Errorf("last task: %v, want cpus exhausted", m.DimensionExhausted)
	}
}

func TestPlaceOffersAndDeclines(t *testing.T) {
	// Two offers for a1 (Mesos may split an agent's resources) are
	// accepted together; a2 and the agentless offer are declined.
	first := agentOffer{id: "o1", agent: "a1", cpus: 0.3, mem: 128, ports: []portRange{{31000, 31000}}}
	second := agentOffer{id: "o2", agent: "a1", cpus: 0.2, mem: 128, disk: 512, ports: []portRange{{31000, 31001}}}
	tiny := agentOffer{id: "o3", agent: "a2", cpus: 0.1, mem: 64}
	orphan := agentOffer{id: "o4", cpus: 4, mem: 4096}
	os := offers(first, second, tiny, orphan)
	os = append(os, os[2]) // a duplicate is ignored, not declined twice
	p := Place(DefaultPolicy(), os, []Demand{task("cache1", 0)}, state())
	if len(p.Launches) != 1 {
		t.Fatalf("launches %+v (%s), want one on a1", p.Launches, describeUnplaced(p))
	}
	l := p.Launches[0]
	if !slices.Equal(l.OfferIDs, []mesos.OfferID{{Value: "o1"}, {Value: "o2"}}) {
		t.Errorf("offer IDs %v, want [o1 o2]", l.OfferIDs)
	}
	if !slices.Equal(p.Declined, []mesos.OfferID{{Value: "o3"}, {Value: "o4"}}) {
		t.Errorf("declined %v, want [o3 o4]", p.Declined)
	}
	if got := portsOf(l.Placements[0].Resources); !slices.Equal(got, []uint64{31000}) {
		t.Errorf("ports %v, want [31000] (the overlapping ranges merge)", got)
	}

	p = Place(DefaultPolicy(), offers(bigAgent("a1"), bigAgent("a2")), nil, state())
	if len(p.Launches) != 0 || len(p.Declined) != 2 {
		t.Errorf("with nothing queued: %+v, want both offers declined", p)
	}
}

func TestPlaceInvalidDemands(t *testing.T) {
	bad := func(f func(*Demand)) Demand { d := task("x", 0); f(&d); return d }
	tests := []struct {
		name string
		d    Demand
		want string
	}{
		{"no instance", bad(func(d *Demand) { d.Key.Instance = "" }), "instance name is empty"},
		{"negative ordinal", bad(func(d *Demand) { d.Key.Ordinal = -1 }), "ordinal -1 is negative"},
		{"zero cpu", bad(func(d *Demand) { d.CPU = 0 }), "cpu: must be at least 0.001"},
		{"NaN mem", bad(func(d *Demand) { d.Mem = nan() }), "mem: NaN is not a number"},
		{"negative disk", bad(func(d *Demand) { d.Disk = -1 }), "disk: -1 is negative"},
		{"huge cpu", bad(func(d *Demand) { d.CPU = 1e300 }), "too large"},
		{"duplicate port", bad(func(d *Demand) { d.Ports = []string{"a", "a"} }), `"a" is listed twice`},
		{"empty port", bad(func(d *Demand) { d.Ports = []string{""} }), "empty port name"},
		{"executor without ID", bad(func(d *Demand) { d.Executor.CPU = 0.1 }), "without an executor ID"},
		{"no queue time", bad(func(d *Demand) { d.QueuedSince = time.Time{} }), "queued since: not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := task("ok", 0)
			p := Place(DefaultPolicy(), offers(bigAgent("a1")), []Demand{tt.d, good}, state())
			if _, ok := placedOn(p)[good.Key]; !ok {
				t.Errorf("a valid demand beside an invalid one was not placed")
			}
			m, ok := unplaced(p)[tt.d.Key]
			if !ok || !strings.Contains(m.Invalid, tt.want) || m.Summary != m.Invalid {
				t.Errorf("metric %+v, want Invalid containing %q", m, tt.want)
			}
		})
	}
	t.Run("duplicate key", func(t *testing.T) {
		p := Place(DefaultPolicy(), offers(bigAgent("a1"), bigAgent("a2")), []Demand{task("x", 0), task("x", 0)}, state())
		if len(placedOn(p)) != 1 || len(p.Unplaced) != 1 || !strings.Contains(p.Unplaced[0].Metric.Invalid, "duplicate") {
			t.Errorf("plan %+v, want one placed and one duplicate", p)
		}
	})
}

func nan() float64 { z := 0.0; return z / z }

func TestPlaceReservations(t *testing.T) {
	scalar := func(name string, v float64, role string, reserved bool) mesos.Resource {
		r := mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v},
			AllocationInfo: &mesos.Resource_AllocationInfo{Role: ptr("stateful")}}
		if reserved {
			r.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: ptr(role)}}
		}
		return r
	}
	dynamic := scalar("cpus", 16, "stateful", false)
	dynamic.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: ptr("stateful"), Principal: ptr("other")}}
	revocable := scalar("mem", 16384, "", false)
	revocable.Revocable = &mesos.Resource_RevocableInfo{}
	o := mesos.Offer{
		ID: mesos.OfferID{Value: "o1"}, AgentID: mesos.AgentID{Value: "a1"}, Hostname: "h1",
		AllocationInfo: &mesos.Resource_AllocationInfo{Role: ptr("stateful")},
		Resources: mesos.Resources{
			scalar("cpus", 2, "", false), scalar("mem", 2048, "", false),
			scalar("cpus", 1, "stateful", true), scalar("mem", 512, "stateful", true),
			dynamic, revocable,
		},
	}
	d := task("db", 0)
	d.Disk, d.Ports = 0, nil
	p := Place(DefaultPolicy(), []mesos.Offer{o}, []Demand{d, task("db2", 0)}, state())
	pl := placementOf(t, p, Key{"db", 0})
	for _, r := range pl.Resources {
		if len(r.Reservations) != 1 || r.Reservations[0].GetRole() != "stateful" || r.GetAllocationInfo().GetRole() != "stateful" {
			t.Errorf("%s: %+v, want the static reservation for stateful taken first", r.Name, r)
		}
	}
	// db2 needs disk and a port the offer lacks; the dynamic reservation and
	// the revocable memory must not make up for anything.
	m := unplaced(p)[Key{"db2", 0}]
	if m.DimensionExhausted["disk"] != 1 {
		t.Errorf("db2: %v, want disk exhausted", m.DimensionExhausted)
	}
	big := task("big", 0)
	big.CPU, big.Disk, big.Ports = 3, 0, nil
	p = Place(DefaultPolicy(), []mesos.Offer{o}, []Demand{big}, state())
	if m := unplaced(p)[big.Key]; m.Summary != "1 agent: 1 lacks cpus (need 3, best 2)" {
		t.Errorf("3 cpus across two reservations: %q, want a miss (one task, one pool)", m.Summary)
	}
}

func TestPlaceDeterministic(t *testing.T) {
	var os []agentOffer
	for i := range 20 {
		os = append(os, bigAgent(string(rune('a'+i))))
	}
	var ds []Demand
	for i := range 30 {
		ds = append(ds, task("i"+string(rune('a'+i%10)), i/10))
	}
	st := state()
	st.Seed = 42
	a := Place(DefaultPolicy(), offers(os...), ds, st)
	b := Place(DefaultPolicy(), offers(os...), ds, st)
	if !reflect.DeepEqual(placedOn(a), placedOn(b)) {
		t.Errorf("same seed, different plans")
	}
	st.Seed = 43
	c := Place(DefaultPolicy(), offers(os...), ds, st)
	if reflect.DeepEqual(placedOn(a), placedOn(c)) {
		t.Errorf("different seeds gave the same plan; the shuffle is not seeded")
	}
}

// TestPlaceExhaustedShortcut checks that the per-shape shortcut for a
// cluster that is full explains a task exactly as a fresh pass would.
func TestPlaceExhaustedShortcut(t *testing.T) {
	var os []agentOffer
	for i := range 6 {
		os = append(os, agentOffer{id: "o" + string(rune('0'+i)), agent: "a" + string(rune('0'+i)),
			cpus: 1 + float64(i)/10, mem: 200 + float64(i), disk: 1024, ports: []portRange{{31000, 31005}}})
	}
	st := state()
	st.Running = map[string][]Key{"a2": {{"c", 0}}, "a5": {{"c", 1}}, "a4": {{"z", 0}}}
	first := task("x", 0) // fills the shape cache for every agent
	probe := task("c", 2) // same shape, two agents run its siblings
	sticky := task("z", 1)
	sticky.PrevAgent, sticky.StickyUntil = "a4", t0.Add(-time.Second) // after the deadline: a4 is checked first
	for _, d := range []Demand{probe, sticky} {
		want := unplaced(Place(DefaultPolicy(), offers(os...), []Demand{d}, st))[d.Key]
		got := unplaced(Place(DefaultPolicy(), offers(os...), []Demand{first, d}, st))[d.Key]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: shortcut gave\n%+v\nfresh pass gave\n%+v", d.Key, got, want)
		}
	}
}

func TestPlaceIgnoresMalformedResources(t *testing.T) {
	r := func(name string, typ mesos.Value_Type) mesos.Resource {
		return unreserved(mesos.Resource{Name: name, Type: typ.Enum()})
	}
	rangesCPU := r("cpus", mesos.RANGES)
	rangesCPU.Ranges = &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 1, End: 100}}}
	negMem := r("mem", mesos.SCALAR)
	negMem.Scalar = &mesos.Value_Scalar{Value: -4096}
	noScalar := r("disk", mesos.SCALAR)
	ports := r("ports", mesos.RANGES)
	ports.Ranges = &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 0, End: 5}, {Begin: 70000, End: 70010}, {Begin: 31001, End: 31000}, {Begin: 31000, End: 31001}}}
	scalarPorts := r("ports", mesos.SCALAR)
	scalarPorts.Scalar = &mesos.Value_Scalar{Value: 1000}
	gpus := r("gpus", mesos.SCALAR)
	gpus.Scalar = &mesos.Value_Scalar{Value: 1}
	// Legacy static reservation: role set, no reservation info.
	legacyCPU := mesos.Resource{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 1}, Role: ptr("stateful")}
	legacyMem := mesos.Resource{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 1024}, Role: ptr("stateful")}
	legacyPorts := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 32000, End: 32000}}}, Role: ptr("stateful")}
	o := mesos.Offer{ID: mesos.OfferID{Value: "o1"}, AgentID: mesos.AgentID{Value: "a1"},
		Resources: mesos.Resources{rangesCPU, negMem, noScalar, ports, scalarPorts, gpus, legacyCPU, legacyMem, legacyPorts}}

	one := task("one", 0)
	one.Disk = 0
	p := Place(DefaultPolicy(), []mesos.Offer{o}, []Demand{one}, state())
	pl := placementOf(t, p, one.Key)
	if pl.Ports["redis"] != 32000 {
		t.Errorf("ports %v, want redis:32000 from the static reservation", pl.Ports)
	}
	for _, res := range pl.Resources {
		if res.GetRole() != "stateful" {
			t.Errorf("%s has role %q, want the legacy static role kept", res.Name, res.GetRole())
		}
	}

	two := task("two", 0)
	two.Disk, two.CPU, two.Ports = 0, 2, []string{"a", "b", "c"}
	p = Place(DefaultPolicy(), []mesos.Offer{o}, []Demand{two}, state())
	if m := unplaced(p)[two.Key]; m.Summary != "1 agent: 1 lacks cpus (need 2, best 1)" {
		t.Errorf("summary %q: malformed cpus or mem were counted", m.Summary)
	}
	// Unreserved only: the valid port range is 31000-31001.
	cpus := r("cpus", mesos.SCALAR)
	cpus.Scalar = &mesos.Value_Scalar{Value: 4}
	mem := r("mem", mesos.SCALAR)
	mem.Scalar = &mesos.Value_Scalar{Value: 4096}
	o.Resources = append(o.Resources[:6:6], cpus, mem)
	three := task("three", 0)
	three.Disk, three.Ports = 0, []string{"a", "b", "c"}
	p = Place(DefaultPolicy(), []mesos.Offer{o}, []Demand{three}, state())
	if m := unplaced(p)[three.Key]; m.Summary != "1 agent: 1 lacks ports (need 3, best 2)" {
		t.Errorf("summary %q", m.Summary)
	}
	three.Ports = three.Ports[:2]
	p = Place(DefaultPolicy(), []mesos.Offer{o}, []Demand{three}, state())
	if got := portsOf(placementOf(t, p, three.Key).Resources); !slices.Equal(got, []uint64{31000, 31001}) {
		t.Errorf("ports %v, want [31000 31001]", got)
	}
}
