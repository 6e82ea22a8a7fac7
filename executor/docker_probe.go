package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/golang/glog"
)

// dockerRetry is how long a failed attempt to reach Docker is remembered.
const dockerRetry = 10 * time.Second

// orphanCleaner is implemented by a runtime that can remove what dead
// executors of a framework left behind on this host.
type orphanCleaner interface {
	CleanupOrphans(ctx context.Context, frameworkID string) error
}

// ownRemover is implemented by a runtime that can remove what this
// executor process started.
type ownRemover interface {
	RemoveOwn(ctx context.Context, frameworkID string) error
}

// dockerProbe connects to the Docker engine on first need and remembers
// the outcome, so that "auto" costs one probe, not one per task.
type dockerProbe struct {
	connect func(ctx context.Context) (Runtime, error)

	mu       sync.Mutex
	rt       Runtime
	err      error
	failedAt time.Time
}

func newDockerProbe(given Runtime) *dockerProbe {
	if given != nil {
		return &dockerProbe{rt: given}
	}
	return &dockerProbe{connect: connectDocker}
}

func (p *dockerProbe) get(ctx context.Context) (Runtime, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rt != nil {
		return p.rt, nil
	}
	if p.err != nil && time.Since(p.failedAt) < dockerRetry {
		return nil, p.err
	}
	rt, err := p.connect(ctx)
	if err != nil {
		p.err, p.failedAt = fmt.Errorf("no Docker engine answers: %w", err), time.Now()
		return nil, p.err
	}
	p.rt, p.err = rt, nil
	return rt, nil
}

// cleanup removes containers left by dead executors of the framework,
// when an engine answers; without one there is nothing to clean.
func (p *dockerProbe) cleanup(ctx context.Context, frameworkID string) {
	rt, err := p.get(ctx)
	if err != nil {
		glog.V(1).Infof("executor: no container cleanup: %v", err)
		return
	}
	c, ok := rt.(orphanCleaner)
	if !ok {
		return
	}
	if err := c.CleanupOrphans(ctx, frameworkID); err != nil {
		glog.Warningf("executor: cleaning up containers of dead executors: %v", err)
	}
}

// removeOwn removes the containers this executor started that are still
// there, if Docker was ever reached: without an engine nothing of ours can
// be left, and the sweep must not wait for a probe.
func (p *dockerProbe) removeOwn(ctx context.Context, frameworkID string) {
	p.mu.Lock()
	rt := p.rt
	p.mu.Unlock()
	r, ok := rt.(ownRemover)
	if !ok {
		return
	}
	if err := r.RemoveOwn(ctx, frameworkID); err != nil {
		glog.Warningf("executor: removing our containers before exiting: %v", err)
	}
}
