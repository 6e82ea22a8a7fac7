package httplib

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mesos-stateful/stateful"
)

// memService is an in-memory Service honouring the contract's errors
// (ErrExists, ErrNotFound, ErrDeleting, ErrConflict on a stale generation).
// It records every mutating call, including failed ones, so tests can
// assert that a rejected request never reached it.
type memService struct {
	defaults stateful.Spec

	mu        sync.Mutex
	instances map[string]*stateful.Instance
	mutations []string // "Create cache1", "Update cache1", ...
	patches   []Patch
	problems  []Problem
	fail      map[string]error // method name → error to return instead
	// before, if set, runs at the start of each method (outside the lock):
	// to block, panic or change state between a Get and an Update.
	before func(method, name string)
}

func redisDefaults() stateful.Spec {
	return stateful.Spec{
		CPU: 0.5, Mem: 256, Disk: 512,
		Image: "redis:7", Command: "redis-server",
		Ports: []string{"redis"}, Volume: "/data",
		Health: &stateful.HealthCheck{TCP: "redis"},
	}
}

func newMemService() *memService {
	return &memService{defaults: redisDefaults(), instances: map[string]*stateful.Instance{}, fail: map[string]error{}}
}

func (m *memService) enter(method, name string, mutating bool) error {
	if m.before != nil {
		m.before(method, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mutating {
		m.mutations = append(m.mutations, method+" "+name)
	}
	return m.fail[method]
}

func (m *memService) Defaults() stateful.Spec { return m.defaults.Clone() }

func (m *memService) Create(ctx context.Context, inst *stateful.Instance) (*stateful.Instance, error) {
	if err := m.enter("Create", inst.Name, true); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.instances[inst.Name]; ok {
		return nil, fmt.Errorf("instance %q: %w", inst.Name, stateful.ErrExists)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	stored := inst.Clone()
	stored.Status, stored.Generation, stored.CreatedAt, stored.UpdatedAt = stateful.StatusCreating, 1, now, now
	stored.Tasks = stored.InitialTasks(now)
	m.instances[inst.Name] = stored
	return stored.Clone(), nil
}

func (m *memService) Update(ctx context.Context, name string, patch Patch) (*stateful.Instance, error) {
	if err := m.enter("Update", name, true); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patches = append(m.patches, patch)
	cur, ok := m.instances[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrNotFound)
	case cur.Status == stateful.StatusDeleting:
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrDeleting)
	case cur.Generation != patch.Generation:
		return nil, fmt.Errorf("instance %q is at generation %d, not %d: %w", name, cur.Generation, patch.Generation, stateful.ErrConflict)
	}
	next := patch.Apply(cur)
	next.Generation++
	m.instances[name] = next
	return next.Clone(), nil
}

// with is the shape of the methods on one instance: enter, look the
// instance up (ErrNotFound), let f check or change it under the lock, and
// answer a copy.
func (m *memService) with(method, name string, mutating bool, f func(cur *stateful.Instance) error) (*stateful.Instance, error) {
	if err := m.enter(method, name, mutating); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.instances[name]
	if !ok {
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrNotFound)
	}
	if f != nil {
		if err := f(cur); err != nil {
			return nil, err
		}
	}
	return cur.Clone(), nil
}

func (m *memService) Destroy(ctx context.Context, name string) (*stateful.Instance, error) {
	return m.with("Destroy", name, true, func(cur *stateful.Instance) error {
		cur.Status = stateful.StatusDeleting
		return nil
	})
}

func (m *memService) Get(ctx context.Context, name string) (*stateful.Instance, error) {
	return m.with("Get", name, false, nil)
}

func (m *memService) List(ctx context.Context) ([]*stateful.Instance, error) {
	if err := m.enter("List", "", false); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*stateful.Instance
	for _, inst := range m.instances { // map order: the API must sort
		out = append(out, inst.Clone())
	}
	return out, nil
}

func (m *memService) Health(ctx context.Context) []Problem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.problems)
}

// put stores inst as is (test setup; not a recorded mutation).
func (m *memService) put(inst *stateful.Instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.instances[inst.Name] = inst.Clone()
}

func (m *memService) snapshot() (map[string]*stateful.Instance, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*stateful.Instance, len(m.instances))
	for k, v := range maps.All(m.instances) {
		out[k] = v.Clone()
	}
	return out, slices.Clone(m.mutations)
}

var _ PlanService = (*memService)(nil)

func (m *memService) Switchover(ctx context.Context, name string, to *int) (*stateful.Instance, error) {
	return m.with("Switchover", name, true, func(cur *stateful.Instance) error {
		if cur.Type != stateful.TypeMasterSlave {
			return &stateful.ValidationError{Field: "type", Msg: "only an MS instance switches over"}
		}
		target := -1
		if to != nil {
			target = *to
		}
		cur.Switchover = &stateful.Switchover{To: target, Reason: stateful.SwitchoverRequested}
		return nil
	})
}

func (m *memService) SetRolloutPaused(ctx context.Context, name string, paused bool) (*stateful.Instance, error) {
	return m.with("SetRolloutPaused", name, true, func(cur *stateful.Instance) error {
		cur.RolloutPaused = paused
		return nil
	})
}

func (m *memService) AbortRollout(ctx context.Context, name string) (*stateful.Instance, error) {
	return m.with("AbortRollout", name, true, func(cur *stateful.Instance) error {
		if cur.PreviousSpec == nil {
			return &stateful.ValidationError{Msg: "no rolling spec change to abort"}
		}
		cur.Spec, cur.PreviousSpec = *cur.PreviousSpec, nil
		cur.Generation++
		return nil
	})
}

func (m *memService) Replace(ctx context.Context, name string, ordinal int) (*stateful.Instance, error) {
	return m.with("Replace", name, true, func(cur *stateful.Instance) error {
		if cur.Status == stateful.StatusDeleting {
			return fmt.Errorf("instance %q: %w", name, stateful.ErrDeleting)
		}
		if ordinal >= cur.TaskCount() {
			return fmt.Errorf("task %d: %w", ordinal, stateful.ErrNotFound)
		}
		return nil
	})
}

func (m *memService) Uninstall(ctx context.Context) (UninstallStatus, error) {
	if err := m.enter("Uninstall", "", true); err != nil {
		return UninstallStatus{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := UninstallStatus{Deleting: []string{}}
	for name, inst := range m.instances {
		inst.Status = stateful.StatusDeleting
		st.Deleting = append(st.Deleting, name)
	}
	return st, nil
}
