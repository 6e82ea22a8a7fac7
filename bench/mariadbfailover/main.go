// Command mariadbfailover measures the MariaDB example on a local cluster,
// as bench/redisfailover does for Redis: how long a primary with replicas
// takes to come up (the replicas seeded from the primary), how long from
// killing the primary's mariadbd to a write accepted by the promoted replica
// and to the instance RUNNING again, and, under a client writing through the
// primary GET names (one INSERT per row, with the mariadb client), a rolling
// update's duration, the longest gap between committed rows and how many
// committed rows the primary lacks afterwards.
//
//	go run ./bench/mariadbfailover [-runs 3] [-slaves 2]
//
// It needs Debian's mariadb-server and mariadb-client. Figures are printed,
// not asserted; they depend on the machine and its load.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/examples/mariadb/mariadbtest"
	"github.com/mesos-stateful/stateful/examples/mariadb/workload"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
)

func main() {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(workload.New())
	}
	runs := flag.Int("runs", 3, "instances created, updated and failed over")
	slaves := flag.Int("slaves", 2, "replicas per instance")
	work, err := os.MkdirTemp("", "mariadbfailover-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mariadbfailover:", err)
		os.Exit(1)
	}
	_ = flag.Set("log_dir", work)
	flag.Parse()
	if *runs < 1 || *slaves < 1 {
		fmt.Fprintln(os.Stderr, "mariadbfailover: -runs and -slaves must be at least 1")
		os.Exit(2)
	}
	if err := run(work, *runs, *slaves); err != nil {
		fmt.Fprintf(os.Stderr, "mariadbfailover: %v\n(logs and work files kept in %s)\n", err, work)
		os.Exit(1)
	}
	os.RemoveAll(work)
}

type sample struct {
	healthy, written, healed, rolled, gap time.Duration
	lost, committed                       int
}

func run(work string, runs, slaves int) error {
	if err := mariadbtest.Need(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*3*time.Minute)
	defer cancel()
	env, err := redistest.Start(ctx, redistest.Options{Runtime: "process", WorkDir: filepath.Join(work, "cluster"), Workload: workload.New()})
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Printf("mariadbfailover: %d runs, MS instances of 1 primary + %d replicas, runtime process, health every 1s; localmesos with 3 agents\n\n", runs, slaves)
	var samples []sample
	for i := range runs {
		s, err := oneRun(ctx, env, fmt.Sprintf("bench%d", i), slaves)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		samples = append(samples, s)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmedian\tmin\tmax\t")
	row := func(name string, pick func(sample) time.Duration) {
		var d []time.Duration
		for _, s := range samples {
			d = append(d, pick(s))
		}
		slices.Sort(d)
		r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t\n", name, r(d[len(d)/2]), r(d[0]), r(d[len(d)-1]))
	}
	row("POST → every task RUNNING and healthy (replicas seeded)", func(s sample) time.Duration { return s.healthy })
	row("rolling update (PATCH mem) → every task updated, RUNNING", func(s sample) time.Duration { return s.rolled })
	row("rolling update: longest gap between committed rows", func(s sample) time.Duration { return s.gap })
	row("primary lost → first write accepted by the new primary", func(s sample) time.Duration { return s.written })
	row("primary lost → instance RUNNING again", func(s sample) time.Duration { return s.healed })
	if err := tw.Flush(); err != nil {
		return err
	}
	lost, committed := 0, 0
	for _, s := range samples {
		lost, committed = lost+s.lost, committed+s.committed
	}
	fmt.Printf("\nrolling updates: %d of %d committed rows lost (a client inserting through the primary GET names)\n", lost, committed)
	return nil
}

func oneRun(ctx context.Context, env *redistest.Env, name string, slaves int) (sample, error) {
	var s sample
	posted := time.Now()
	body := map[string]any{"name": name, "type": "MS", "slaves": slaves, "spec": map[string]any{
		"health": map[string]any{"tcp": workload.PortName, "interval_s": 1, "timeout_s": 1, "grace_s": 60},
	}}
	if err := env.Create(ctx, body); err != nil {
		return s, err
	}
	inst, err := env.WaitHealthy(ctx, name)
	if err != nil {
		return s, err
	}
	s.healthy = time.Since(posted)
	if _, err := mariadbtest.SQL(ctx, redistest.Master(inst), "CREATE DATABASE t; CREATE TABLE t.w (k INT PRIMARY KEY) ENGINE=InnoDB"); err != nil {
		return s, err
	}

	// The rolling update under a writing client.
	w := mariadbtest.StartWriter(ctx, env, name)
	spec, _ := json.Marshal(map[string]any{"mem": inst.Spec.Mem + 16})
	start := time.Now()
	if _, err := env.Client().Update(ctx, name, client.PatchRequest{Spec: spec}); err != nil {
		w.Stop()
		return s, err
	}
	inst, err = env.WaitUpdated(ctx, name)
	w.Stop()
	if err != nil {
		return s, err
	}
	s.rolled = time.Since(start)
	committed, gap := w.Result()
	s.gap, s.committed = gap, len(committed)
	master := redistest.Master(inst)
	for _, k := range committed {
		if out, err := mariadbtest.SQL(ctx, master, fmt.Sprintf("SELECT COUNT(*) FROM t.w WHERE k=%d", k)); err != nil || out != "1" {
			s.lost++
		}
	}

	// The primary lost.
	if err := mariadbtest.KillServer(ctx, master); err != nil {
		return s, err
	}
	killed := time.Now()
	err = redistest.Poll(ctx, "a write on a new primary", func() (bool, string) {
		got, _, err := env.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint(err)
		}
		next := redistest.Master(got)
		if next == nil || next.Ordinal == master.Ordinal || next.State != stateful.TaskRunning {
			return false, redistest.Describe(got)
		}
		_, err = mariadbtest.SQL(ctx, next, "INSERT INTO t.w VALUES (-1)")
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		return s, err
	}
	s.written = time.Since(killed)
	if _, err := env.WaitHealthy(ctx, name); err != nil {
		return s, err
	}
	s.healed = time.Since(killed)
	if err := env.Delete(ctx, name); err != nil {
		return s, err
	}
	return s, redistest.Poll(ctx, name+" gone", func() (bool, string) {
		_, code, err := env.Get(ctx, name)
		return code == 404, fmt.Sprint(code, err)
	})
}
