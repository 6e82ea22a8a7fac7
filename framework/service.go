package framework

import (
	"context"

	"github.com/mesos-stateful/stateful"
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
	hub        *feed.Hub
	runtime    httplib.RuntimeInfo
	uninstall  *uninstaller
}

var _ httplib.Lifecycle = (*service)(nil)

// Replace serves POST /v1/instances/{name}/tasks/{ordinal}/replace.
func (s *service) Replace(ctx context.Context, name string, ordinal int) (*stateful.Instance, error) {
	return s.creator.Replace(ctx, name, ordinal)
}

// Uninstall serves POST /v1/uninstall.
func (s *service) Uninstall(ctx context.Context) (httplib.UninstallStatus, error) {
	return s.uninstall.Uninstall(ctx)
}

var (
	_ httplib.Service         = (*service)(nil)
	_ httplib.EventSource     = (*service)(nil)
	_ httplib.RuntimeReporter = (*service)(nil)
)

// Runtime is how tasks run, for /v1/health.
func (s *service) Runtime() httplib.RuntimeInfo { return s.runtime }

// Subscribe serves GET /v1/events from the feed statemgr's observer fills.
func (s *service) Subscribe(lastID string) *feed.Subscription { return s.hub.Subscribe(lastID) }

func (s *service) Defaults() stateful.Spec { return s.w.Defaults() }

func (s *service) Create(ctx context.Context, inst *stateful.Instance) (*stateful.Instance, error) {
	return s.creator.Create(ctx, inst)
}

func (s *service) Update(ctx context.Context, name string, patch httplib.Patch) (*stateful.Instance, error) {
	return s.creator.Update(ctx, name, patch.Generation, patch.Slaves, patch.Spec)
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
		problems = append(problems, httplib.Problem{Component: "leader", Message: "this scheduler lost its leadership and is stopping"})
	default:
	}
	return problems
}
