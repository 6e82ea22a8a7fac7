package framework

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/creator"
	"github.com/mesos-stateful/stateful/destroyer"
	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/httplib"
	"github.com/mesos-stateful/stateful/maintainer"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// service is what the REST API calls (httplib.Service): requests go to the
// creator and destroyer, reads to statemgr's cache with the maintainer's
// stats and offermgr's placement explanations merged in.
type service struct {
	w          stateful.Workload
	store      *statemgr.Store
	creator    *creator.Creator
	destroyer  *destroyer.Destroyer
	maintainer *maintainer.Maintainer
	offers     *offermgr.Manager
	client     *mesoslib.Client
	lead       *statemgr.Leadership
	work       *buffer.WorkQueue
	tasks      *buffer.TaskQueue[offermgr.Demand]
	uninstall  *uninstaller
}

// Replace serves POST /v1/instances/{name}/tasks/{ordinal}/replace.
func (s *service) Replace(ctx context.Context, name string, ordinal int) (*stateful.Instance, error) {
	return s.creator.Replace(ctx, name, ordinal)
}

// Uninstall serves POST /v1/uninstall.
func (s *service) Uninstall(ctx context.Context) (httplib.UninstallStatus, error) {
	return s.uninstall.Uninstall(ctx)
}

var _ httplib.Service = (*service)(nil)

func (s *service) Defaults() stateful.Spec { return s.w.Defaults() }

func (s *service) Create(ctx context.Context, inst *stateful.Instance) (*stateful.Instance, error) {
	return s.creator.Create(ctx, inst)
}

// Update answers with the instance as GET shows it, stats included.
func (s *service) Update(ctx context.Context, name string, patch httplib.Patch) (*stateful.Instance, error) {
	if _, err := s.creator.Update(ctx, name, patch.Generation, patch.Slaves, patch.Spec); err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

var _ httplib.PlanService = (*service)(nil)

func (s *service) Switchover(ctx context.Context, name string, to *int) (*stateful.Instance, error) {
	if _, err := s.maintainer.RequestSwitchover(ctx, name, to); err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

func (s *service) AbortRollout(ctx context.Context, name string) (*stateful.Instance, error) {
	if _, err := s.maintainer.AbortRollout(ctx, name); err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

func (s *service) SetRolloutPaused(ctx context.Context, name string, paused bool) (*stateful.Instance, error) {
	if _, err := s.maintainer.SetRolloutPaused(ctx, name, paused); err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

func (s *service) Destroy(ctx context.Context, name string) (*stateful.Instance, error) {
	return s.destroyer.Destroy(ctx, name)
}

func (s *service) Get(_ context.Context, name string) (*stateful.Instance, error) {
	inst, err := s.store.InstanceWithTasks(name)
	if err != nil {
		return nil, err
	}
	s.maintainer.WithStats(inst.Tasks)
	for _, t := range inst.Tasks {
		if !t.State.IsQueued() {
			continue
		}
		if m, ok := s.offers.WhyNotPlaced(offermgr.Key{Instance: t.Instance, Ordinal: t.Ordinal}); ok {
			t.Unplaced = m.Summary
		}
	}
	return inst, nil
}

func (s *service) List(context.Context) ([]*stateful.Instance, error) {
	return s.store.Instances(), nil
}

// Health reports what keeps the scheduler from working: no subscription to
// Mesos, etcd unreachable, leadership lost.
func (s *service) Health(ctx context.Context) []httplib.Problem {
	var problems []httplib.Problem
	if !s.client.Connected() {
		problems = append(problems, httplib.Problem{Component: "mesos", Message: "not subscribed to the Mesos master (re-subscribing)"})
	}
	if err := s.store.Ping(ctx); err != nil {
		problems = append(problems, httplib.Problem{Component: "etcd", Message: err.Error()})
	}
	select {
	case <-s.lead.Done():
		problems = append(problems, httplib.Problem{Component: "leader", Message: "this scheduler lost its leadership: it stops acting and campaigns again"})
	default:
	}
	return problems
}

// front is the REST API's Service for the life of the process. While this
// scheduler leads, it hands every request to the term's service. While it
// does not (etcd unreachable, the lease lapsed, another scheduler leads)
// and while etcd does not answer, reads are served from statemgr's cache
// and marked stale (httplib.StaleReads), and changes are refused at once
// with ErrUnavailable (503): a change cannot be made durable, and no one
// in this process would act on it.
type front struct {
	w            stateful.Workload
	store        *statemgr.Store
	writeTimeout time.Duration
	// hub and runtime live as long as the process, not a term.
	hub     *feed.Hub
	runtime httplib.RuntimeInfo
	cur     atomic.Pointer[service] // nil between terms
}

// httplib finds the optional parts by type assertion on what it is given,
// which is the front: a part missing here is silently off for the API.
var (
	_ httplib.Service         = (*front)(nil)
	_ httplib.StaleReads      = (*front)(nil)
	_ httplib.EventSource     = (*front)(nil)
	_ httplib.RuntimeReporter = (*front)(nil)
	_ stateful.SpecPolicy     = (*front)(nil)
)

// AllowSpec applies the workload's stateful.SpecPolicy, if it has one; it
// needs no term (the policy is the workload's, not the store's).
func (f *front) AllowSpec(given []string, requested stateful.Spec) error {
	if p, ok := f.w.(stateful.SpecPolicy); ok {
		return p.AllowSpec(given, requested)
	}
	return nil
}

// Runtime is how tasks run, for /v1/health.
func (f *front) Runtime() httplib.RuntimeInfo { return f.runtime }

// Subscribe serves GET /v1/events from the feed statemgr's observer fills;
// the feed goes on between leadership terms.
func (f *front) Subscribe(lastID string) *feed.Subscription { return f.hub.Subscribe(lastID) }

func (f *front) begin(svc *service) { f.cur.Store(svc) }
func (f *front) end()               { f.cur.Store(nil) }

// writer returns the term's service if a change can be made now.
func (f *front) writer() (*service, error) {
	svc := f.cur.Load()
	if svc == nil {
		return nil, fmt.Errorf("this scheduler does not lead now (etcd unreachable or another scheduler leads); try again later: %w", statemgr.ErrNotLeader)
	}
	if err := storeReady(f.store); err != nil {
		return nil, err
	}
	return svc, nil
}

// change runs a change on the term's service, if one can be made now,
// bounded by writeTimeout.
func change[T any](ctx context.Context, f *front, do func(context.Context, *service) (T, error)) (T, error) {
	svc, err := f.writer()
	if err != nil {
		var zero T
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.writeTimeout)
	defer cancel()
	return do(ctx, svc)
}

func (f *front) Defaults() stateful.Spec { return f.w.Defaults() }

func (f *front) Create(ctx context.Context, inst *stateful.Instance) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.Create(ctx, inst)
	})
}

func (f *front) Update(ctx context.Context, name string, patch httplib.Patch) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.Update(ctx, name, patch)
	})
}

func (f *front) Destroy(ctx context.Context, name string) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.Destroy(ctx, name)
	})
}

var _ httplib.Lifecycle = (*front)(nil)

func (f *front) Replace(ctx context.Context, name string, ordinal int) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.Replace(ctx, name, ordinal)
	})
}

func (f *front) Uninstall(ctx context.Context) (httplib.UninstallStatus, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (httplib.UninstallStatus, error) {
		return svc.Uninstall(ctx)
	})
}

func (f *front) Get(ctx context.Context, name string) (*stateful.Instance, error) {
	if svc := f.cur.Load(); svc != nil {
		return svc.Get(ctx, name)
	}
	return f.store.InstanceWithTasks(name)
}

func (f *front) List(ctx context.Context) ([]*stateful.Instance, error) {
	return f.store.Instances(), nil
}

func (f *front) Health(ctx context.Context) []httplib.Problem {
	if svc := f.cur.Load(); svc != nil {
		return svc.Health(ctx)
	}
	problems := []httplib.Problem{{Component: "leader", Message: "this scheduler does not lead now: it campaigns to lead again; tasks keep running, reads are served from the cache, changes are refused"}}
	if err := f.store.Ping(ctx); err != nil {
		problems = append(problems, httplib.Problem{Component: "etcd", Message: err.Error()})
	}
	return problems
}

// ReadsStale implements httplib.StaleReads: reads are stale while etcd
// does not answer, and while this scheduler does not lead (the figures
// only the leader gathers are missing, and what it shows was not
// confirmed by a leader of this process).
func (f *front) ReadsStale() (time.Time, bool) {
	return f.store.Confirmed(), f.cur.Load() == nil || f.store.Stale()
}

var _ httplib.PlanService = (*front)(nil)

// Switchover, SetRolloutPaused and AbortRollout are changes: made only
// while this scheduler leads, like Update.
func (f *front) Switchover(ctx context.Context, name string, to *int) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.Switchover(ctx, name, to)
	})
}

func (f *front) SetRolloutPaused(ctx context.Context, name string, paused bool) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.SetRolloutPaused(ctx, name, paused)
	})
}

func (f *front) AbortRollout(ctx context.Context, name string) (*stateful.Instance, error) {
	return change(ctx, f, func(ctx context.Context, svc *service) (*stateful.Instance, error) {
		return svc.AbortRollout(ctx, name)
	})
}
