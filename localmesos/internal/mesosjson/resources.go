package mesosjson

import (
	"encoding/json"
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

// Task is a task in the state endpoints' shape (Mesos' model(Task)).
func Task(t *mesos.Task) map[string]any {
	role := "*"
	if len(t.Resources) > 0 {
		role = t.Resources[0].GetAllocationInfo().GetRole()
	}
	var statuses []any
	for i := range t.Statuses {
		st := t.Statuses[i]
		s := map[string]any{"state": st.GetState().String(), "timestamp": st.GetTimestamp()}
		if st.Healthy != nil {
			s["healthy"] = st.GetHealthy()
		}
		if st.Labels != nil {
			s["labels"] = raw(st.Labels)
		}
		if st.ContainerStatus != nil {
			s["container_status"] = raw(st.ContainerStatus)
		}
		statuses = append(statuses, s)
	}
	s := map[string]any{
		"id":           t.TaskID.Value,
		"name":         t.Name,
		"framework_id": t.FrameworkID.Value,
		"executor_id":  t.GetExecutorID().GetValue(),
		"slave_id":     t.AgentID.Value,
		"state":        t.GetState().String(),
		"resources":    ResourceSummary(t.Resources),
		"role":         role,
		"statuses":     nonEmpty(statuses),
	}
	if t.Labels != nil {
		s["labels"] = raw(t.Labels)
	}
	if t.Container != nil {
		s["container"] = raw(t.Container)
	}
	if t.Discovery != nil {
		s["discovery"] = raw(t.Discovery)
	}
	if t.User != nil {
		s["user"] = t.GetUser()
	}
	return s
}

// raw renders a message for a document: as Mesos writes it, or null.
func raw(v json.Marshaler) json.RawMessage {
	b, err := Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// nonEmpty writes an absent list as [] (state endpoints always list).
func nonEmpty(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}
