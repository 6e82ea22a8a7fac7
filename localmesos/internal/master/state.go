package master

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
)

// serveState is GET /master/state (and /state): the master's view in the
// shape of Mesos' own endpoint.
func (m *Master) serveState(w http.ResponseWriter, r *http.Request) {
	mesosjson.ServeDocument(w, r, "Master is shutting down", func() (any, bool) {
		var state map[string]any
		ok := m.call(func() { state = m.state() })
		return state, ok
	})
}

func secs(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// rawJSON renders a mesos-go message as Mesos writes it.
func rawJSON(v json.Marshaler) json.RawMessage {
	b, err := mesosjson.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

func (m *Master) state() map[string]any {
	pid := m.info.GetPID()
	var slaves []any
	active := 0
	for _, a := range m.sortedAgents() {
		if a.connected {
			active++
		}
		slaves = append(slaves, m.agentState(a))
	}
	var recovered []any
	for _, id := range sortedKeys(boolKeys(m.recovered)) {
		info := m.recovered[id]
		recovered = append(recovered, map[string]any{
			"id": id, "hostname": info.Hostname, "port": info.GetPort(),
			"resources": stateResources(info.Resources), "attributes": attributesState(info.Attributes),
		})
	}
	var frameworks []any
	for _, f := range m.sortedFrameworks() {
		frameworks = append(frameworks, m.frameworkState(f))
	}
	var completed []any
	for _, f := range m.completed {
		completed = append(completed, m.frameworkState(f))
	}
	caps := []string{}
	for _, c := range m.info.Capabilities {
		caps = append(caps, c.Type.String())
	}
	return map[string]any{
		"version":            Version,
		"start_time":         secs(m.startTime),
		"elected_time":       secs(m.electedTime),
		"id":                 m.id,
		"pid":                pid,
		"hostname":           m.info.GetHostname(),
		"capabilities":       caps,
		"activated_slaves":   active,
		"deactivated_slaves": len(m.agents) - active,
		"unreachable_slaves": len(m.unreachable),
		"leader":             pid,
		"leader_info": map[string]any{
			"id": m.id, "pid": pid, "port": m.info.GetPort(), "hostname": m.info.GetHostname(),
		},
		"slaves":                  nonNil(slaves),
		"recovered_slaves":        nonNil(recovered),
		"frameworks":              nonNil(frameworks),
		"completed_frameworks":    nonNil(completed),
		"orphan_tasks":            []any{},
		"unregistered_frameworks": []any{},
	}
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

func attributesState(attrs []mesos.Attribute) map[string]any {
	out := map[string]any{}
	for _, at := range attrs {
		switch at.Type {
		case mesos.SCALAR:
			out[at.Name] = at.GetScalar().GetValue()
		case mesos.TEXT:
			out[at.Name] = at.GetText().GetValue()
		case mesos.RANGES:
			out[at.Name] = formatValue(mesos.Resource{Type: mesos.RANGES.Enum(), Ranges: at.Ranges})
		case mesos.SET:
			out[at.Name] = formatValue(mesos.Resource{Type: mesos.SET.Enum(), Set: at.Set})
		}
	}
	return out
}

func (m *Master) agentState(a *agent) map[string]any {
	reserved := map[string]any{}
	byRole := map[string]mesos.Resources{}
	var unreserved mesos.Resources
	for _, r := range a.total {
		if r.IsUnreserved() {
			unreserved = append(unreserved, r)
		} else {
			byRole[r.GetRole()] = append(byRole[r.GetRole()], r)
		}
	}
	for role, rs := range byRole {
		reserved[role] = stateResources(rs)
	}
	s := map[string]any{
		"id":                   a.id,
		"hostname":             a.hostname(),
		"port":                 a.port(),
		"attributes":           attributesState(a.info.Attributes),
		"pid":                  a.pid(),
		"registered_time":      secs(a.registeredTime),
		"resources":            stateResources(a.total),
		"used_resources":       stateResources(a.used()),
		"offered_resources":    stateResources(a.offered()),
		"reserved_resources":   reserved,
		"unreserved_resources": stateResources(unreserved),
		"active":               a.connected,
		"deactivated":          false,
		"version":              Version,
		"capabilities":         []string{"MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"},
	}
	if !a.reregisteredTime.IsZero() {
		s["reregistered_time"] = secs(a.reregisteredTime)
	}
	return s
}

func (m *Master) frameworkState(f *framework) map[string]any {
	var used, offered mesos.Resources
	for _, t := range f.tasks {
		if !terminalOrUnreachable(t.GetState()) {
			used = append(used, t.Resources...)
		}
	}
	for _, execs := range f.executors {
		for _, e := range execs {
			used = append(used, e.Resources...)
		}
	}
	var offers []any
	for _, o := range sortedOffers(f.offers) {
		offered = append(offered, o.resources...)
		offers = append(offers, map[string]any{
			"id": o.id, "framework_id": f.id, "slave_id": o.agent.id,
			"resources": stateResources(o.resources), "allocation_info": map[string]any{"role": o.role},
		})
	}
	var tasks, unreachable, completedTasks []any
	for _, t := range sortedTasks(f.tasks) {
		tasks = append(tasks, taskState(t))
	}
	for _, t := range sortedTasks(f.unreachableTasks) {
		unreachable = append(unreachable, taskState(t))
	}
	for _, t := range f.completedTasks {
		completedTasks = append(completedTasks, taskState(t))
	}
	var executors []any
	agentIDs := sortedKeys(boolKeys(f.executors))
	for _, aid := range agentIDs {
		for _, eid := range sortedKeys(boolKeys(f.executors[aid])) {
			e := f.executors[aid][eid]
			executors = append(executors, map[string]any{
				"executor_id": eid, "name": e.GetName(), "framework_id": f.id,
				"command": rawJSON(e.GetCommand()), "resources": stateResources(e.Resources), "slave_id": aid,
			})
		}
	}
	caps := capabilityNames(f.info)
	if caps == nil {
		caps = []string{}
	}
	roles := append([]string(nil), f.roles...)
	sort.Strings(roles)
	s := map[string]any{
		"id":                f.id,
		"name":              f.info.Name,
		"used_resources":    stateResources(sum(used)),
		"offered_resources": stateResources(sum(offered)),
		"resources":         stateResources(sum(used, offered)),
		"capabilities":      caps,
		"hostname":          f.info.GetHostname(),
		"webui_url":         f.info.GetWebUiURL(),
		"active":            f.connected(),
		"connected":         f.connected(),
		"recovered":         f.recovered,
		"user":              f.info.User,
		"failover_timeout":  f.info.GetFailoverTimeout(),
		"checkpoint":        f.info.GetCheckpoint(),
		"registered_time":   secs(f.registeredTime),
		"unregistered_time": secs(f.unregisteredTime),
		"roles":             roles,
		"tasks":             nonNil(tasks),
		"unreachable_tasks": nonNil(unreachable),
		"completed_tasks":   nonNil(completedTasks),
		"offers":            nonNil(offers),
		"executors":         nonNil(executors),
		"offer_constraints": map[string]any{},
	}
	if !f.multiRole {
		s["role"] = f.info.GetRole()
	}
	if f.reregisteredTime != f.registeredTime {
		s["reregistered_time"] = secs(f.reregisteredTime)
	}
	if f.info.Principal != nil {
		s["principal"] = f.info.GetPrincipal()
	}
	return s
}

func taskState(t *mesos.Task) map[string]any { return mesosjson.Task(t) }
