package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/httplib"
)

// memService is an in-memory httplib.Service with the contract's errors,
// so the CLI is tested against the real REST API (routing, validation,
// error bodies). Tests move its instances along with onGet.
type memService struct {
	mu        sync.Mutex
	instances map[string]*stateful.Instance
	problems  []httplib.Problem
	mutations []string
	gets      int
	// failGets makes the next Gets fail as a scheduler without a leader
	// does (503).
	failGets int
	// onGet, if set, runs on the stored instance at each Get of it (under
	// the lock): n counts Gets from 1. Returning true removes the
	// instance, as the destroyer does once every task has ended.
	onGet func(n int, inst *stateful.Instance) (gone bool)
}

func newMemService() *memService {
	return &memService{instances: map[string]*stateful.Instance{}}
}

func (m *memService) Defaults() stateful.Spec {
	return stateful.Spec{
		CPU: 0.5, Mem: 256, Disk: 512,
		Image: "redis:7", Command: "redis-server",
		Ports: []string{"redis"}, Volume: "/data",
		Health: &stateful.HealthCheck{TCP: "redis"},
	}
}

func (m *memService) Create(_ context.Context, inst *stateful.Instance) (*stateful.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mutations = append(m.mutations, "Create "+inst.Name)
	if _, ok := m.instances[inst.Name]; ok {
		return nil, fmt.Errorf("instance %q: %w", inst.Name, stateful.ErrExists)
	}
	now := time.Now().UTC()
	stored := inst.Clone()
	stored.Status, stored.Generation, stored.CreatedAt, stored.UpdatedAt = stateful.StatusCreating, 1, now, now
	stored.Tasks = stored.InitialTasks(now)
	m.instances[inst.Name] = stored
	return stored.Clone(), nil
}

func (m *memService) Update(_ context.Context, name string, patch httplib.Patch) (*stateful.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mutations = append(m.mutations, "Update "+name)
	cur, ok := m.instances[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrNotFound)
	case cur.Status == stateful.StatusDeleting:
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrDeleting)
	case cur.Generation != patch.Generation:
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrConflict)
	}
	next := patch.Apply(cur)
	next.Generation++
	m.instances[name] = next
	return next.Clone(), nil
}

func (m *memService) Destroy(_ context.Context, name string) (*stateful.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mutations = append(m.mutations, "Destroy "+name)
	cur, ok := m.instances[name]
	if !ok {
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrNotFound)
	}
	cur.Status = stateful.StatusDeleting
	return cur.Clone(), nil
}

func (m *memService) Get(_ context.Context, name string) (*stateful.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failGets > 0 {
		m.failGets--
		return nil, fmt.Errorf("no leader: %w", stateful.ErrUnavailable)
	}
	cur, ok := m.instances[name]
	if !ok {
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrNotFound)
	}
	m.gets++
	if m.onGet != nil && m.onGet(m.gets, cur) {
		delete(m.instances, name)
		return nil, fmt.Errorf("instance %q: %w", name, stateful.ErrNotFound)
	}
	return cur.Clone(), nil
}

func (m *memService) List(context.Context) ([]*stateful.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*stateful.Instance
	for _, inst := range m.instances {
		out = append(out, inst.Clone())
	}
	return out, nil
}

func (m *memService) Health(context.Context) []httplib.Problem {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.problems)
}

// set changes the service's settings (failGets, onGet, problems) under
// its lock, as requests read them.
func (m *memService) set(f func(m *memService)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// put stores inst as is (test setup).
func (m *memService) put(inst *stateful.Instance) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.instances[inst.Name] = inst.Clone()
}

func (m *memService) stored(name string) *stateful.Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.instances[name].Clone()
}

func (m *memService) mutationLog() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mutations)
}

// apiServer is the REST API over a memService, counting the requests it
// gets.
type apiServer struct {
	svc      *memService
	url      string
	requests atomic.Int64
}

func startAPI(t *testing.T) *apiServer {
	t.Helper()
	a := &apiServer{svc: newMemService()}
	s, err := httplib.New(httplib.NewConfig(), a.svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	return a
}

// runningInstance is a healthy MS instance as GET shows it after a
// failover: the master is ordinal 1.
func runningInstance(name string) *stateful.Instance {
	now := time.Now().UTC().Add(-5 * time.Minute)
	inst := &stateful.Instance{
		Name: name, Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2,
		Status: stateful.StatusRunning, Generation: 3, MasterOrdinal: 1,
		Spec: stateful.Spec{
			CPU: 0.5, Mem: 256, Disk: 512, Image: "redis:7", Command: "redis-server",
			Network: stateful.NetworkHost, Ports: []string{"redis", "metrics"}, Volume: "/data",
			Env:    map[string]string{"REDIS_PASSWORD": "s3cret"},
			Health: &stateful.HealthCheck{TCP: "redis", IntervalS: 10, GraceS: 30, TimeoutS: 5},
		},
		CreatedAt: now, UpdatedAt: now,
	}
	for n, role := range []stateful.Role{stateful.RoleSlave, stateful.RoleMaster, stateful.RoleSlave} {
		t := stateful.NewTask(inst, n, role, now)
		t.State, t.Healthy, t.Attempt = stateful.TaskRunning, true, 1
		t.TaskID = stateful.FormatTaskID(name, n, 1)
		t.AgentID = fmt.Sprintf("agent-%d", n)
		t.Host = fmt.Sprintf("127.0.0.%d", n+2)
		t.Ports = map[string]int{"redis": 31000 + n, "metrics": 31100 + n}
		t.Stats = map[string]string{"role": string(role), "replication_offset": fmt.Sprint(1000 + n), "keys": "7"}
		inst.Tasks = append(inst.Tasks, t)
	}
	return inst
}

func (m *memService) Replace(_ context.Context, name string, ordinal int) (*stateful.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mutations = append(m.mutations, fmt.Sprintf("Replace %s %d", name, ordinal))
	cur, ok := m.instances[name]
	if !ok || ordinal >= len(cur.Tasks) {
		return nil, fmt.Errorf("instance %q task %d: %w", name, ordinal, stateful.ErrNotFound)
	}
	cur.Tasks[ordinal].Replace = true // as the scheduler: until the ordinal's next launch
	return cur.Clone(), nil
}

func (m *memService) Uninstall(context.Context) (httplib.UninstallStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mutations = append(m.mutations, "Uninstall")
	return httplib.UninstallStatus{Deleting: []string{}, Message: "deleting 0 instances"}, nil
}
