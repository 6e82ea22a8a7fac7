// Command partition runs seeded fault schedules against an MS 1+2 Redis
// instance of the Redis example, Jepsen-style, on a test bed of network
// namespaces on this machine (internal/testbed): a localmesos master, three
// agents, the framework and the clients each on a "host" of their own.
// While clients write unique keys (acknowledged = WAIT reached a replica),
// each schedule injects one fault (a partition of the master's host, both
// ways, half or one way, its link down, its agent paused or killed, its
// redis-server killed, a slave's host partitioned, the scheduler killed or
// partitioned), holds it, heals it, waits for the instance to settle, reads
// every key back, and checks the history (internal/history).
//
//	go run ./bench/partition [-schedules 50] [-seed 1]
//
// It needs root, ip(8), iptables(8), redis-server and redis-cli. It prints,
// per fault kind, the runs, writes, acknowledged writes lost, split-brain
// windows and the time to a writable master after the fault, then a last
// line:
//
//	partition: <N> schedules, <L> acknowledged writes lost, <W> split-brain windows, writable master after <M> s median, <X> s max
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/internal/testbed"
)

func main() {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(newWorkload(""))
	}
	if len(os.Args) > 1 && os.Args[1] == roleArg {
		runRole(os.Args[2:])
	}
	o := defaultOptions()
	flag.IntVar(&o.schedules, "schedules", 50, "fault schedules to run")
	flag.Int64Var(&o.seed, "seed", 1, "seed of the schedules: the order of fault kinds (each run of 10 has every kind once) and each fault's hold and target")
	flag.DurationVar(&o.ping, "agent-ping-timeout", o.ping, "localmesos agent ping timeout")
	flag.IntVar(&o.maxPings, "max-agent-ping-timeouts", o.maxPings, "missed pings after which an agent is unreachable")
	flag.IntVar(&o.maxLag, "min-replicas-max-lag", o.maxLag, "Redis min-replicas-max-lag of the instance, seconds")
	flag.Parse()
	if err := checkNeeds(); err != "" {
		fmt.Fprintln(os.Stderr, "partition: needs", err)
		os.Exit(2)
	}
	if o.schedules < 1 {
		fmt.Fprintln(os.Stderr, "partition: -schedules must be at least 1")
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "partition-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "partition:", err)
		os.Exit(1)
	}
	o.work = work
	if o.self, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "partition:", err)
		os.Exit(1)
	}
	o.logf = func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	// Ctrl-C ends the run through its cleanup: the bed's namespaces and
	// processes are removed.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sig, time.Duration(o.schedules)*4*time.Minute+5*time.Minute)
	defer cancel()
	ocs, err := run(ctx, o)
	fmt.Println()
	summarize(os.Stdout, o, ocs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "partition: %v\n(logs kept in %s)\n", err, work)
		os.Exit(1)
	}
	os.RemoveAll(work)
}

// defaultOptions: agents unreachable after 3 missed pings of 1 s, the
// instance fenced with min-replicas-max-lag 1, three clients.
func defaultOptions() options {
	return options{ping: time.Second, maxPings: 3, maxLag: 1, clients: 3, out: os.Stdout}
}

// checkNeeds names what is missing, or "".
func checkNeeds() string {
	if m := testbed.Missing(); m != "" {
		return m
	}
	for _, p := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(p); err != nil {
			return p + " (apt-get install redis-server redis-tools)"
		}
	}
	return ""
}
