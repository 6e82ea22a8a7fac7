package agent

import (
	"net/http"
	"sort"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
	"github.com/mesos-stateful/stateful/localmesos/internal/metrics"
)

// Version is what the agent reports, as the master does.
const Version = "1.10.0"

// serveState is GET /state (also /slave(1)/state): the agent's view in
// the shape of Mesos' own endpoint.
func (a *Agent) serveState(w http.ResponseWriter, r *http.Request) {
	mesosjson.ServeDocument(w, r, "Agent is shutting down", func() (any, bool) {
		var doc map[string]any
		ok := a.await(func() { doc = a.stateDoc() })
		return doc, ok
	})
}

// serveMetrics is GET /metrics/snapshot: the agent's metrics under the
// names Mesos gives them (docs/monitoring.md).
func (a *Agent) serveMetrics(w http.ResponseWriter, r *http.Request) {
	metrics.Serve(w, r, func() (metrics.Snapshot, bool) {
		var s metrics.Snapshot
		ok := a.await(func() { s = a.metrics() })
		return s, ok
	})
}

func secs(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// stateDoc runs on the mailbox.
func (a *Agent) stateDoc() map[string]any {
	pid := "slave(1)@" + a.address
	frameworks := []any{}
	for _, fw := range a.sortedFrameworks() {
		frameworks = append(frameworks, a.frameworkState(fw))
	}
	attrs := map[string]any{}
	for _, at := range a.cfg.Attributes {
		switch at.Type {
		case mesos.SCALAR:
			attrs[at.Name] = at.GetScalar().GetValue()
		case mesos.TEXT:
			attrs[at.Name] = at.GetText().GetValue()
		}
	}
	return map[string]any{
		"version":              Version,
		"start_time":           secs(a.startTime),
		"id":                   a.cfg.ID.Value,
		"pid":                  pid,
		"hostname":             a.cfg.Hostname,
		"capabilities":         []string{"MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"},
		"resources":            mesosjson.ResourceSummary(a.cfg.Resources),
		"attributes":           attrs,
		"reserved_resources":   map[string]any{},
		"unreserved_resources": mesosjson.ResourceSummary(a.cfg.Resources),
		"frameworks":           frameworks,
		"completed_frameworks": []any{},
	}
}

func (a *Agent) frameworkState(fw *framework) map[string]any {
	executors := []any{}
	for _, ex := range fw.sortedExecutors() {
		executors = append(executors, a.executorState(fw, ex))
	}
	caps := []string{}
	for _, c := range fw.info.Capabilities {
		caps = append(caps, c.Type.String())
	}
	s := map[string]any{
		"id":                  fw.id().Value,
		"name":                fw.info.Name,
		"user":                fw.info.User,
		"failover_timeout":    fw.info.GetFailoverTimeout(),
		"checkpoint":          fw.checkpoint(),
		"hostname":            fw.info.GetHostname(),
		"capabilities":        caps,
		"executors":           executors,
		"completed_executors": []any{},
	}
	if hasCapability(fw.info, mesos.FrameworkInfo_Capability_MULTI_ROLE) {
		roles := append([]string{}, fw.info.Roles...)
		sort.Strings(roles)
		s["roles"] = roles
	} else {
		s["role"] = fw.info.GetRole()
	}
	return s
}

func (a *Agent) executorState(fw *framework, ex *executorEntry) map[string]any {
	tasks, queued, completed := []any{}, []any{}, []any{}
	for _, t := range sortedTasks(ex.launched) {
		tasks = append(tasks, mesosjson.Task(t))
	}
	for _, info := range ex.queued {
		t := createTask(info, mesos.TASK_STAGING, fw.id())
		queued = append(queued, mesosjson.Task(&t))
	}
	for _, t := range sortedTasks(ex.terminated) {
		completed = append(completed, mesosjson.Task(t))
	}
	var rs []mesos.Resource
	rs = append(rs, ex.info.Resources...)
	for _, t := range ex.launched {
		rs = append(rs, t.Resources...)
	}
	s := map[string]any{
		"id":              ex.id().Value,
		"name":            ex.info.GetName(),
		"source":          ex.info.GetSource(),
		"resources":       mesosjson.ResourceSummary(rs),
		"type":            ex.info.GetType().String(),
		"tasks":           tasks,
		"queued_tasks":    queued,
		"completed_tasks": completed,
	}
	if ex.container != nil {
		s["container"] = ex.container.id
		s["directory"] = ex.container.sandbox
	}
	if len(rs) > 0 {
		s["role"] = rs[0].GetAllocationInfo().GetRole()
	}
	return s
}

func (a *Agent) allExecutors() []*executorEntry {
	var out []*executorEntry
	for _, fw := range a.sortedFrameworks() {
		out = append(out, fw.sortedExecutors()...)
	}
	return out
}

// taskMetric names the agent's task gauges (current states) and counters
// (tasks that reached a terminal state).
var taskMetric = map[mesos.TaskState]string{
	mesos.TASK_STAGING:  "slave/tasks_staging",
	mesos.TASK_STARTING: "slave/tasks_starting",
	mesos.TASK_RUNNING:  "slave/tasks_running",
	mesos.TASK_KILLING:  "slave/tasks_killing",
	mesos.TASK_FINISHED: "slave/tasks_finished",
	mesos.TASK_FAILED:   "slave/tasks_failed",
	mesos.TASK_KILLED:   "slave/tasks_killed",
	mesos.TASK_LOST:     "slave/tasks_lost",
	mesos.TASK_GONE:     "slave/tasks_gone",
}

// metrics runs on the mailbox.
func (a *Agent) metrics() metrics.Snapshot {
	s := metrics.Snapshot{
		"slave/registered":             metrics.Bool(a.state == stateRunning),
		"slave/uptime_secs":            time.Since(a.startTime).Seconds(),
		"slave/frameworks_active":      float64(len(a.frameworks)),
		"slave/executors_registering":  0,
		"slave/executors_running":      0,
		"slave/executors_terminating":  0,
		"slave/executors_terminated":   float64(a.executorsTerminated),
		"slave/valid_status_updates":   float64(a.validStatusUpdates),
		"slave/invalid_status_updates": float64(a.invalidStatusUpdates),
	}
	for state, name := range taskMetric {
		if isTerminal(state) {
			s[name] = float64(a.terminalCounts[state])
		} else {
			s[name] = 0
		}
	}
	var used []mesos.Resource
	for _, ex := range a.allExecutors() {
		switch ex.state {
		case executorRegistering:
			s["slave/executors_registering"]++
		case executorRunning:
			s["slave/executors_running"]++
		case executorTerminating:
			s["slave/executors_terminating"]++
		}
		if ex.state != executorTerminated && !ex.command {
			used = append(used, ex.info.Resources...)
		}
		for _, info := range ex.queued {
			s["slave/tasks_staging"]++
			used = append(used, info.Resources...)
		}
		for _, t := range ex.launched {
			if name, ok := taskMetric[t.GetState()]; ok && !isTerminal(t.GetState()) {
				s[name]++
			}
			used = append(used, t.Resources...)
		}
	}
	total := mesosjson.ResourceSummary(a.cfg.Resources)
	inUse := mesosjson.ResourceSummary(used)
	for _, name := range []string{"cpus", "mem", "disk", "gpus"} {
		t, _ := total[name].(float64)
		u, _ := inUse[name].(float64)
		s["slave/"+name+"_total"] = t
		s["slave/"+name+"_used"] = u
		s["slave/"+name+"_percent"] = metrics.Percent(u, t)
	}
	return s
}
