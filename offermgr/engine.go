package offermgr

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Policy tunes placement. The zero value is valid but strict (no waiting
// before co-location, every feasible agent compared); DefaultPolicy is what
// a scheduler should start from.
type Policy struct {
	// CoLocateAfter is how long a task waits, counted from when it was
	// queued, for an agent that runs no other task of its instance. Until
	// then such agents are infeasible; afterwards the task may share an
	// agent, but only in a pass where no agent without a sibling fits.
	// The wait lets offers from every agent arrive (declined agents come
	// back after the refuse filter) before spreading is given up.
	CoLocateAfter time.Duration
	// Candidates is how many feasible agents the ranker compares for one
	// task before choosing; 0 compares all. A few random candidates give
	// nearly the balance of comparing all at a fraction of the cost
	// (the "power of choices" Nomad uses too).
	Candidates int
}

// Defaults of DefaultPolicy.
const (
	DefaultCoLocateAfter = 30 * time.Second
	DefaultCandidates    = 4
)

// DefaultPolicy returns the recommended policy.
func DefaultPolicy() Policy {
	return Policy{CoLocateAfter: DefaultCoLocateAfter, Candidates: DefaultCandidates}
}

// Validate reports a setting that makes no sense.
func (p Policy) Validate() error {
	var errs []error
	if p.CoLocateAfter < 0 {
		errs = append(errs, fmt.Errorf("co-locate after: %v is negative", p.CoLocateAfter))
	}
	if p.Candidates < 0 {
		errs = append(errs, fmt.Errorf("candidates: %d is negative", p.Candidates))
	}
	return errors.Join(errs...)
}

// State is what Place needs to know besides offers and demands.
type State struct {
	// Now is the clock reading for sticky deadlines and the co-location
	// wait.
	Now time.Time
	// Running lists, per agent ID, this framework's tasks that are launched
	// and not terminal; the spread check counts them.
	Running map[string][]Key
	// Seed drives the shuffle of agents; the same inputs and seed give the
	// same plan, so a logged seed replays a decision.
	Seed uint64
	// Framework is the value of the stateful.framework label on the
	// framework's reservations; empty ignores every reservation.
	Framework string
	// Known holds the resource IDs of every reservation a task records;
	// an offered reservation of the framework that is not in it is
	// released. nil releases nothing.
	Known map[string]bool
}

// Plan is the outcome of one placement pass.
type Plan struct {
	// Launches has one entry per agent (and allocation role) that got
	// tasks; all of that agent's offers go into its ACCEPT.
	Launches []Launch
	// Declined lists the offers nothing was placed on.
	Declined []mesos.OfferID
	// Unplaced explains, in placement order, each demand that did not fit.
	Unplaced []Unplaced
}

// Launch is what to ACCEPT on one agent: the offers (Mesos requires all
// offers of one ACCEPT to be on one agent and one role) and the tasks.
type Launch struct {
	AgentID    mesos.AgentID
	Hostname   string
	OfferIDs   []mesos.OfferID
	Placements []Placement
}

// Placement is one task placed on an agent.
type Placement struct {
	Demand   Demand
	AgentID  mesos.AgentID
	Hostname string
	// Ports maps each of Demand.Ports to its assigned number.
	Ports map[string]uint32
	// Resources are the task's resources (cpus, mem, disk when non-zero,
	// ports when any) shaped like the offer's: same role, reservations and
	// allocation_info. They go into TaskInfo.resources as they are.
	// Resources of one plan share those role and allocation values, so
	// treat them as read-only (Resources.Clone before changing one).
	Resources mesos.Resources
	// ExecutorResources are the executor's cpus and mem in the same shape,
	// for ExecutorInfo.resources; nil when Demand.Executor.ID is empty.
	// Mesos wants a byte-identical ExecutorInfo for an executor that is
	// already live, so a scheduler reusing one sends what it sent first.
	ExecutorResources mesos.Resources
	// ExecutorCharged reports whether the executor's resources were taken
	// from this offer: false when the offer listed the executor in
	// executor_ids or an earlier placement in this plan started it.
	ExecutorCharged bool
	// Reason says why this agent was chosen.
	Reason string
	// Reserved is the demand's reservation as offered: Resources and
	// ExecutorResources are then its task and executor parts, the volume
	// included. nil for a placement on unreserved resources.
	Reserved *Reserved
	// Release asks for DESTROY and UNRESERVE of Reserved, no launch.
	// Orphan: the reservation belongs to no task.
	Release, Orphan bool
}

// Unplaced is a demand that got no agent, with the reasons.
type Unplaced struct {
	Demand Demand
	Metric PlacementMetric
}

// Place matches demands to offers. It is a pure function: no I/O, no
// clock, no global state; the same arguments give the same plan.
//
// Demands are placed one by one, those that can use only their previous
// agent first, then oldest first. For each demand the agents are checked
// cheapest first, each check recording a named reason when it says no:
//
//  1. sticky: before its deadline a relaunched ordinal fits only its
//     previous agent;
//  2. spread: an agent running, or just given, another task of the same
//     instance is infeasible (relaxed after Policy.CoLocateAfter, and then
//     only when no other agent fits);
//  3. resources: cpus, mem, disk, then ports, all from one reservation
//     pool, executor resources included when the agent lacks the executor.
//
// Among feasible agents the ranker prefers the previous agent, then (when
// co-locating) the agent with the fewest siblings, then the least-loaded
// one: the agent that would keep the most headroom measured in copies of
// the task. Least-loaded rather than bin-packing because stateful tasks are
// long-lived and memory-hungry: spreading load limits what one agent
// failure takes down and leaves room for the workload to grow, and
// fragmentation matters less when tasks rarely come and go. Agents are
// visited in a seeded shuffle, continuing where the previous demand
// stopped, and at most Policy.Candidates feasible agents are compared.
func Place(policy Policy, offers []mesos.Offer, demands []Demand, st State) Plan {
	p := newPass(policy, offers, st)
	var plan Plan

	type queued struct {
		d      *Demand
		sticky bool
	}
	order := make([]queued, 0, len(demands))
	var reserved []*Demand
	seen := make(map[Key]bool, len(demands))
	for i := range demands {
		d := &demands[i]
		if err := d.Validate(); err != nil {
			plan.Unplaced = append(plan.Unplaced, invalid(d, st.Now, len(p.buckets), "invalid demand: "+err.Error()))
			continue
		}
		if seen[d.Key] {
			plan.Unplaced = append(plan.Unplaced, invalid(d, st.Now, len(p.buckets), "invalid demand: duplicate of an earlier demand for "+d.Key.String()))
			continue
		}
		seen[d.Key] = true
		if d.ReservationID != "" {
			reserved = append(reserved, d)
			continue
		}
		order = append(order, queued{d, p.stickyActive(d)})
	}
	// Reservations first: they fit nowhere else, and they take nothing
	// from the unreserved pools.
	for _, d := range reserved {
		m, ok, handled := p.placeReserved(d)
		switch {
		case !handled:
			order = append(order, queued{d, p.stickyActive(d)})
		case !ok:
			plan.Unplaced = append(plan.Unplaced, Unplaced{Demand: *d, Metric: m})
		}
	}
	p.releaseOrphans(st.Known)
	// Most constrained first: a task that fits only its previous agent must
	// not lose that agent to a task that could go anywhere.
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].sticky != order[j].sticky {
			return order[i].sticky
		}
		return order[i].d.QueuedSince.Before(order[j].d.QueuedSince)
	})

	for _, q := range order {
		if m, ok := p.place(q.d); !ok {
			plan.Unplaced = append(plan.Unplaced, Unplaced{Demand: *q.d, Metric: m})
		}
	}

	for _, b := range p.buckets {
		if b.launch != nil {
			plan.Launches = append(plan.Launches, *b.launch)
		} else {
			plan.Declined = append(plan.Declined, b.offerIDs...)
		}
	}
	plan.Declined = append(plan.Declined, p.orphans...)
	return plan
}

func invalid(d *Demand, now time.Time, agents int, why string) Unplaced {
	return Unplaced{Demand: *d, Metric: PlacementMetric{At: now, AgentsOffered: agents, Invalid: why, Summary: why}}
}

// agentInfo is what one pass knows about an offered agent.
type agentInfo struct {
	id       string
	hostname string
	// tasks lists, per instance, our tasks on the agent: running ones and
	// those placed earlier in this pass.
	tasks map[string][]Key
	// executors holds the executor IDs the offers list as live.
	executors map[string]bool
	buckets   []*bucket
	// siblingMark equals pass.mark while the demand being placed has a
	// sibling here: an integer compare instead of a map lookup per check.
	siblingMark uint64
}

// bucket is the offered resources of one agent for one allocation role:
// the unit of one ACCEPT.
type bucket struct {
	idx      int
	agent    *agentInfo
	offerIDs []mesos.OfferID
	pools    []*pool
	launch   *Launch
	// started holds executors this pass starts here. It is per bucket, not
	// per agent: Mesos allocates an executor's resources to one role, so a
	// task of another role cannot share it.
	started map[string]bool
}

// shape is a demand's resource footprint; demands of one shape fit or miss
// the same agents, so their resource checks are cached per shape.
type shape struct {
	cpus, mem, disk  milli
	ports            int
	execCPU, execMem milli
}

// shapeCache remembers which buckets lacked resources for a shape. Within
// a pass resources only shrink, so a miss stays a miss; misses computed
// while the executor was already on the agent are not cached, because a
// different demand of the same shape would pay for the executor.
type shapeCache struct {
	exhausted []dimension // per bucket index; dimNone = not known
	have      []milli     // what the bucket had in the exhausted dimension
	count     int
	perDim    [numDimensions]int
	need      [numDimensions]milli
	best      [numDimensions]milli
}

type pass struct {
	policy  Policy
	now     time.Time
	agents  map[string]*agentInfo
	buckets []*bucket
	// order is the seeded shuffle of buckets; cursor is where the next
	// scan starts, so consecutive demands spread over the agents.
	order  []*bucket
	cursor int
	// orphans are offers without an agent ID: nothing can be placed on
	// them, but they must still be declined.
	orphans []mesos.OfferID
	// hosts lists, per instance, the offered agents that run one of its
	// tasks; execCount counts offered agents per live executor ID.
	hosts     map[string][]*agentInfo
	execCount map[string]int
	shapes    map[shape]*shapeCache
	metric    metricBuilder
	mark      uint64
	// reserved are the framework's reservations in the offers, by id.
	reserved map[string]*reservedIn
}

func newPass(policy Policy, offers []mesos.Offer, st State) *pass {
	p := &pass{
		policy:    policy,
		now:       st.Now,
		agents:    map[string]*agentInfo{},
		hosts:     map[string][]*agentInfo{},
		execCount: map[string]int{},
		shapes:    map[shape]*shapeCache{},
		reserved:  map[string]*reservedIn{},
	}
	byKey := map[string]*bucket{}
	seenOffer := make(map[string]bool, len(offers))
	for i := range offers {
		o := &offers[i]
		if o.ID.Value == "" || seenOffer[o.ID.Value] {
			continue
		}
		seenOffer[o.ID.Value] = true
		if o.AgentID.Value == "" {
			p.orphans = append(p.orphans, o.ID)
			continue
		}
		a := p.agents[o.AgentID.Value]
		if a == nil {
			a = &agentInfo{id: o.AgentID.Value, hostname: o.Hostname, tasks: map[string][]Key{}, executors: map[string]bool{}}
			p.agents[a.id] = a
		}
		for _, e := range o.ExecutorIDs {
			if !a.executors[e.Value] {
				a.executors[e.Value] = true
				p.execCount[e.Value]++
			}
		}
		key := a.id + "\x00" + o.AllocationInfo.GetRole()
		b := byKey[key]
		if b == nil {
			b = &bucket{idx: len(p.buckets), agent: a}
			byKey[key] = b
			p.buckets = append(p.buckets, b)
			a.buckets = append(a.buckets, b)
		}
		b.offerIDs = append(b.offerIDs, o.ID)
		for j := range o.Resources {
			r := &o.Resources[j]
			if p.collectReserved(b, r, st.Framework) {
				continue
			}
			res, ok := usableReservation(r)
			if !ok {
				continue
			}
			b.poolFor(res).add(r)
		}
	}
	for _, b := range p.buckets {
		// Reserved pools first: an operator set them aside for us, and
		// using them first leaves unreserved resources to others.
		sort.SliceStable(b.pools, func(i, j int) bool { return b.pools[i].reservation != "*" && b.pools[j].reservation == "*" })
	}
	for id, a := range p.agents {
		for _, k := range st.Running[id] {
			if len(a.tasks[k.Instance]) == 0 {
				p.hosts[k.Instance] = append(p.hosts[k.Instance], a)
			}
			a.tasks[k.Instance] = append(a.tasks[k.Instance], k)
		}
	}
	p.order = append([]*bucket(nil), p.buckets...)
	rng := rand.New(rand.NewPCG(st.Seed, 0x6f666665726d6772)) // "offermgr"
	rng.Shuffle(len(p.order), func(i, j int) { p.order[i], p.order[j] = p.order[j], p.order[i] })
	return p
}

func (b *bucket) poolFor(reservation string) *pool {
	for _, pl := range b.pools {
		if pl.reservation == reservation {
			return pl
		}
	}
	pl := &pool{reservation: reservation}
	b.pools = append(b.pools, pl)
	return pl
}

func (p *pass) stickyActive(d *Demand) bool {
	return d.PrevAgent != "" && p.now.Before(d.StickyUntil)
}

// demandInfo is a demand with what the checks derive from it once.
type demandInfo struct {
	d            *Demand
	task         need // without executor
	withExec     need // with executor
	cache        *shapeCache
	stickyActive bool
	coLocateAt   time.Time
	// execSomewhere: the executor is live or started on some agent.
	execSomewhere bool
}

// candidate is a feasible bucket with its rank.
type candidate struct {
	b        *bucket
	pl       *pool
	charged  bool
	prev     bool
	siblings int
	headroom float64
}

// better ranks candidates: previous agent, then fewer siblings of the
// same instance, then more headroom.
func (c *candidate) better(o *candidate) bool {
	if c.prev != o.prev {
		return c.prev
	}
	if c.siblings != o.siblings {
		return c.siblings < o.siblings
	}
	return c.headroom > o.headroom
}

// place finds an agent for d and commits it, or returns why none fits.
func (p *pass) place(d *Demand) (PlacementMetric, bool) {
	info := demandInfo{d: d, stickyActive: p.stickyActive(d)}
	info.task = need{cpus: toMilli(d.CPU), mem: toMilli(d.Mem), disk: toMilli(d.Disk), ports: len(d.Ports)}
	info.withExec = info.task
	info.withExec.cpus += toMilli(d.Executor.CPU)
	info.withExec.mem += toMilli(d.Executor.Mem)
	info.coLocateAt = d.QueuedSince.Add(p.policy.CoLocateAfter)
	sh := shape{info.task.cpus, info.task.mem, info.task.disk, info.task.ports, toMilli(d.Executor.CPU), toMilli(d.Executor.Mem)}
	info.cache = p.shapes[sh]
	if info.cache == nil {
		info.cache = &shapeCache{exhausted: make([]dimension, len(p.buckets)), have: make([]milli, len(p.buckets))}
		p.shapes[sh] = info.cache
	}

	c, ok := p.find(&info, false)
	relaxed := false
	if !ok && p.metric.spread > 0 && !p.now.Before(info.coLocateAt) {
		// Every agent without a sibling was tried and failed, and the task
		// has waited long enough for other agents to be offered: sharing
		// an agent beats not running at all.
		relaxed = true
		c, ok = p.find(&info, true)
	}
	if !ok {
		return p.metric.build(p.now, len(p.buckets), d, info.stickyActive, info.coLocateAt, relaxed), false
	}
	p.commit(&info, c, relaxed)
	return PlacementMetric{}, true
}

// find runs the checks over the agents and returns the best candidate.
// The rejection counts are left in p.metric.
func (p *pass) find(info *demandInfo, relaxed bool) (candidate, bool) {
	p.metric.reset()
	d := info.d
	p.mark++
	for _, a := range p.hosts[d.Key.Instance] {
		a.siblingMark = p.mark
	}
	// Most executors run nowhere yet; then no agent needs a lookup.
	info.execSomewhere = d.Executor.ID != "" && p.execCount[d.Executor.ID] > 0
	var best candidate
	found := 0
	consider := func(b *bucket) bool {
		c, ok := p.check(info, b, relaxed)
		if !ok {
			return false
		}
		if found == 0 || c.better(&best) {
			best = c
		}
		found++
		return true
	}

	prev := p.agents[d.PrevAgent]
	if info.stickyActive {
		// Only the previous agent can pass the sticky check; count the
		// rest without visiting them.
		p.metric.sticky = len(p.buckets)
		if prev != nil {
			p.metric.sticky -= len(prev.buckets)
			for _, b := range prev.buckets {
				consider(b)
			}
		}
		return best, found > 0
	}
	if prev != nil {
		for _, b := range prev.buckets {
			consider(b)
		}
		if found > 0 {
			return best, true
		}
	}
	if p.allExhausted(info, relaxed, prev) {
		return best, false
	}

	n := len(p.order)
	limit := p.policy.Candidates
	if relaxed || limit <= 0 {
		limit = n
	}
	start := p.cursor
	for i := 0; i < n; i++ {
		b := p.order[(start+i)%n]
		if prev != nil && b.agent == prev {
			continue
		}
		if consider(b) && found >= limit {
			p.cursor = (start + i + 1) % n
			break
		}
	}
	return best, found > 0
}

// check runs the spread and resource checks of one bucket.
func (p *pass) check(info *demandInfo, b *bucket, relaxed bool) (candidate, bool) {
	d := info.d
	var siblings []Key
	if b.agent.siblingMark == p.mark {
		siblings = b.agent.tasks[d.Key.Instance]
		if !relaxed {
			p.metric.filterSpread(siblings)
			return candidate{}, false
		}
	}
	exec := d.Executor.ID
	charged := exec != "" && !(info.execSomewhere && (b.agent.executors[exec] || b.started[exec]))
	n := info.task
	if charged {
		n = info.withExec
	}
	cacheable := charged || exec == ""
	sc := info.cache
	if cacheable && sc.exhausted[b.idx] != dimNone {
		dim := sc.exhausted[b.idx]
		p.metric.exhaust(dim, sc.need[dim], sc.have[b.idx])
		return candidate{}, false
	}
	missDim, missHave, progress := dimCPU, milli(0), -1
	for _, pl := range b.pools {
		dim, prog := pl.fits(n)
		if dim == dimNone {
			return candidate{b: b, pl: pl, charged: charged, prev: b.agent.id == d.PrevAgent,
				siblings: len(siblings), headroom: pl.headroom(n)}, true
		}
		if prog > progress || (prog == progress && pl.amount(dim) > missHave) {
			missDim, missHave, progress = dim, pl.amount(dim), prog
		}
	}
	p.metric.exhaust(missDim, n.amount(missDim), missHave)
	if cacheable {
		sc.exhausted[b.idx] = missDim
		sc.have[b.idx] = missHave
		sc.need[missDim] = n.amount(missDim)
		sc.best[missDim] = max(sc.best[missDim], missHave)
		sc.perDim[missDim]++
		sc.count++
	}
	return candidate{}, false
}

// allExhausted answers, without visiting every agent, for a shape that
// already missed on every agent: the counts are the cached ones, except
// that agents already counted by find (the previous agent) are taken out
// and agents running a sibling are moved to the spread constraint, which is
// checked first. It does not apply while the demand's executor runs on
// some offered agent, where the task alone might still fit.
func (p *pass) allExhausted(info *demandInfo, relaxed bool, prev *agentInfo) bool {
	sc := info.cache
	d := info.d
	if sc.count < len(p.buckets) || len(p.buckets) == 0 {
		return false
	}
	if d.Executor.ID != "" && p.execCount[d.Executor.ID] > 0 {
		return false
	}
	m := &p.metric
	var moved [numDimensions]bool
	for dim := dimCPU; dim < numDimensions; dim++ {
		m.exhausted[dim] += sc.perDim[dim]
		m.need[dim] = sc.need[dim]
		m.best[dim] = sc.best[dim]
	}
	if prev != nil {
		for _, b := range prev.buckets {
			m.exhausted[sc.exhausted[b.idx]]--
			moved[sc.exhausted[b.idx]] = true
		}
	}
	if !relaxed {
		for _, a := range p.hosts[d.Key.Instance] {
			if a == prev {
				continue
			}
			for _, b := range a.buckets {
				m.exhausted[sc.exhausted[b.idx]]--
				moved[sc.exhausted[b.idx]] = true
				m.filterSpread(a.tasks[d.Key.Instance])
			}
		}
	}
	// A moved agent may have been the best of its dimension; recount those
	// dimensions over the agents still counted as exhausted.
	for dim := dimCPU; dim < numDimensions; dim++ {
		if !moved[dim] {
			continue
		}
		m.best[dim] = 0
		for _, b := range p.buckets {
			if sc.exhausted[b.idx] != dim || b.agent == prev || (!relaxed && len(b.agent.tasks[d.Key.Instance]) > 0) {
				continue
			}
			m.best[dim] = max(m.best[dim], sc.have[b.idx])
		}
	}
	return true
}

// commit takes the candidate's resources and records the placement.
func (p *pass) commit(info *demandInfo, c candidate, relaxed bool) {
	d := info.d
	pl, a := c.pl, c.b.agent
	n := info.task
	pl.cpus -= n.cpus
	pl.mem -= n.mem
	pl.disk -= n.disk
	// One allocation for all scalar values of the placement, and one for
	// the task's and the executor's resources.
	values := make([]mesos.Value_Scalar, 5)
	all := make(mesos.Resources, 0, 6)
	res := all[:0:4]
	res = append(res, pl.scalar(dimCPU, n.cpus, &values[0]), pl.scalar(dimMem, n.mem, &values[1]))
	if n.disk > 0 {
		res = append(res, pl.scalar(dimDisk, n.disk, &values[2]))
	}
	var ports map[string]uint32
	if n.ports > 0 {
		nums := pl.takePorts(n.ports)
		ports = make(map[string]uint32, n.ports)
		for i, name := range d.Ports {
			ports[name] = nums[i]
		}
		res = append(res, pl.portsResource(nums))
	}
	var execRes mesos.Resources
	if exec := d.Executor.ID; exec != "" {
		ecpu, emem := toMilli(d.Executor.CPU), toMilli(d.Executor.Mem)
		execRes = all[4:4:6]
		if ecpu > 0 {
			execRes = append(execRes, pl.scalar(dimCPU, ecpu, &values[3]))
		}
		if emem > 0 {
			execRes = append(execRes, pl.scalar(dimMem, emem, &values[4]))
		}
		if c.charged {
			pl.cpus -= ecpu
			pl.mem -= emem
			if c.b.started == nil {
				c.b.started = map[string]bool{}
			}
			c.b.started[exec] = true
			p.execCount[exec]++
		}
	}
	siblings := a.tasks[d.Key.Instance]
	if len(siblings) == 0 {
		p.hosts[d.Key.Instance] = append(p.hosts[d.Key.Instance], a)
	}
	a.tasks[d.Key.Instance] = append(siblings, d.Key)

	var reason string
	switch {
	case c.prev && info.stickyActive:
		reason = "previous agent (sticky)"
	case c.prev:
		reason = "previous agent"
	default:
		reason = "least loaded of the candidates"
	}
	if relaxed && len(siblings) > 0 {
		reason += fmt.Sprintf("; shares the agent with %s: no agent without a task of %s fit after waiting %v",
			keyList(siblings), d.Key.Instance, p.policy.CoLocateAfter)
	}
	p.addToLaunch(c.b, Placement{
		Demand:            *d,
		AgentID:           mesos.AgentID{Value: a.id},
		Hostname:          a.hostname,
		Ports:             ports,
		Resources:         res,
		ExecutorResources: execRes,
		ExecutorCharged:   c.charged,
		Reason:            reason,
	})
}

func keyList(ks []Key) string {
	s := ""
	for i, k := range ks {
		if i > 0 {
			s += ", "
		}
		s += k.String()
	}
	return s
}
