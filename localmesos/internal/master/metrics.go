package master

import (
	"net/http"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/metrics"
)

// serveMetrics is GET /metrics/snapshot: the master's metrics under the
// names Mesos gives them (docs/monitoring.md).
func (m *Master) serveMetrics(w http.ResponseWriter, r *http.Request) {
	metrics.Serve(w, r, func() (metrics.Snapshot, bool) {
		var s metrics.Snapshot
		ok := m.call(func() { s = m.metrics() })
		return s, ok
	})
}

// gaugedTaskStates are the task states counted as they are now; the
// terminal ones are counters of transitions (terminalCounts).
var gaugedTaskStates = map[mesos.TaskState]string{
	mesos.TASK_STAGING:     "master/tasks_staging",
	mesos.TASK_STARTING:    "master/tasks_starting",
	mesos.TASK_RUNNING:     "master/tasks_running",
	mesos.TASK_KILLING:     "master/tasks_killing",
	mesos.TASK_UNREACHABLE: "master/tasks_unreachable",
}

var countedTaskStates = map[mesos.TaskState]string{
	mesos.TASK_FINISHED:         "master/tasks_finished",
	mesos.TASK_FAILED:           "master/tasks_failed",
	mesos.TASK_KILLED:           "master/tasks_killed",
	mesos.TASK_LOST:             "master/tasks_lost",
	mesos.TASK_ERROR:            "master/tasks_error",
	mesos.TASK_DROPPED:          "master/tasks_dropped",
	mesos.TASK_GONE:             "master/tasks_gone",
	mesos.TASK_GONE_BY_OPERATOR: "master/tasks_gone_by_operator",
}

// countTerminal counts a task's move into a terminal state.
func (m *Master) countTerminal(from, to mesos.TaskState) {
	if !isTerminal(from) && isTerminal(to) {
		m.terminalCounts[to]++
	}
}

// metrics runs on the actor.
func (m *Master) metrics() metrics.Snapshot {
	s := metrics.Snapshot{
		"master/elected":     1,
		"master/uptime_secs": time.Since(m.startTime).Seconds(),
	}
	for _, name := range gaugedTaskStates {
		s[name] = 0
	}
	for state, name := range countedTaskStates {
		s[name] = float64(m.terminalCounts[state])
	}
	var active, connected float64
	for _, f := range m.frameworks {
		if f.connected() {
			active++
			connected++
		}
		for _, t := range f.tasks {
			if name, ok := gaugedTaskStates[t.GetState()]; ok {
				s[name]++
			}
		}
		s["master/tasks_unreachable"] += float64(len(f.unreachableTasks))
	}
	n := float64(len(m.frameworks))
	s["master/frameworks_active"] = active
	s["master/frameworks_inactive"] = n - active
	s["master/frameworks_connected"] = connected
	s["master/frameworks_disconnected"] = n - connected

	var agentsUp float64
	total, used := map[string]float64{}, map[string]float64{}
	for _, a := range m.agents {
		if a.connected {
			agentsUp++
		}
		for _, name := range []string{"cpus", "mem", "disk", "gpus"} {
			v, _ := scalar(a.total, name)
			total[name] += v
			u, _ := scalar(a.used(), name)
			used[name] += u
		}
	}
	na := float64(len(m.agents))
	s["master/slaves_active"] = agentsUp
	s["master/slaves_inactive"] = na - agentsUp
	s["master/slaves_connected"] = agentsUp
	s["master/slaves_disconnected"] = na - agentsUp
	s["master/slaves_unreachable"] = float64(len(m.unreachable))
	s["master/outstanding_offers"] = float64(len(m.offers))
	for _, name := range []string{"cpus", "mem", "disk", "gpus"} {
		s["master/"+name+"_total"] = total[name]
		s["master/"+name+"_used"] = used[name]
		s["master/"+name+"_percent"] = metrics.Percent(used[name], total[name])
		s["master/"+name+"_revocable_total"] = 0
		s["master/"+name+"_revocable_used"] = 0
		s["master/"+name+"_revocable_percent"] = 0
	}
	s["master/event_queue_dispatches"] = float64(m.mb.Len())
	s["master/valid_status_updates"] = float64(m.validStatusUpdates)
	s["master/invalid_status_updates"] = float64(m.invalidStatusUpdates)
	return s
}
