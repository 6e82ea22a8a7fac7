package statemgr_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newInstance(name string, slaves int) *stateful.Instance {
	return &stateful.Instance{
		Name: name, Type: stateful.TypeMasterSlave, Masters: 1, Slaves: slaves, Generation: 1,
		Spec: stateful.Spec{CPU: 0.5, Mem: 256, Disk: 512, Image: "redis:7", Network: stateful.NetworkHost, Ports: []string{"redis"}},
	}
}

func create(t *testing.T, s *statemgr.Store, name string, slaves int) *stateful.Instance {
	t.Helper()
	inst := newInstance(name, slaves)
	if err := s.CreateInstance(ctxT(t), inst, inst.InitialTasks(time.Now())); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return inst
}

// rawKeys returns every key etcd holds for the test framework, with values.
func rawKeys(t *testing.T, c *clientv3.Client) map[string]string {
	t.Helper()
	resp, err := c.Get(ctxT(t), "/stateful/"+statemgrtest.Framework+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

func revision(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	resp, err := c.Get(ctxT(t), "/")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// eventually polls cond until it holds or 10 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCreateGetListUpdateDelete(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)

	create(t, s, "cache1", 2)
	create(t, s, "alpha", 0)

	got, err := s.InstanceWithTasks("cache1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != stateful.StatusCreating || got.CreatedAt.IsZero() || len(got.Tasks) != 3 {
		t.Fatalf("stored instance = %+v with %d tasks", got, len(got.Tasks))
	}
	for i, task := range got.Tasks {
		if task.Ordinal != i || task.State != stateful.TaskQueued {
			t.Fatalf("task %d = %+v", i, task)
		}
	}
	if got.Tasks[0].Role != stateful.RoleMaster || got.Tasks[2].Role != stateful.RoleSlave {
		t.Fatalf("roles = %s %s", got.Tasks[0].Role, got.Tasks[2].Role)
	}

	// The etcd layout is DESIGN §5's.
	keys := rawKeys(t, e.Client())
	for _, k := range []string{"/stateful/test/instances/cache1", "/stateful/test/tasks/cache1/0",
		"/stateful/test/tasks/cache1/2", "/stateful/test/instances/alpha", "/stateful/test/tasks/alpha/0"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("key %s missing; have %v", k, keys)
		}
	}

	list := s.Instances()
	if len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "cache1" || list[1].Tasks != nil {
		t.Fatalf("Instances() = %v", list)
	}
	if n := len(s.AllTasks()); n != 4 {
		t.Fatalf("AllTasks() has %d tasks, want 4", n)
	}

	// Status update of one task.
	task, err := s.UpdateTask(ctx, "cache1", 1, func(task *stateful.Task) error {
		task.TaskID, task.Attempt = task.NextTaskID()
		task.State, task.AgentID, task.Host = stateful.TaskRunning, "agent-1", "127.0.0.2"
		task.Ports = map[string]int{"redis": 31001}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.State != stateful.TaskRunning || task.TaskID != "cache1-1.1" {
		t.Fatalf("updated task = %+v", task)
	}
	byID, err := s.TaskByID("cache1-1.1")
	if err != nil || byID.Host != "127.0.0.2" || byID.Ports["redis"] != 31001 {
		t.Fatalf("TaskByID = %+v, %v", byID, err)
	}
	if _, err := s.TaskByID("cache1-1"); !errors.Is(err, statemgr.ErrNotFound) {
		t.Fatalf("TaskByID(bad id) err = %v, want ErrNotFound", err)
	}

	// Reads are copies.
	byID.Ports["redis"] = 1
	again, _ := s.Task("cache1", 1)
	if again.Ports["redis"] != 31001 {
		t.Fatal("a read returned memory shared with the cache")
	}

	if err := s.DeleteInstance(ctx, "cache1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Instance("cache1"); !errors.Is(err, statemgr.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if n := len(s.Tasks("cache1")); n != 0 {
		t.Fatalf("%d tasks left in the cache", n)
	}
	for k := range rawKeys(t, e.Client()) {
		if k == "/stateful/test/instances/cache1" || strings.HasPrefix(k, "/stateful/test/tasks/cache1/") {
			t.Fatalf("key %s left in etcd after delete", k)
		}
	}
	if err := s.DeleteInstance(ctx, "cache1", nil); !errors.Is(err, statemgr.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	// The name can be used again.
	create(t, s, "cache1", 0)
}

func TestCreateConflictChangesNothing(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	create(t, s, "db", 2)
	before := rawKeys(t, e.Client())
	rev := revision(t, e.Client())

	dup := newInstance("db", 0)
	dup.Spec.Image = "other:1"
	err := s.CreateInstance(ctxT(t), dup, dup.InitialTasks(time.Now()))
	if !errors.Is(err, statemgr.ErrExists) {
		t.Fatalf("duplicate create: %v, want ErrExists", err)
	}
	if after := rawKeys(t, e.Client()); !reflect.DeepEqual(before, after) {
		t.Fatalf("duplicate create changed etcd")
	}
	if revision(t, e.Client()) != rev {
		t.Fatal("duplicate create wrote something")
	}
	if got, _ := s.InstanceWithTasks("db"); got.Spec.Image != "redis:7" || len(got.Tasks) != 3 {
		t.Fatalf("cache changed: %+v", got)
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	good := newInstance("db", 1)
	other := newInstance("other", 0)
	tests := []struct {
		name  string
		inst  *stateful.Instance
		tasks []*stateful.Task
		field string
	}{
		{"invalid instance", func() *stateful.Instance { i := newInstance("Bad", 0); return i }(), nil, "name"},
		{"invalid spec", func() *stateful.Instance { i := newInstance("db", 0); i.Spec.CPU = -1; return i }(), nil, "spec.cpu"},
		{"task of another instance", good, other.InitialTasks(time.Now()), ""},
		{"duplicate ordinal", good, append(good.InitialTasks(time.Now()), good.InitialTasks(time.Now())[0]), ""},
		{"invalid task", good, []*stateful.Task{{Instance: "db", Ordinal: 0, Name: "db-7", Role: stateful.RoleMaster, State: stateful.TaskQueued}}, "name"},
		{"nil task", good, []*stateful.Task{nil}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateInstance(ctx, tc.inst, tc.tasks)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.field != "" {
				ve, ok := stateful.AsValidationError(err)
				if !ok || ve.Field != tc.field {
					t.Fatalf("err = %v, want a validation error on %s", err, tc.field)
				}
			}
		})
	}
	if err := s.CreateInstance(ctx, nil, nil); err == nil {
		t.Fatal("nil instance accepted")
	}
	if keys := rawKeys(t, e.Client()); len(keys) != 1 { // only the leader key
		t.Fatalf("bad creates left keys: %v", keys)
	}
	if len(s.Instances()) != 0 {
		t.Fatal("bad creates reached the cache")
	}
}

func TestUpdateInstanceIsAtomic(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	create(t, s, "db", 2)

	// A failover: promote ordinal 2, demote 0, in one write with the
	// instance's master ordinal; plus scale up by one slave.
	rev := revision(t, e.Client())
	got, err := s.UpdateInstance(ctx, "db", func(inst *stateful.Instance) error {
		inst.MasterOrdinal = 2
		inst.Status = stateful.StatusDegraded
		inst.Tasks[0].Role = stateful.RoleSlave
		inst.Tasks[2].Role = stateful.RoleMaster
		inst.Slaves++
		inst.Generation++
		inst.Tasks = append(inst.Tasks, stateful.NewTask(inst, 3, stateful.RoleSlave, time.Now()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if revision(t, e.Client()) != rev+1 {
		t.Fatal("the update took more than one transaction")
	}
	if got.MasterOrdinal != 2 || len(got.Tasks) != 4 {
		t.Fatalf("returned %+v", got)
	}
	stored, _ := s.InstanceWithTasks("db")
	roles := []stateful.Role{}
	for _, task := range stored.Tasks {
		roles = append(roles, task.Role)
	}
	if stored.MasterOrdinal != 2 || stored.Slaves != 3 || !reflect.DeepEqual(roles, []stateful.Role{"slave", "slave", "master", "slave"}) {
		t.Fatalf("stored %+v roles %v", stored, roles)
	}

	// Scale down: removing a task from the slice deletes its document.
	if _, err := s.UpdateInstance(ctx, "db", func(inst *stateful.Instance) error {
		inst.Slaves--
		inst.Tasks = inst.Tasks[:3]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok := rawKeys(t, e.Client())["/stateful/test/tasks/db/3"]; ok {
		t.Fatal("removed task still in etcd")
	}
	if _, err := s.Task("db", 3); !errors.Is(err, statemgr.ErrNotFound) {
		t.Fatalf("removed task still cached: %v", err)
	}

	// Nothing changed: nothing written.
	rev = revision(t, e.Client())
	if _, err := s.UpdateInstance(ctx, "db", func(*stateful.Instance) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if revision(t, e.Client()) != rev {
		t.Fatal("a no-op update wrote")
	}

	// A refusing mutate and an invalid result write nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateInstance(ctx, "db", func(inst *stateful.Instance) error {
		inst.Slaves = 9
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("mutate error not returned: %v", err)
	}
	_, err = s.UpdateInstance(ctx, "db", func(inst *stateful.Instance) error {
		inst.Tasks[1].Role = "boss"
		inst.Spec.Mem = 512
		return nil
	})
	if ve, ok := stateful.AsValidationError(err); !ok || ve.Field != "role" {
		t.Fatalf("invalid task accepted or wrong error: %v", err)
	}
	if _, err := s.UpdateInstance(ctx, "db", func(inst *stateful.Instance) error { inst.Name = "x"; return nil }); err == nil {
		t.Fatal("rename accepted")
	}
	if revision(t, e.Client()) != rev {
		t.Fatal("a refused update wrote")
	}
	if inst, _ := s.Instance("db"); inst.Slaves != 2 || inst.Spec.Mem != 256 {
		t.Fatalf("refused update reached the cache: %+v", inst)
	}
	if _, err := s.UpdateInstance(ctx, "nope", func(*stateful.Instance) error { return nil }); !errors.Is(err, statemgr.ErrNotFound) {
		t.Fatalf("update of unknown instance: %v", err)
	}
}

func TestDeletePrecondition(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	create(t, s, "db", 1)
	allTerminal := func(inst *stateful.Instance) error {
		for _, task := range inst.Tasks {
			if !task.State.IsTerminal() {
				return fmt.Errorf("task %s is %s", task.Name, task.State)
			}
		}
		return nil
	}
	if err := s.DeleteInstance(ctx, "db", allTerminal); err == nil {
		t.Fatal("deleted while tasks are queued")
	}
	if _, err := s.InstanceWithTasks("db"); err != nil {
		t.Fatal(err)
	}
	for n := range 2 {
		if _, err := s.UpdateTask(ctx, "db", n, func(task *stateful.Task) error { task.State = stateful.TaskKilled; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteInstance(ctx, "db", allTerminal); err != nil {
		t.Fatal(err)
	}
	if keys := rawKeys(t, e.Client()); len(keys) != 1 {
		t.Fatalf("keys left: %v", keys)
	}
}

func TestUpdateTaskRefusals(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	create(t, s, "db", 0)
	rev := revision(t, e.Client())
	for name, mutate := range map[string]func(*stateful.Task) error{
		"identity": func(task *stateful.Task) error { task.Ordinal = 5; return nil },
		"invalid":  func(task *stateful.Task) error { task.State = "RUNNING"; return nil },
		"error":    func(*stateful.Task) error { return errors.New("no") },
	} {
		if _, err := s.UpdateTask(ctx, "db", 0, mutate); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := s.UpdateTask(ctx, "db", 4, func(*stateful.Task) error { return nil }); !errors.Is(err, statemgr.ErrNotFound) {
		t.Errorf("unknown task: %v", err)
	}
	if revision(t, e.Client()) != rev {
		t.Fatal("refused updates wrote")
	}
}

func TestConcurrentUpdatersLoseNothing(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e, statemgr.WithRetries(1000))
	ctx := ctxT(t)
	create(t, s, "db", 0)

	const workers, each = 4, 20
	var calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				_, err := s.UpdateTask(ctx, "db", 0, func(task *stateful.Task) error {
					calls.Add(1)
					n, _ := strconv.Atoi(task.Stats["count"])
					if task.Stats == nil {
						task.Stats = map[string]string{}
					}
					task.Stats["count"] = strconv.Itoa(n + 1)
					task.Stats["last"] = strconv.Itoa(w)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	task, _ := s.Task("db", 0)
	if task.Stats["count"] != strconv.Itoa(workers*each) {
		t.Fatalf("count = %s, want %d: an update was lost", task.Stats["count"], workers*each)
	}
	// And etcd agrees with the cache.
	fresh := statemgrtest.NewFollower(t, e)
	if ft, _ := fresh.Task("db", 0); ft.Stats["count"] != task.Stats["count"] {
		t.Fatalf("etcd has count %s, cache %s", ft.Stats["count"], task.Stats["count"])
	}
	t.Logf("%d updates took %d mutate calls (conflicts retried)", workers*each, calls.Load())
}

func TestCacheFollowsOtherWriter(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	leader := statemgrtest.NewLeader(t, e)
	follower := statemgrtest.NewFollower(t, e)
	ctx := ctxT(t)

	create(t, leader, "db", 1)
	eventually(t, "follower sees the create", func() bool {
		inst, err := follower.InstanceWithTasks("db")
		return err == nil && len(inst.Tasks) == 2
	})
	if _, err := leader.UpdateTask(ctx, "db", 1, func(task *stateful.Task) error { task.State = stateful.TaskRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "follower sees the update", func() bool {
		task, err := follower.Task("db", 1)
		return err == nil && task.State == stateful.TaskRunning
	})
	if err := leader.SetFrameworkID(ctx, "fw-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "follower sees the framework id", func() bool { return follower.FrameworkID() == "fw-1" })
	if err := leader.DeleteInstance(ctx, "db", nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "follower sees the delete", func() bool {
		_, err := follower.Instance("db")
		return errors.Is(err, statemgr.ErrNotFound) && len(follower.AllTasks()) == 0
	})

	// The follower cannot write.
	inst := newInstance("other", 0)
	if err := follower.CreateInstance(ctx, inst, inst.InitialTasks(time.Now())); !errors.Is(err, statemgr.ErrNotLeader) {
		t.Fatalf("follower create: %v, want ErrNotLeader", err)
	}
}

func TestRestartSeesEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)
	first, err := statemgr.StartEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	s, err := statemgr.New(ctx, first.Client(), statemgrtest.Framework)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	create(t, s, "db", 2)
	if _, err := s.UpdateTask(ctx, "db", 2, func(task *stateful.Task) error { task.State = stateful.TaskFailed; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFrameworkID(ctx, "fw-42"); err != nil {
		t.Fatal(err)
	}
	want, _ := s.InstanceWithTasks("db")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal("second embedded Close:", err)
	}

	second := statemgrtest.StartEtcdIn(t, dir)
	s2 := statemgrtest.NewLeader(t, second)
	got, err := s2.InstanceWithTasks("db")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart\n%+v\nwant\n%+v", got, want)
	}
	if s2.FrameworkID() != "fw-42" {
		t.Fatalf("framework id = %q", s2.FrameworkID())
	}
}

func TestLeaderFencing(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	// A short TTL: the session notices a lost lease within a third of it.
	a := statemgrtest.NewLeader(t, e, statemgr.WithIdentity("a"), statemgr.WithSessionTTL(2*time.Second))
	b := statemgrtest.NewFollower(t, e, statemgr.WithIdentity("b"))
	ctx := ctxT(t)
	create(t, a, "db", 0)

	if who, err := b.Leader(ctx); err != nil || who != "a" {
		t.Fatalf("Leader() = %q, %v", who, err)
	}
	if _, err := b.UpdateTask(ctx, "db", 0, func(task *stateful.Task) error { task.Message = "b"; return nil }); !errors.Is(err, statemgr.ErrNotLeader) {
		t.Fatalf("non-leader update: %v, want ErrNotLeader", err)
	}

	// b campaigns and waits behind a.
	type result struct {
		l   *statemgr.Leadership
		err error
	}
	won := make(chan result, 1)
	go func() {
		l, err := b.Campaign(ctx)
		won <- result{l, err}
	}()

	// a's session ends (the lease expires: here it is revoked, as etcd
	// does when keep-alives stop for longer than the TTL).
	la, err := a.Campaign(ctx) // the live term
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Client().Get(ctx, la.Key())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader key: %v %v", resp, err)
	}
	if _, err := e.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("losing the session was not reported on Done")
	}
	var r result
	select {
	case r = <-won:
	case <-time.After(20 * time.Second):
		t.Fatal("b was not elected after a's session ended")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}

	rev := revision(t, e.Client())
	if _, err := a.UpdateTask(ctx, "db", 0, func(task *stateful.Task) error { task.Message = "a"; return nil }); !errors.Is(err, statemgr.ErrNotLeader) {
		t.Fatalf("deposed leader update: %v, want ErrNotLeader", err)
	}
	if revision(t, e.Client()) != rev {
		t.Fatal("the deposed leader wrote")
	}
	if _, err := b.UpdateTask(ctx, "db", 0, func(task *stateful.Task) error { task.Message = "b"; return nil }); err != nil {
		t.Fatalf("new leader update: %v", err)
	}
	eventually(t, "a's cache follows b's write", func() bool {
		task, _ := a.Task("db", 0)
		return task != nil && task.Message == "b"
	})
}

// A leader whose key vanished while its session lives on (so it has not
// noticed anything) is stopped by etcd itself: the fence is part of every
// transaction, not a local flag.
func TestFenceIsCheckedByEtcd(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	a := statemgrtest.NewLeader(t, e, statemgr.WithIdentity("a"))
	b := statemgrtest.NewFollower(t, e, statemgr.WithIdentity("b"))
	ctx := ctxT(t)
	create(t, a, "db", 0)
	la, _ := a.Campaign(ctx)

	if _, err := e.Client().Delete(ctx, la.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Done():
		t.Fatal("a's session ended; this test needs it alive")
	default:
	}
	_, err := a.UpdateTask(ctx, "db", 0, func(task *stateful.Task) error { task.Message = "a"; return nil })
	if !errors.Is(err, statemgr.ErrNotLeader) {
		t.Fatalf("write with a stale fence: %v, want ErrNotLeader", err)
	}
	if task, _ := b.Task("db", 0); task.Message == "a" {
		t.Fatal("stale leader's write landed")
	}
}

func TestResignHandsOver(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	a := statemgrtest.NewLeader(t, e)
	b := statemgrtest.NewFollower(t, e)
	ctx := ctxT(t)
	if err := a.Resign(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	inst := newInstance("db", 0)
	if err := a.CreateInstance(ctx, inst, nil); !errors.Is(err, statemgr.ErrNotLeader) {
		t.Fatalf("resigned leader create: %v", err)
	}
	if err := b.CreateInstance(ctx, inst, nil); err != nil {
		t.Fatal(err)
	}
}

func TestApplyTaskUpdatesBatch(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	create(t, s, "db", 2)

	setState := func(st stateful.TaskState) func(*stateful.Task) error {
		return func(task *stateful.Task) error { task.State = st; return nil }
	}
	boom := errors.New("boom")
	updates := []statemgr.TaskUpdate{
		{Instance: "db", Ordinal: 0, Mutate: setState(stateful.TaskStaging)},
		{Instance: "db", Ordinal: 1, Mutate: setState(stateful.TaskRunning)},
		{Instance: "db", Ordinal: 0, Mutate: setState(stateful.TaskRunning)}, // same task, later
		{Instance: "db", Ordinal: 7, Mutate: setState(stateful.TaskRunning)}, // unknown
		{Instance: "db", Ordinal: 2, Mutate: func(*stateful.Task) error { return boom }},
		{Instance: "db", Ordinal: 2, Mutate: setState(stateful.TaskFailed)},
	}
	rev := revision(t, e.Client())
	res, err := s.ApplyTaskUpdates(ctx, updates)
	if err != nil {
		t.Fatal(err)
	}
	if revision(t, e.Client()) != rev+1 {
		t.Fatalf("batch used %d transactions, want 1", revision(t, e.Client())-rev)
	}
	if res[0].Err != nil || res[1].Err != nil || res[2].Err != nil || res[5].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if !errors.Is(res[3].Err, statemgr.ErrNotFound) || !errors.Is(res[4].Err, boom) {
		t.Fatalf("results %+v", res)
	}
	if res[2].Task.State != stateful.TaskRunning {
		t.Fatalf("later update of the same task lost: %+v", res[2].Task)
	}
	want := []stateful.TaskState{stateful.TaskRunning, stateful.TaskRunning, stateful.TaskFailed}
	fresh := statemgrtest.NewFollower(t, e)
	for n, st := range want {
		if task, _ := fresh.Task("db", n); task.State != st {
			t.Fatalf("etcd has task %d in %s, want %s", n, task.State, st)
		}
	}
}

func TestApplyTaskUpdatesSplitsLargeBatches(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	// 3 instances of 65 tasks: 195 documents, more than MaxBatch.
	var updates []statemgr.TaskUpdate
	for i := range 3 {
		name := "db" + strconv.Itoa(i)
		create(t, s, name, stateful.MaxSlaves)
		for n := range stateful.MaxSlaves + 1 {
			updates = append(updates, statemgr.TaskUpdate{Instance: name, Ordinal: n, Mutate: func(task *stateful.Task) error {
				task.State = stateful.TaskStaging
				return nil
			}})
		}
	}
	rev := revision(t, e.Client())
	res, err := s.ApplyTaskUpdates(ctx, updates)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Task.State != stateful.TaskStaging {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if got, want := revision(t, e.Client())-rev, int64((len(updates)+statemgr.MaxBatch-1)/statemgr.MaxBatch); got != want {
		t.Fatalf("%d transactions, want %d", got, want)
	}
}

func TestFrameworkID(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewLeader(t, e)
	ctx := ctxT(t)
	if s.FrameworkID() != "" {
		t.Fatal("fresh store has a framework id")
	}
	for _, id := range []string{"fw-1", "fw-2", "fw-2", ""} {
		if err := s.SetFrameworkID(ctx, id); err != nil {
			t.Fatal(err)
		}
		if s.FrameworkID() != id {
			t.Fatalf("FrameworkID() = %q, want %q", s.FrameworkID(), id)
		}
	}
	if _, ok := rawKeys(t, e.Client())["/stateful/test/framework-id"]; ok {
		t.Fatal("cleared framework id still in etcd")
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	ctx := ctxT(t)
	for _, fw := range []string{"", "a/b", "a b", "..", string(make([]byte, 200))} {
		if _, err := statemgr.New(ctx, e.Client(), fw); err == nil {
			t.Errorf("framework name %q accepted", fw)
		}
	}
	if _, err := statemgr.New(ctx, nil, "x"); err == nil {
		t.Error("nil client accepted")
	}

	// A corrupt document fails the load with its key named.
	if _, err := e.Client().Put(ctx, "/stateful/test/instances/db", "{not json"); err != nil {
		t.Fatal(err)
	}
	_, err := statemgr.New(ctx, e.Client(), statemgrtest.Framework)
	if err == nil || !strings.Contains(err.Error(), "/stateful/test/instances/db") {
		t.Fatalf("corrupt document: %v", err)
	}
	// A document under the wrong key too.
	if _, err := e.Client().Put(ctx, "/stateful/test/instances/db", `{"name":"other"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := statemgr.New(ctx, e.Client(), statemgrtest.Framework); err == nil {
		t.Fatal("document naming another instance accepted")
	}
}

func TestPing(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	s := statemgrtest.NewFollower(t, e)
	if err := s.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with etcd stopped")
	}
}

func TestErrorsMatchToolkitSentinels(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	leader := statemgrtest.NewLeader(t, e)
	follower := statemgrtest.NewFollower(t, e)
	ctx := ctxT(t)
	create(t, leader, "db", 0)
	if _, err := leader.Instance("nope"); !errors.Is(err, stateful.ErrNotFound) {
		t.Errorf("not found: %v", err)
	}
	inst := newInstance("db", 0)
	if err := leader.CreateInstance(ctx, inst, nil); !errors.Is(err, stateful.ErrExists) {
		t.Errorf("exists: %v", err)
	}
	if err := follower.DeleteInstance(ctx, "db", nil); !errors.Is(err, stateful.ErrUnavailable) || !errors.Is(err, statemgr.ErrNotLeader) {
		t.Errorf("not leader: %v", err)
	}
	e.Close()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := leader.UpdateTask(short, "db", 0, func(task *stateful.Task) error { task.Message = "x"; return nil }); !errors.Is(err, stateful.ErrUnavailable) {
		t.Errorf("etcd down: %v", err)
	}
}
