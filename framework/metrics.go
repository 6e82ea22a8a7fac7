package framework

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// registerMetrics adds the scheduler's gauges to reg: instances by status,
// tasks by state, the length of both queues and the event stream's
// clients, read when scraped.
func registerMetrics(reg prometheus.Registerer, store *statemgr.Store, work *buffer.WorkQueue, tasks *buffer.TaskQueue[offermgr.Demand], hub *feed.Hub) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_event_subscribers", Help: "Clients following GET /v1/events.",
		}, func() float64 { return float64(hub.Subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "stateful_event_subscribers_dropped_total", Help: "Clients of GET /v1/events dropped for falling behind.",
		}, func() float64 { return float64(hub.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_work_queue_length", Help: "Instances waiting to be reconciled.",
		}, func() float64 { return float64(work.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stateful_task_queue_length", Help: "Tasks waiting for an offer.",
		}, func() float64 { return float64(tasks.Len()) }),
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
