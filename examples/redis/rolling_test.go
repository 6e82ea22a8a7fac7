package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
)

// apiWriter writes through the master GET names, as a client that follows
// the API would: SET then WAIT 1 (one slave has it), and on any error it
// asks GET again and retries the same key. It keeps the keys acknowledged
// by WAIT and the longest time between two acknowledged writes.
type apiWriter struct {
	env  *redistest.Env
	name string

	mu     sync.Mutex
	acked  []int
	maxGap time.Duration
	errs   int
}

func (w *apiWriter) run(ctx context.Context) {
	var (
		conn *resp.Conn
		last = time.Now()
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i := 0; ctx.Err() == nil; {
		if conn == nil {
			inst, _, err := w.env.Get(ctx, w.name)
			m := (*stateful.Task)(nil)
			if err == nil && inst != nil {
				m = redistest.Master(inst)
			}
			if m == nil || m.State != stateful.TaskRunning {
				w.fail()
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			conn, err = resp.Dial(dctx, redistest.Addr(m))
			cancel()
			if err != nil {
				conn = nil
				w.fail()
				continue
			}
		}
		key := "w:" + strconv.Itoa(i)
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := conn.Do(dctx, "SET", key, key)
		if err == nil && got == "OK" {
			got, err = conn.Do(dctx, "WAIT", "1", "1000")
		}
		cancel()
		if n, ok := got.(int64); err != nil || !ok || n < 1 {
			conn.Close()
			conn = nil
			w.fail()
			continue
		}
		now := time.Now()
		w.mu.Lock()
		w.acked = append(w.acked, i)
		w.maxGap = max(w.maxGap, now.Sub(last))
		w.mu.Unlock()
		last = now
		i++
	}
}

func (w *apiWriter) fail() {
	w.mu.Lock()
	w.errs++
	w.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // a client's retry pause, not synchronisation
}

func (w *apiWriter) result() ([]int, time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked), w.maxGap, w.errs
}

// TestRollingUpdateSwitchesOver: a spec change of a 1+2 instance rolls the
// slaves one at a time, then switches the master over to a slave (CLIENT
// PAUSE, catch up, promote) and relaunches the old master as a slave; then a
// switchover through the API moves the master back. A client writing
// through the master GET names all along loses no acknowledged write, and
// the instance shows UPDATING, never DEGRADED.
func TestRollingUpdateSwitchesOver(t *testing.T) {
	needRedis(t)
	env := start(t, "process")
	ctx := testCtx(t, 3*time.Minute)
	const name = "roll1"
	if err := env.Create(ctx, createBody(name, nil)); err != nil {
		t.Fatal(err)
	}
	inst, err := env.WaitHealthy(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	before := inst
	for _, task := range inst.Tasks {
		if task.Role == stateful.RoleSlave {
			waitReplicates(t, ctx, task, redistest.Master(inst))
		}
	}

	wctx, stopWriter := context.WithCancel(ctx)
	w := &apiWriter{env: env, name: name}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.run(wctx) }()
	defer func() { stopWriter(); wg.Wait() }()
	err = redistest.Poll(ctx, "the writer's first acknowledged writes", func() (bool, string) {
		acked, _, _ := w.result()
		return len(acked) > 20, fmt.Sprint(len(acked))
	})
	if err != nil {
		t.Fatal(err)
	}

	rec := recordStatus(env, name)
	defer rec.stop()
	patched, err := env.Client().Update(ctx, name, client.PatchRequest{Spec: json.RawMessage(`{"mem":300}`)})
	if err != nil {
		t.Fatal(err)
	}
	if len(patched.Tasks) != 3 || patched.Tasks[0].Stats == nil {
		t.Errorf("PATCH's body has no tasks with stats, unlike GET: %+v", patched.Tasks)
	}
	err = redistest.Poll(ctx, "every task at the new generation, RUNNING and healthy", func() (bool, string) {
		got, _, err := env.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint(err)
		}
		inst = got
		if !redistest.AllHealthy(got) {
			return false, redistest.Describe(got)
		}
		for _, task := range got.Tasks {
			if task.Generation != got.Generation {
				return false, redistest.Describe(got)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	m := redistest.Master(inst)
	if m == nil || m.Ordinal == 0 {
		t.Fatalf("the master did not move off ordinal 0 during the rollout: %s", redistest.Describe(inst))
	}
	// The new master was switched over to, not relaunched after: one
	// relaunch per ordinal, each at the new spec.
	for i, task := range inst.Tasks {
		if task.Attempt != before.Tasks[i].Attempt+1 {
			t.Errorf("%s: attempt %d, want %d (one relaunch each)", task.Name, task.Attempt, before.Tasks[i].Attempt+1)
		}
	}
	acked, gap, errs := w.result()
	t.Logf("rolling update: %d writes acknowledged, longest gap %v, %d client retries", len(acked), gap.Round(time.Millisecond), errs)

	// A switchover through the API moves the master back to ordinal 0
	// without relaunching anything.
	if _, err := env.Client().Switchover(ctx, name, ptr(0)); err != nil {
		t.Fatal(err)
	}
	err = redistest.Poll(ctx, "ordinal 0 to be the master again", func() (bool, string) {
		got, _, err := env.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint(err)
		}
		inst = got
		m := redistest.Master(got)
		return m != nil && m.Ordinal == 0 && got.Switchover == nil && redistest.AllHealthy(got), redistest.Describe(got)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := info(t, redistest.Addr(inst.Tasks[0]))["role"]; got != "master" {
		t.Errorf("ordinal 0's server is %q after the switchover", got)
	}
	err = redistest.Poll(ctx, "the executors to report the new roles", func() (bool, string) {
		got, _, _ := env.Get(ctx, name)
		if got == nil {
			return false, ""
		}
		for _, task := range got.Tasks {
			if task.Stats[stateful.StatRole] != string(task.Role) {
				return false, redistest.Describe(got)
			}
		}
		return true, ""
	})
	if err != nil {
		t.Error(err)
	}
	stopWriter()
	wg.Wait()
	rec.stop()

	acked, gap, errs = w.result()
	t.Logf("after the switchover: %d writes acknowledged, longest gap %v, %d client retries", len(acked), gap.Round(time.Millisecond), errs)
	maddr := redistest.Addr(redistest.Master(inst))
	for _, i := range acked {
		key := "w:" + strconv.Itoa(i)
		if got := do(t, maddr, "GET", key); got != key {
			t.Fatalf("acknowledged write %s is lost: GET = %v", key, got)
		}
	}
	seen := rec.statuses()
	if !slices.Contains(seen, stateful.StatusUpdating) || slices.Contains(seen, stateful.StatusDegraded) {
		t.Errorf("statuses seen %v, want UPDATING and never DEGRADED", seen)
	}
}

func ptr[T any](v T) *T { return &v }
