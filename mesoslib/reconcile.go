package mesoslib

import (
	"context"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// pendingTasks are the tasks of an explicit reconciliation still without an
// answer. Any update about a task counts as its answer.
type pendingTasks struct {
	mu    sync.Mutex
	tasks map[string]mesos.AgentID
	done  chan struct{} // closed when the last task has answered
}

func newPendingTasks(refs []TaskRef) *pendingTasks {
	p := &pendingTasks{tasks: make(map[string]mesos.AgentID, len(refs)), done: make(chan struct{})}
	for _, r := range refs {
		if r.TaskID.Value != "" {
			p.tasks[r.TaskID.Value] = r.AgentID
		}
	}
	if len(p.tasks) == 0 {
		close(p.done)
	}
	return p
}

func (p *pendingTasks) answered(taskID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tasks[taskID]; !ok {
		return
	}
	delete(p.tasks, taskID)
	if len(p.tasks) == 0 {
		close(p.done)
	}
}

func (p *pendingTasks) remaining() []TaskRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]TaskRef, 0, len(p.tasks))
	for id, agent := range p.tasks {
		out = append(out, TaskRef{TaskID: mesos.TaskID{Value: id}, AgentID: agent})
	}
	return out
}

// answered notes an update for the explicit reconciliation in progress.
func (c *Client) answered(taskID mesos.TaskID) {
	c.mu.Lock()
	p := c.recon
	c.mu.Unlock()
	if p != nil {
		p.answered(taskID.Value)
	}
}

// reconcile runs for one subscription, until ctx ends: explicit
// reconciliation of every live task the consumer knows, repeated with
// backoff for the tasks without an answer (Mesos says nothing about tasks
// on agents that have not re-registered since a master failover), then
// implicit reconciliation now and every ReconcileInterval, which reveals
// tasks the consumer does not know.
func (c *Client) reconcile(ctx context.Context) {
	refs, ok := c.liveTasks(ctx)
	if !ok {
		return
	}
	p := newPendingTasks(refs)
	c.mu.Lock()
	c.recon = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.recon == p {
			c.recon = nil
		}
		c.mu.Unlock()
	}()

	wait := c.cfg.ReconcileBackoff
	for round := 1; ; round++ {
		tasks := p.remaining()
		if len(tasks) == 0 {
			break
		}
		glog.V(1).Infof("mesoslib: explicit reconciliation of %d tasks (round %d)", len(tasks), round)
		if err := c.Reconcile(ctx, tasks); err != nil && ctx.Err() == nil {
			glog.Warningf("mesoslib: explicit reconciliation: %v", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.done:
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, c.cfg.ReconcileMaxBackoff)
	}
	glog.V(1).Infof("mesoslib: explicit reconciliation complete (%d tasks)", len(refs))

	ticker := time.NewTicker(c.cfg.ReconcileInterval)
	defer ticker.Stop()
	for {
		glog.V(1).Infof("mesoslib: implicit reconciliation")
		if err := c.Reconcile(ctx, nil); err != nil && ctx.Err() == nil {
			glog.Warningf("mesoslib: implicit reconciliation: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// liveTasks asks the consumer for its live tasks, retrying with backoff;
// false if ctx ended first.
func (c *Client) liveTasks(ctx context.Context) ([]TaskRef, bool) {
	wait := c.cfg.ReconcileBackoff
	for {
		refs, err := c.tasks.LiveTasks(ctx)
		if err == nil {
			return refs, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		glog.Warningf("mesoslib: list tasks to reconcile: %v", err)
		if !sleep(ctx, wait) {
			return nil, false
		}
		wait = min(2*wait, c.cfg.ReconcileMaxBackoff)
	}
}
