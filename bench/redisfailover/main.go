// Command redisfailover measures the Redis example on a local cluster: how
// long a new master/slave instance takes to come up, and how long a
// failover takes from the moment the master's process is killed until the
// new master accepts a write (or, with -lose host, from the moment its
// agent is removed). Beside them it prints Redis' own figures on a
// bare local pair, the floor any failover is built on: a REPLICAOF NO ONE
// round trip, and kill-to-write when the failure is acted on at once. Each
// run also changes the instance's spec while a client writes through the
// master GET names (SET + WAIT 1) and prints how long the rolling update
// took, the client's longest gap between acknowledged writes, and how many
// acknowledged writes the master lacks afterwards.
//
//	go run ./bench/redisfailover [-runs 5] [-slaves 2] [-keys 1000] [-runtime process|docker] [-lose process|host]
//
// It starts its own localmesos cluster (three agents) and the framework in
// this process; the framework runs this very binary as its executor. It
// needs redis-server and redis-cli (Debian packages redis-server and
// redis-tools) and, for -runtime docker, a Docker engine. Figures are
// printed, not asserted; they depend on the machine and its load.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/examples/redis/redisimage"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
	"github.com/mesos-stateful/stateful/examples/redis/workload"
	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
)

// benchImage is the image -runtime docker builds and runs.
const benchImage = "stateful-test/redis-example:latest"

// newWorkload is the Redis example's workload running command (the
// default if empty); requests may not set the command themselves. The
// benchmark's image is allowed.
func newWorkload(command string) *workload.Redis {
	w, err := workload.New(workload.Options{Command: command, AllowedImages: []string{workload.DefaultImage, benchImage}})
	if err != nil {
		panic(err) // valid Options
	}
	return w
}

func main() {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(newWorkload(""))
	}
	runs := flag.Int("runs", 5, "instances created and failed over")
	slaves := flag.Int("slaves", 2, "slaves per instance")
	keys := flag.Int("keys", 1000, "keys written (and acknowledged by every slave) before the master is killed")
	runtime := flag.String("runtime", "process", "framework runtime: process or docker")
	command := flag.String("command", workload.DefaultCommand, "the instances' command line (e.g. add --repl-diskless-sync-delay 0)")
	interval := flag.Float64("health-interval", 5, "health check interval of the instances, seconds")
	lose := flag.String("lose", "process", "how the master is lost: process (SIGKILL its server) or host (remove its agent; a fresh cluster per run)")
	// The framework's logs go with the cluster's work into a directory of
	// their own, kept when a run fails.
	work, err := os.MkdirTemp("", "redisfailover-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisfailover:", err)
		os.Exit(1)
	}
	_ = flag.Set("log_dir", work)
	flag.Parse()
	if *runs < 1 || *slaves < 1 || *keys < 0 || *interval <= 0 || (*runtime != "process" && *runtime != "docker") || (*lose != "process" && *lose != "host") {
		fmt.Fprintln(os.Stderr, "redisfailover: -runs and -slaves must be at least 1, -keys and -health-interval not negative, -runtime process or docker, -lose process or host")
		os.Exit(2)
	}
	if err := run(work, *runs, *slaves, *keys, *runtime, *command, *interval, *lose); err != nil {
		glog.Flush()
		fmt.Fprintf(os.Stderr, "redisfailover: %v\n(logs and work files kept in %s)\n", err, work)
		os.Exit(1)
	}
	os.RemoveAll(work)
}

// sample is one run's figures.
type sample struct {
	healthy, synced                time.Duration // from POST
	shown, written, healed, resync time.Duration // from the loss
	// A rolling spec change under a client writing through the master
	// GET names: how long it took, the longest time between two
	// acknowledged writes, and how many acknowledged writes were lost.
	rolled, rollGap     time.Duration
	rollLost, rollAcked int
}

func run(work string, runs, slaves, keys int, runtime, command string, interval float64, lose string) error {
	for _, p := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("needs %s (apt-get install redis-server redis-tools): %w", p, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*3*time.Minute)
	defer cancel()

	var docker *dockerlib.Client
	spec := map[string]any{
		"health": map[string]any{"tcp": workload.PortName, "interval_s": interval, "timeout_s": min(interval, 3)},
	}
	if runtime == "docker" {
		var err error
		if docker, err = dockerlib.New(ctx, dockerlib.Options{}); err != nil {
			return err
		}
		defer docker.Close()
		if err := docker.Available(ctx); err != nil {
			return err
		}
		if err := redisimage.Build(ctx, docker, benchImage); err != nil {
			return err
		}
		spec["image"] = benchImage
	}

	floor, err := redisFloor(ctx, work, runs)
	if err != nil {
		return fmt.Errorf("bare redis pair: %w", err)
	}

	// A lost host is gone for good: each run then gets a fresh cluster.
	var env *redistest.Env
	cluster := func(i int) error {
		if env != nil {
			if err := env.Close(); err != nil {
				return err
			}
		}
		var err error
		env, err = redistest.Start(ctx, redistest.Options{Runtime: runtime, WorkDir: filepath.Join(work, fmt.Sprintf("cluster%d", i)), Workload: newWorkload(command)})
		return err
	}
	if err := cluster(0); err != nil {
		return err
	}
	defer func() {
		if env != nil {
			env.Close()
		}
	}()

	fmt.Printf("redisfailover: %d runs, MS instances of 1 master + %d slaves, %d keys, runtime %s, command %q, health every %gs, master lost by its %s; localmesos with 3 agents, agent ping timeout 2s\n\n",
		runs, slaves, keys, runtime, command, interval, lose)
	var samples []sample
	for i := range runs {
		if lose == "host" && i > 0 {
			if err := cluster(i); err != nil {
				return err
			}
		}
		s, err := oneRun(ctx, env, docker, fmt.Sprintf("bench%d", i), slaves, keys, spec, lose)
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
		med, lo, hi := stats(d)
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t\n", name, med, lo, hi)
	}
	row("POST → every task RUNNING and healthy", func(s sample) time.Duration { return s.healthy })
	row("POST → every slave synced (master_link_status:up)", func(s sample) time.Duration { return s.synced })
	row("master lost → GET names the new master", func(s sample) time.Duration { return s.shown })
	row("master lost → first write accepted by the new master", func(s sample) time.Duration { return s.written })
	row("master lost → instance RUNNING again", func(s sample) time.Duration { return s.healed })
	row("master lost → replaced slave synced from the new master", func(s sample) time.Duration { return s.resync })
	row("rolling update (PATCH mem) → every task updated, RUNNING", func(s sample) time.Duration { return s.rolled })
	row("rolling update: longest gap between acknowledged writes", func(s sample) time.Duration { return s.rollGap })
	for _, f := range floor {
		med, lo, hi := stats(f.d)
		fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t\n", f.name, med, lo, hi)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lost, acked := 0, 0
	for _, s := range samples {
		lost, acked = lost+s.rollLost, acked+s.rollAcked
	}
	fmt.Printf("\nrolling updates: %d of %d writes acknowledged by WAIT 1 lost (a client writing through the master GET names, SET + WAIT 1)\n", lost, acked)
	return nil
}

func stats(d []time.Duration) (median, lo, hi time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return r(s[len(s)/2]), r(s[0]), r(s[len(s)-1])
}

// oneRun creates an instance, kills its master and destroys it.
func oneRun(ctx context.Context, env *redistest.Env, docker *dockerlib.Client, name string, slaves, keys int, spec map[string]any, lose string) (sample, error) {
	var s sample
	posted := time.Now()
	if err := env.Create(ctx, map[string]any{"name": name, "type": "MS", "slaves": slaves, "spec": spec}); err != nil {
		return s, err
	}
	inst, err := env.WaitHealthy(ctx, name)
	if err != nil {
		return s, err
	}
	s.healthy = time.Since(posted)
	master := redistest.Master(inst)
	if master == nil {
		return s, fmt.Errorf("no master: %s", redistest.Describe(inst))
	}
	if err := waitSynced(ctx, inst, master); err != nil {
		return s, err
	}
	s.synced = time.Since(posted)

	if err := writeKeys(ctx, redistest.Server(inst, master), keys, slaves); err != nil {
		return s, err
	}

	killed := time.Now()
	if lose == "host" {
		err = env.Cluster.RemoveAgent(master.AgentID)
	} else {
		err = kill(ctx, docker, inst, master)
	}
	if err != nil {
		return s, err
	}
	next, err := env.WaitNewMaster(ctx, name, master)
	if err != nil {
		return s, err
	}
	s.shown = time.Since(killed)
	if err := firstWrite(ctx, redistest.Server(inst, next)); err != nil {
		return s, err
	}
	s.written = time.Since(killed)
	if n, err := resp.Do(ctx, redistest.Server(inst, next), "DBSIZE"); err != nil || n.(int64) < int64(keys) {
		return s, fmt.Errorf("the new master has %v keys of %d (%v)", n, keys, err)
	}
	inst, err = env.WaitHealthy(ctx, name)
	if err != nil {
		return s, err
	}
	s.healed = time.Since(killed)
	if err := waitSynced(ctx, inst, next); err != nil {
		return s, err
	}
	s.resync = time.Since(killed)

	if err := rollingUpdate(ctx, env, name, &s); err != nil {
		return s, err
	}

	if err := env.Delete(ctx, name); err != nil {
		return s, err
	}
	err = redistest.Poll(ctx, name+" gone", func() (bool, string) {
		_, code, err := env.Get(ctx, name)
		return code == 404, fmt.Sprint(code, err)
	})
	return s, err
}

// writeKeys writes n keys on addr and waits until replicas slaves have
// them all (WAIT covers the writes of its own connection).
func writeKeys(ctx context.Context, srv resp.Server, n, replicas int) error {
	c, err := resp.Dial(ctx, srv)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range n {
		if _, err := c.Do(ctx, "SET", "key:"+strconv.Itoa(i), "value"); err != nil {
			return err
		}
	}
	if got, err := c.Do(ctx, "WAIT", strconv.Itoa(replicas), "10000"); err != nil || got != int64(replicas) {
		return fmt.Errorf("WAIT %d: %v, %v", replicas, got, err)
	}
	return nil
}

// waitSynced waits until every slave of inst replicates master with its
// link up.
func waitSynced(ctx context.Context, inst *stateful.Instance, master *stateful.Task) error {
	for _, t := range inst.Tasks {
		if t.Role != stateful.RoleSlave {
			continue
		}
		srv := redistest.Server(inst, t)
		err := redistest.Poll(ctx, t.Name+" synced", func() (bool, string) {
			reply, err := resp.Do(ctx, srv, "INFO", "replication")
			if err != nil {
				return false, err.Error()
			}
			s, _ := reply.(string)
			inf := workload.ParseInfo(s)
			return inf.LinkUp() && inf["master_port"] == strconv.Itoa(master.Ports[workload.PortName]) && inf["master_host"] == master.Host, s
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// firstWrite retries a SET until the server accepts it.
func firstWrite(ctx context.Context, srv resp.Server) error {
	return redistest.Poll(ctx, "a write accepted at "+srv.Addr, func() (bool, string) {
		reply, err := resp.Do(ctx, srv, "SET", "after-failover", "1")
		return err == nil && reply == "OK", fmt.Sprint(reply, err)
	})
}

// kill SIGKILLs the master's redis-server: its container, or its process
// (checked to be the server on the master's address, the title Redis gives
// itself).
func kill(ctx context.Context, docker *dockerlib.Client, inst *stateful.Instance, master *stateful.Task) error {
	if docker != nil {
		list, err := docker.List(ctx, map[string]string{dockerlib.LabelTaskID: master.TaskID})
		if err != nil || len(list) != 1 {
			return fmt.Errorf("the master's container: %v, %v", list, err)
		}
		return docker.Kill(ctx, list[0].ID, "SIGKILL")
	}
	return killServer(ctx, redistest.Server(inst, master))
}

func killServer(ctx context.Context, srv resp.Server) error {
	addr := srv.Addr
	reply, err := resp.Do(ctx, srv, "INFO", "server")
	if err != nil {
		return err
	}
	s, _ := reply.(string)
	pid, err := strconv.Atoi(workload.ParseInfo(s)["process_id"])
	if err != nil {
		return fmt.Errorf("no process_id from %s", addr)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(addr)) {
		return fmt.Errorf("pid %d is not the server at %s (%q, %v)", pid, addr, cmdline, err)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// figure is a named set of measurements.
type figure struct {
	name string
	d    []time.Duration
}

// redisFloor measures a bare local pair, runs times each: the round trip of
// REPLICAOF NO ONE on a synced replica, and kill-to-write when the replica
// is promoted the moment its master dies.
func redisFloor(ctx context.Context, work string, runs int) ([]figure, error) {
	promote := figure{name: "bare Redis pair: REPLICAOF NO ONE round trip"}
	failover := figure{name: "bare Redis pair: master killed → promoted replica takes a write"}
	for range runs {
		dir, err := os.MkdirTemp(work, "pair-")
		if err != nil {
			return nil, err
		}
		p, r, err := startPair(ctx, dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		err = func() error {
			defer p.stop()
			defer r.stop()
			start := time.Now()
			if err := killServer(ctx, resp.Server{Addr: p.addr}); err != nil {
				return err
			}
			t0 := time.Now()
			if reply, err := resp.Do(ctx, resp.Server{Addr: r.addr}, "REPLICAOF", "NO", "ONE"); err != nil || reply != "OK" {
				return fmt.Errorf("REPLICAOF NO ONE: %v, %v", reply, err)
			}
			promote.d = append(promote.d, time.Since(t0))
			if err := firstWrite(ctx, resp.Server{Addr: r.addr}); err != nil {
				return err
			}
			failover.d = append(failover.d, time.Since(start))
			return nil
		}()
		os.RemoveAll(dir)
		if err != nil {
			return nil, err
		}
	}
	return []figure{promote, failover}, nil
}

// server is a redis-server process of the bare pair.
type server struct {
	cmd  *exec.Cmd
	addr string
}

func (s *server) stop() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// startPair starts a master and a replica on 127.0.0.1 with the example's
// persistence, and returns once the replica has synced.
func startPair(ctx context.Context, dir string) (master, replica *server, err error) {
	master, err = startServer(ctx, dir+"/m")
	if err != nil {
		return nil, nil, err
	}
	host, port, _ := net.SplitHostPort(master.addr)
	replica, err = startServer(ctx, dir+"/r", "--replicaof", host, port, "--repl-diskless-sync-delay", "0")
	if err != nil {
		master.stop()
		return nil, nil, err
	}
	err = redistest.Poll(ctx, "the replica to sync", func() (bool, string) {
		reply, err := resp.Do(ctx, resp.Server{Addr: replica.addr}, "INFO", "replication")
		s, _ := reply.(string)
		return err == nil && workload.ParseInfo(s).LinkUp(), fmt.Sprint(err)
	})
	if err != nil {
		master.stop()
		replica.stop()
		return nil, nil, err
	}
	return master, replica, nil
}

func startServer(ctx context.Context, dir string, args ...string) (*server, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--dir", dir, "--save", ""}, args...)...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	err = redistest.Poll(ctx, "redis-server at "+s.addr, func() (bool, string) {
		reply, err := resp.Do(ctx, resp.Server{Addr: s.addr}, "PING")
		return err == nil && reply == "PONG", fmt.Sprint(err)
	})
	if err != nil {
		s.stop()
		return nil, errors.Join(err, errors.New("redis-server did not answer"))
	}
	return s, nil
}

// rollingUpdate changes the instance's spec while a client writes through
// the master GET names, and records how long the rollout took, the client's
// longest gap between acknowledged writes and the acknowledged writes the
// master lacks afterwards.
func rollingUpdate(ctx context.Context, env *redistest.Env, name string, s *sample) error {
	inst, _, err := env.Get(ctx, name)
	if err != nil || inst == nil {
		return fmt.Errorf("get %s: %v", name, err)
	}
	w := env.StartWriter(ctx, name)
	defer w.Stop()
	err = redistest.Poll(ctx, "the writer's first acknowledged write", func() (bool, string) {
		acked, _, _ := w.Result()
		return len(acked) > 0, ""
	})
	if err != nil {
		return err
	}
	spec, _ := json.Marshal(map[string]any{"mem": inst.Spec.Mem + 16})
	start := time.Now()
	if _, err := env.Client().Update(ctx, name, client.PatchRequest{Spec: spec}); err != nil {
		return err
	}
	if inst, err = env.WaitUpdated(ctx, name); err != nil {
		return err
	}
	s.rolled = time.Since(start)
	w.Stop()
	acked, gap, _ := w.Result()
	lost, err := w.Lost(ctx, redistest.Server(inst, redistest.Master(inst)))
	if err != nil {
		return err
	}
	s.rollGap, s.rollLost, s.rollAcked = gap, len(lost), len(acked)
	return nil
}
