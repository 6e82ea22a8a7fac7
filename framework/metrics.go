package framework

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/statemgr"
)

// registerMetrics adds the scheduler's gauges to reg: instances by status,
// tasks by state, the length of both queues and the event stream's
// clients, read when scraped. The queues are those of the current
// leadership term (0 between terms).
func registerMetrics(reg prometheus.Registerer, store *statemgr.Store, f *front, hub *feed.Hub) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_event_subscribers", Help: "Clients following GET /v1/events.",
		}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "stateful_event_subscribers_dropped_total", Help: "Clients of GET /v1/events dropped for falling behind.",
		}, func() float64 { return float64(hub.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_work_queue_length", Help: "Instances waiting to be reconciled.",
		}, func() float64 {
			if svc := f.cur.Load(); svc != nil {
				return float64(svc.work.Len())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_task_queue_length", Help: "Tasks waiting for an offer.",
		}, func() float64 {
			if svc := f.cur.Load(); svc != nil {
				return float64(svc.tasks.Len())
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_leader", Help: "1 while this scheduler leads (acts), 0 while it stands by.",
		}, func() float64 {
			if f.cur.Load() != nil {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_state_confirmed_age_seconds", Help: "Seconds since etcd last answered: how stale reads may be.",
		}, func() float64 { return time.Since(store.Confirmed()).Seconds() }),
		&stateCollector{store: store},
	)
}

// stateCollector counts instances by status and tasks by state from
// statemgr's cache at scrape time.
type stateCollector struct{ store *statemgr.Store }

var (
	instancesDesc = prometheus.NewDesc("stateful_instances", "Instances by status.", []string{"status"}, nil)
	tasksDesc     = prometheus.NewDesc("stateful_tasks", "Tasks by state.", []string{"state"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- instancesDesc
	ch <- tasksDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	statuses := map[string]int{}
	for _, inst := range c.store.Instances() {
		statuses[string(inst.Status)]++
	}
	for s, n := range statuses {
		ch <- prometheus.MustNewConstMetric(instancesDesc, prometheus.GaugeValue, float64(n), s)
	}
	states := map[string]int{}
	for _, t := range c.store.AllTasks() {
		states[string(t.State)]++
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(n), s)
	}
}
