package statemgr

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
)

func taskDoc(t *testing.T, name string, ordinal int, msg string) []byte {
	t.Helper()
	task := stateful.NewTask(&stateful.Instance{Name: name}, ordinal, stateful.RoleSlave, time.Time{})
	task.Message = msg
	raw, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The cache is fed by two unordered sources (own writes, the watch); it must
// end up with the newest state whatever the interleaving.
func TestCacheOrdersByRevision(t *testing.T) {
	k, _ := newKeys("test")
	key := k.task("db", 0)
	msg := func(c *cache) string {
		task, _, _, ok := c.task("db", 0)
		if !ok {
			return "<absent>"
		}
		return task.Message
	}
	type step struct {
		del bool
		rev int64
		msg string
	}
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{"in order", []step{{rev: 5, msg: "a"}, {rev: 6, msg: "b"}}, "b"},
		{"late older put ignored", []step{{rev: 6, msg: "b"}, {rev: 5, msg: "a"}}, "b"},
		{"same revision twice", []step{{rev: 6, msg: "b"}, {rev: 6, msg: "b"}}, "b"},
		{"delete then late older put stays deleted", []step{{rev: 5, msg: "a"}, {del: true, rev: 7}, {rev: 6, msg: "b"}}, "<absent>"},
		{"recreate after delete", []step{{rev: 5, msg: "a"}, {del: true, rev: 7}, {rev: 8, msg: "c"}}, "c"},
		{"late older delete ignored", []step{{rev: 8, msg: "c"}, {del: true, rev: 7}}, "c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(k)
			c.mu.Lock()
			for _, s := range tc.steps {
				if s.del {
					c.delLocked(key, s.rev)
				} else if err := c.putLocked(key, taskDoc(t, "db", 0, s.msg), s.rev); err != nil {
					t.Fatal(err)
				}
			}
			c.mu.Unlock()
			if got := msg(c); got != tc.want {
				t.Fatalf("message = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("reload keeps newer own writes", func(t *testing.T) {
		c := newCache(k)
		c.mu.Lock()
		c.putLocked(key, taskDoc(t, "db", 0, "own"), 10)
		c.delLocked(k.task("db", 1), 11)
		c.mu.Unlock()
		fresh := newCache(k)
		fresh.putLocked(key, taskDoc(t, "db", 0, "old"), 9)
		fresh.putLocked(k.task("db", 1), taskDoc(t, "db", 1, "old"), 9)
		c.replace(fresh, 9)
		if got := msg(c); got != "own" {
			t.Fatalf("message = %q, want own", got)
		}
		if _, _, _, ok := c.task("db", 1); ok {
			t.Fatal("a delete newer than the load was undone")
		}
	})
}

func TestKeysParse(t *testing.T) {
	k, _ := newKeys("fw")
	tests := []struct {
		key  string
		want parsedKey
	}{
		{"/stateful/fw/framework-id", parsedKey{kind: kindFrameworkID}},
		{"/stateful/fw/instances/db", parsedKey{kind: kindInstance, instance: "db"}},
		{"/stateful/fw/tasks/db/12", parsedKey{kind: kindTask, instance: "db", ordinal: 12}},
		{"/stateful/fw/leader/694d7a8b2c1e", parsedKey{}},
		{"/stateful/fw/tasks/db/012", parsedKey{}},
		{"/stateful/fw/tasks/db/-1", parsedKey{}},
		{"/stateful/fw/tasks/db", parsedKey{}},
		{"/stateful/fw/tasks/DB/1", parsedKey{}},
		{"/stateful/fw/instances/a/b", parsedKey{}},
		{"/stateful/fw2/instances/db", parsedKey{}},
	}
	for _, tc := range tests {
		if got := k.parse(tc.key); got != tc.want {
			t.Errorf("parse(%q) = %+v, want %+v", tc.key, got, tc.want)
		}
	}
}

// A Store whose watch starts from a revision etcd has compacted away (it
// was down or cut off meanwhile) reloads everything and then follows again.
func TestWatchReloadsAfterCompaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	leader, err := New(ctx, e.Client(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	if _, err := leader.Campaign(ctx); err != nil {
		t.Fatal(err)
	}

	// The stale store's observer hears of the reload's differences.
	var mu sync.Mutex
	var observed []string
	observe := func(c Change) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.NewInstance != nil:
			observed = append(observed, "instance "+c.NewInstance.Name)
		case c.NewTask != nil:
			observed = append(observed, "task "+c.NewTask.Name+" "+c.NewTask.Message)
		default:
			observed = append(observed, "a deletion")
		}
	}
	stale, err := newStore(e.Client(), "test", WithObserver(observe))
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	rev, err := stale.load(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"gone", "kept"} {
		inst := &stateful.Instance{Name: name, Type: stateful.TypeSingle, Masters: 1,
			Spec: stateful.Spec{CPU: 1, Mem: 64, Command: "sleep 1000", Network: stateful.NetworkHost}}
		if err := leader.CreateInstance(ctx, inst, inst.InitialTasks(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.DeleteInstance(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	if err := leader.SetFrameworkID(ctx, "fw-9"); err != nil {
		t.Fatal(err)
	}
	leader.cache.mu.RLock()
	compactAt := leader.cache.rev
	leader.cache.mu.RUnlock()
	resp, err := e.Client().Compact(ctx, compactAt)
	if err != nil {
		t.Fatal(resp, err)
	}

	stale.startWatch(rev)
	waitFor(t, "reload after compaction", func() bool {
		_, goneErr := stale.Instance("gone")
		_, keptErr := stale.Instance("kept")
		return goneErr != nil && keptErr == nil && stale.FrameworkID() == "fw-9" && len(stale.Tasks("kept")) == 1
	})
	// And it follows again after the reload.
	if _, err := leader.UpdateTask(ctx, "kept", 0, func(task *stateful.Task) error { task.Message = "after"; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "watch resumed after reload", func() bool {
		task, err := stale.Task("kept", 0)
		return err == nil && task.Message == "after"
	})
	mu.Lock()
	defer mu.Unlock()
	// "gone" came and went while the watch was behind: nothing to tell.
	if want := []string{"instance kept", "task kept-0 ", "task kept-0 after"}; !slices.Equal(observed, want) {
		t.Errorf("observed %q, want %q", observed, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
