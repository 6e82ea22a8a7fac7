package offermgr

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Names of the constraints that filter agents, as they appear in
// PlacementMetric.ConstraintFiltered.
const (
	// ConstraintSticky: before its sticky deadline a relaunched ordinal
	// only fits the agent holding its volume.
	ConstraintSticky = "sticky"
	// ConstraintSpread: the agent already runs (or was just given) another
	// task of the same instance.
	ConstraintSpread = "spread"
)

// PlacementMetric explains why a queued task was not placed on the last
// offers it was matched against: every offered agent is counted once, under
// the first check that rejected it (constraints first, then resources in the
// order cpus, mem, disk, ports).
type PlacementMetric struct {
	// At is when the offers were evaluated.
	At time.Time `json:"at"`
	// AgentsOffered is how many agents the offers covered.
	AgentsOffered int `json:"agents_offered"`
	// ConstraintFiltered counts agents per constraint that excluded them.
	ConstraintFiltered map[string]int `json:"constraint_filtered,omitempty"`
	// DimensionExhausted counts agents per resource they lacked.
	DimensionExhausted map[string]int `json:"dimension_exhausted,omitempty"`
	// Invalid is set when the demand itself is malformed and never fits.
	Invalid string `json:"invalid,omitempty"`
	// Summary says the above in one line, e.g. "3 agents: 2 lack mem (need
	// 256, best 128), 1 holds cache1-0 (spread)".
	Summary string `json:"summary"`
}

// clone returns a deep copy, so a stored metric never aliases a caller's.
func (m PlacementMetric) clone() PlacementMetric {
	c := m
	if m.ConstraintFiltered != nil {
		c.ConstraintFiltered = make(map[string]int, len(m.ConstraintFiltered))
		for k, v := range m.ConstraintFiltered {
			c.ConstraintFiltered[k] = v
		}
	}
	if m.DimensionExhausted != nil {
		c.DimensionExhausted = make(map[string]int, len(m.DimensionExhausted))
		for k, v := range m.DimensionExhausted {
			c.DimensionExhausted[k] = v
		}
	}
	return c
}

// metricBuilder collects rejections for one demand during one pass. It
// keeps plain arrays while scanning and builds maps and text only for
// demands that end up unplaced, which keeps the hot loop allocation-free.
type metricBuilder struct {
	sticky, spread int
	exhausted      [numDimensions]int
	// need and best remember, per dimension, what the task needed and the
	// most any rejected agent had, for the summary.
	need [numDimensions]milli
	best [numDimensions]milli
	// blockers are the tasks that made agents fail the spread check.
	blockers []Key
}

func (b *metricBuilder) reset() {
	*b = metricBuilder{blockers: b.blockers[:0]}
}

func (b *metricBuilder) exhaust(d dimension, need, have milli) {
	if b.exhausted[d] == 0 || have > b.best[d] {
		b.best[d] = have
		b.need[d] = need
	}
	b.exhausted[d]++
}

func (b *metricBuilder) filterSpread(holders []Key) {
	b.spread++
	for _, k := range holders {
		if len(b.blockers) >= maxBlockersShown+1 {
			break
		}
		if !containsKey(b.blockers, k) {
			b.blockers = append(b.blockers, k)
		}
	}
}

const maxBlockersShown = 3

func containsKey(ks []Key, k Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// build turns the counts into a PlacementMetric with its summary.
// stickyTo/stickyUntil and coLocateAt only shape the wording.
func (b *metricBuilder) build(at time.Time, agents int, d *Demand, stickyActive bool, coLocateAt time.Time, relaxed bool) PlacementMetric {
	m := PlacementMetric{At: at, AgentsOffered: agents}
	var parts []string
	if b.sticky > 0 {
		m.ConstraintFiltered = map[string]int{ConstraintSticky: b.sticky}
		parts = append(parts, fmt.Sprintf("%d %s not agent %s (sticky until %s)",
			b.sticky, plural(b.sticky, "is", "are"), d.PrevAgent, d.StickyUntil.Format(time.TimeOnly)))
	}
	if b.spread > 0 {
		if m.ConstraintFiltered == nil {
			m.ConstraintFiltered = map[string]int{}
		}
		m.ConstraintFiltered[ConstraintSpread] = b.spread
		sort.Slice(b.blockers, func(i, j int) bool {
			x, y := b.blockers[i], b.blockers[j]
			return x.Instance < y.Instance || x.Instance == y.Instance && x.Ordinal < y.Ordinal
		})
		names := make([]string, 0, len(b.blockers))
		for i, k := range b.blockers {
			if i == maxBlockersShown {
				names = append(names, "...")
				break
			}
			names = append(names, k.String())
		}
		p := fmt.Sprintf("%d %s %s (spread", b.spread, plural(b.spread, "holds", "hold"), strings.Join(names, ", "))
		if !relaxed && !coLocateAt.IsZero() {
			p += fmt.Sprintf("; may share an agent from %s", coLocateAt.Format(time.TimeOnly))
		}
		parts = append(parts, p+")")
	}
	type dimCount struct {
		d dimension
		n int
	}
	var dims []dimCount
	for d := dimCPU; d < numDimensions; d++ {
		if b.exhausted[d] > 0 {
			dims = append(dims, dimCount{d, b.exhausted[d]})
		}
	}
	// Most common shortage first: it is what the operator should fix.
	sort.SliceStable(dims, func(i, j int) bool { return dims[i].n > dims[j].n })
	if len(dims) > 0 {
		m.DimensionExhausted = make(map[string]int, len(dims))
	}
	for _, dc := range dims {
		m.DimensionExhausted[dc.d.String()] = dc.n
		need, best := b.need[dc.d].String(), b.best[dc.d].String()
		switch {
		case dc.d == dimPorts:
			need, best = fmt.Sprint(int64(b.need[dc.d])), fmt.Sprint(int64(b.best[dc.d]))
		case dc.d == dimCPU && b.need[dc.d] > toMilli(d.CPU), dc.d == dimMem && b.need[dc.d] > toMilli(d.Mem):
			// The user asked for less; say where the rest comes from.
			need += " incl. executor"
		}
		parts = append(parts, fmt.Sprintf("%d %s %s (need %s, best %s)", dc.n, plural(dc.n, "lacks", "lack"), dc.d, need, best))
	}
	switch {
	case agents == 0:
		m.Summary = "no offers"
	case len(parts) == 0:
		// Cannot happen for an unplaced demand with offers; say so rather
		// than print an empty explanation.
		m.Summary = fmt.Sprintf("%d %s: no reason recorded", agents, plural(agents, "agent", "agents"))
	default:
		m.Summary = fmt.Sprintf("%d %s: %s", agents, plural(agents, "agent", "agents"), strings.Join(parts, ", "))
	}
	if stickyActive && b.sticky == agents && agents > 0 {
		m.Summary += "; the previous agent was not offered"
	}
	return m
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
