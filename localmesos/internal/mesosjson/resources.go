package mesosjson

import (
	"fmt"
	"math"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ResourceSummary is the resource summary of Mesos' state endpoints
// (/master/state, the agent's /state): every scalar by name (cpus, mem,
// disk and gpus always present) and ranges and sets as text.
func ResourceSummary(rs []mesos.Resource) map[string]any {
	out := map[string]any{"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
	ranges := map[string]mesos.Ranges{}
	sets := map[string][]string{}
	for i := range rs {
		r := rs[i]
		switch r.GetType() {
		case mesos.SCALAR:
			prev, _ := out[r.GetName()].(float64)
			// Mesos' three decimal digits of fixed-point precision.
			out[r.GetName()] = math.Round((prev+r.GetScalar().GetValue())*1000) / 1000
		case mesos.RANGES:
			ranges[r.GetName()] = append(ranges[r.GetName()], r.GetRanges().GetRange()...)
		case mesos.SET:
			sets[r.GetName()] = append(sets[r.GetName()], r.GetSet().GetItem()...)
		}
	}
	for name, rg := range ranges {
		parts := []string{}
		for _, x := range rg.Sort().Squash() {
			parts = append(parts, fmt.Sprintf("%d-%d", x.Begin, x.End))
		}
		out[name] = "[" + strings.Join(parts, ", ") + "]"
	}
	for name, items := range sets {
		sort.Strings(items)
		out[name] = "{" + strings.Join(items, ", ") + "}"
	}
	return out
}
