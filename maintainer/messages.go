package maintainer

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/internal/reconcile"
)

// Stats keys the maintainer adds to a task's workload figures.
const (
	StatCPUSeconds = "cpu_seconds"
	StatMemBytes   = "mem_bytes"
	StatTime       = "stats_time"
	// StatError says why the latest report lacks the workload's own
	// figures (the last good ones are shown meanwhile).
	StatError = "stats_error"
)

// Message handles a framework message from an executor
// (mesoslib.Handler.Message): the reply to an Exec, or a task's stats.
// Messages are best effort; one that cannot be decoded is logged and
// dropped.
func (m *Maintainer) Message(_ context.Context, agentID mesos.AgentID, executorID mesos.ExecutorID, data []byte) {
	msg, err := protocol.DecodeMessage(data)
	if err != nil {
		glog.Warningf("maintainer: undecodable message from executor %s on agent %s: %v", executorID.Value, agentID.Value, err)
		if id := protocol.MessageID(data); id != "" {
			m.execs.deliver(id, nil, "the executor's reply could not be decoded: "+err.Error())
		}
		return
	}
	switch msg := msg.(type) {
	case *protocol.ExecResult:
		m.execs.deliver(msg.ID, msg, "")
	case *protocol.ErrorReply:
		if msg.ID == "" || !m.execs.deliver(msg.ID, nil, msg.Error) {
			glog.Warningf("maintainer: executor %s on agent %s reports: %s", executorID.Value, agentID.Value, msg.Error)
		}
	case *protocol.Stats:
		m.recordStats(msg)
		m.checkRole(msg)
	default:
		glog.V(1).Infof("maintainer: ignoring %s message from executor %s", msg.MessageType(), executorID.Value)
	}
}

func (m *Maintainer) recordStats(s *protocol.Stats) {
	id, err := stateful.ParseTaskID(s.TaskID)
	if err != nil {
		glog.V(1).Infof("maintainer: stats of unknown task %q: %v", s.TaskID, err)
		return
	}
	figures := make(map[string]string, len(s.Workload)+3)
	maps.Copy(figures, s.Workload)
	figures[StatCPUSeconds] = strconv.FormatFloat(s.CPUSeconds, 'f', 3, 64)
	figures[StatMemBytes] = strconv.FormatUint(s.MemBytes, 10)
	if !s.Time.IsZero() {
		figures[StatTime] = s.Time.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	// A report whose workload figures failed keeps the last good ones, as
	// stateful.StatsReporter promises, and says why they are stale.
	keepWorkload := len(s.Workload) == 0 && s.Error != ""
	if s.Error != "" {
		figures[StatError] = s.Error
	}
	m.stats.put(id.Instance, id.Ordinal, s.TaskID, figures, keepWorkload)
	glog.V(2).Infof("maintainer: stats of %s: %v", s.TaskID, figures)
}

// checkRole tells the executor of a stats report its task's role again
// when the report shows another: the set_role sent at the promotion may
// have been lost, or the task was launched just before it.
func (m *Maintainer) checkRole(s *protocol.Stats) {
	if s.Role == "" {
		return
	}
	id, err := stateful.ParseTaskID(s.TaskID)
	if err != nil {
		return
	}
	t, err := m.store.Task(id.Instance, id.Ordinal)
	if err != nil || t.TaskID != s.TaskID || string(t.Role) == s.Role {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), roleSendTimeout)
	defer cancel()
	m.tellRole(ctx, t)
}

// roleSendTimeout bounds sending one set_role message.
const roleSendTimeout = 5 * time.Second

// tellRole sends t's role to its executor, best effort: stats reports
// show whether it arrived (checkRole).
func (m *Maintainer) tellRole(ctx context.Context, t *stateful.Task) {
	if !t.State.IsLaunched() || t.AgentID == "" {
		return
	}
	data, err := protocol.EncodeMessage(&protocol.SetRole{TaskID: t.TaskID, Role: string(t.Role)})
	if err != nil {
		glog.Errorf("maintainer: encode set_role for %s: %v", t.TaskID, err)
		return
	}
	if err := m.messenger.Message(ctx, t.AgentID, reconcile.ExecutorID(t.TaskID), data); err != nil {
		glog.V(1).Infof("maintainer: set_role %s for %s (sent again after its next stats report): %v", t.Role, t.TaskID, err)
		return
	}
	glog.V(1).Infof("maintainer: told %s it is %s", t.TaskID, t.Role)
}

// WithStats returns the tasks with the latest figures of their current
// attempts merged into Stats (for the REST API). The tasks are modified
// in place.
func (m *Maintainer) WithStats(tasks []*stateful.Task) []*stateful.Task {
	for _, t := range tasks {
		m.stats.merge(t)
	}
	return tasks
}

// withStats returns a copy of t with its latest figures.
func (m *Maintainer) withStats(t *stateful.Task) *stateful.Task {
	c := t.Clone()
	m.stats.merge(c)
	return c
}

// statsCache keeps the latest stats per task, for the attempt that sent
// them.
type statsCache struct {
	mu sync.Mutex
	by map[string]map[int]taskStats // instance → ordinal → stats
}

type taskStats struct {
	taskID  string
	figures map[string]string
}

func newStatsCache() *statsCache { return &statsCache{by: map[string]map[int]taskStats{}} }

// put stores the figures of one report. With keepWorkload, the previous
// report's figures of the same attempt stay under the new ones.
func (c *statsCache) put(instance string, ordinal int, taskID string, figures map[string]string, keepWorkload bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst := c.by[instance]
	if inst == nil {
		inst = map[int]taskStats{}
		c.by[instance] = inst
	}
	if old, ok := inst[ordinal]; ok && keepWorkload && old.taskID == taskID {
		merged := maps.Clone(old.figures)
		maps.Copy(merged, figures)
		figures = merged
	}
	inst[ordinal] = taskStats{taskID: taskID, figures: figures}
}

// merge adds the figures of t's current attempt to t.Stats.
func (c *statsCache) merge(t *stateful.Task) {
	c.mu.Lock()
	s, ok := c.by[t.Instance][t.Ordinal]
	c.mu.Unlock()
	if !ok || s.taskID != t.TaskID || !t.State.IsLaunched() {
		return
	}
	if t.Stats == nil {
		t.Stats = make(map[string]string, len(s.figures))
	}
	maps.Copy(t.Stats, s.figures)
}

func (c *statsCache) drop(instance string, ordinal int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.by[instance], ordinal)
}

func (c *statsCache) forget(instance string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.by, instance)
}

// pendingExecs correlates Exec requests with their replies by ID.
type pendingExecs struct {
	mu      sync.Mutex
	waiting map[string]chan execReply
}

type execReply struct {
	result *protocol.ExecResult
	err    string
}

func newPendingExecs() *pendingExecs { return &pendingExecs{waiting: map[string]chan execReply{}} }

func (p *pendingExecs) add(id string) chan execReply {
	ch := make(chan execReply, 1)
	p.mu.Lock()
	p.waiting[id] = ch
	p.mu.Unlock()
	return ch
}

func (p *pendingExecs) remove(id string) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
}

// deliver hands a reply to its waiting Exec; false if none waits (it timed
// out, or the reply is a duplicate).
func (p *pendingExecs) deliver(id string, r *protocol.ExecResult, errMsg string) bool {
	p.mu.Lock()
	ch, ok := p.waiting[id]
	delete(p.waiting, id)
	p.mu.Unlock()
	if !ok {
		glog.V(1).Infof("maintainer: reply to exec %q, which no one waits for", id)
		return false
	}
	ch <- execReply{result: r, err: errMsg}
	return true
}
