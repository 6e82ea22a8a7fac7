package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/examples/mariadb/mariadbtest"
	"github.com/mesos-stateful/stateful/examples/mariadb/workload"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
)

// The e2e test uses the Redis example's test environment (a localmesos
// cluster and the framework in this process): nothing in it is
// Redis-specific but its name.

func TestMain(m *testing.M) {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(workload.New())
	}
	_ = flag.Set("logtostderr", "true")
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

func needMariaDB(t *testing.T) {
	t.Helper()
	if err := mariadbtest.Need(); err != nil {
		t.Skip(err)
	}
}

func mustSQL(t *testing.T, ctx context.Context, task *stateful.Task, stmt string) string {
	t.Helper()
	out, err := mariadbtest.SQL(ctx, task, stmt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitRows waits until every task of inst has want rows in t.kv.
func waitRows(t *testing.T, ctx context.Context, inst *stateful.Instance, want int) {
	t.Helper()
	for _, task := range inst.Tasks {
		err := redistest.Poll(ctx, fmt.Sprintf("%s to have %d rows", task.Name, want), func() (bool, string) {
			out, err := mariadbtest.SQL(ctx, task, "SELECT COUNT(*) FROM t.kv")
			return err == nil && out == strconv.Itoa(want), fmt.Sprint(out, err)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func insert(t *testing.T, ctx context.Context, master *stateful.Task, from, to int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("INSERT INTO t.kv VALUES ")
	for i := from; i < to; i++ {
		if i > from {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d,'v%d')", i, i)
	}
	mustSQL(t, ctx, master, b.String())
}

// TestMariaDB: a primary and two replicas seeded from it; a rolling update
// switches the primary over; a third replica is seeded from the new primary
// with every row; the primary's mariadbd is killed and every row committed
// and replicated before is on the promoted replica.
func TestMariaDB(t *testing.T) {
	needMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A long work dir, as an agent's may be: the servers' Unix sockets
	// must not depend on its length (at most 107 bytes).
	work := filepath.Join(t.TempDir(), strings.Repeat("w", 60))
	env, err := redistest.Start(ctx, redistest.Options{Runtime: "process", WorkDir: work, Workload: workload.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.Close(); err != nil {
			t.Errorf("framework: %v", err)
		}
	}()
	const name = "db1"
	start := time.Now()
	body := map[string]any{"name": name, "type": "MS", "slaves": 2, "spec": map[string]any{
		"health": map[string]any{"tcp": workload.PortName, "interval_s": 1, "timeout_s": 1, "grace_s": 60},
	}}
	if err := env.Create(ctx, body); err != nil {
		t.Fatal(err)
	}
	inst, err := env.WaitHealthy(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("POST → RUNNING (2 replicas seeded) in %v", time.Since(start).Round(time.Millisecond))
	master := redistest.Master(inst)
	mustSQL(t, ctx, master, "CREATE DATABASE t; CREATE TABLE t.kv (k INT PRIMARY KEY, v TEXT) ENGINE=InnoDB")
	insert(t, ctx, master, 0, 100)
	waitRows(t, ctx, inst, 100)

	// Rolling update: the replicas, then a switchover, then the old
	// primary as a replica; a client writes through the primary GET names
	// all along.
	mustSQL(t, ctx, master, "CREATE TABLE t.w (k INT PRIMARY KEY) ENGINE=InnoDB")
	w := mariadbtest.StartWriter(ctx, env, name)
	defer w.Stop()
	err = redistest.Poll(ctx, "the writer's first committed rows", func() (bool, string) {
		acked, _ := w.Result()
		return len(acked) > 5, ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client().Update(ctx, name, client.PatchRequest{Spec: json.RawMessage(`{"mem": 600}`)}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if inst, err = env.WaitUpdated(ctx, name); err != nil {
		t.Fatal(err)
	}
	rolled := time.Since(start)
	w.Stop()
	acked, gap := w.Result()
	got := mustSQL(t, ctx, redistest.Master(inst), "SELECT COUNT(*) FROM t.w")
	if n, _ := strconv.Atoi(got); n < len(acked) {
		t.Errorf("the primary has %s of the %d committed rows", got, len(acked))
	}
	t.Logf("rolling update in %v; client: %d rows committed, longest gap %v, none lost", rolled.Round(time.Millisecond), len(acked), gap.Round(time.Millisecond))
	next := redistest.Master(inst)
	if next == nil || next.Ordinal == master.Ordinal {
		t.Fatalf("the primary did not move during the rolling update: %s", redistest.Describe(inst))
	}
	insert(t, ctx, next, 100, 150)
	waitRows(t, ctx, inst, 150)

	// Scale up: the new replica is seeded from the primary.
	slaves := 3
	if _, err := env.Client().Update(ctx, name, client.PatchRequest{Slaves: &slaves}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if inst, err = env.WaitHealthy(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("scale-up with seeding in %v", time.Since(start).Round(time.Millisecond))
	insert(t, ctx, next, 150, 200)
	waitRows(t, ctx, inst, 200)

	// Kill the primary's server: every row (all replicated, checked above)
	// is on the promoted replica.
	master = redistest.Master(inst)
	if err := mariadbtest.KillServer(ctx, master); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	promoted, err := env.WaitNewMaster(ctx, name, master)
	if err != nil {
		t.Fatal(err)
	}
	err = redistest.Poll(ctx, "a write on the new primary", func() (bool, string) {
		_, err := mariadbtest.SQL(ctx, promoted, "INSERT INTO t.kv VALUES (200, 'after')")
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("primary lost → write accepted by %s after %v", promoted.Name, time.Since(killed).Round(time.Millisecond))
	if got := mustSQL(t, ctx, promoted, "SELECT COUNT(*) FROM t.kv WHERE k < 200"); got != "200" {
		t.Fatalf("the new primary has %s of the 200 replicated rows", got)
	}
	if inst, err = env.WaitHealthy(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("primary lost → RUNNING again after %v", time.Since(killed).Round(time.Millisecond))
	waitRows(t, ctx, inst, 201)
	if err := env.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
}
