package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/examples/redis/workload"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/localmesos"
)

// roleArg starts a process of the bed: this binary run again as a Mesos
// master, a Mesos agent or the framework, inside a node's namespace.
const roleArg = "partition-role"

// newWorkload is the Redis example whose instances run command (the
// default's when empty).
func newWorkload(command string) *workload.Redis {
	w, err := workload.New(workload.Options{Command: command})
	if err != nil {
		panic(err) // valid Options
	}
	return w
}

// fencedCommand is the instances' command line: Redis' own fence (see
// examples/redis/workload/fence.go) with min-replicas-max-lag maxLag.
func fencedCommand(maxLag int) string {
	return fmt.Sprintf("redis-server --min-replicas-to-write 1 --min-replicas-max-lag %d", maxLag)
}

// runRole runs os.Args[2:] as one of the bed's processes and exits.
func runRole(args []string) {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "partition-role: which role?")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(args[0], flag.ExitOnError)
	ip := fs.String("ip", "", "address to listen on")
	master := fs.String("master", "", "the Mesos master (host:port, or a URL for the framework)")
	workDir := fs.String("work-dir", "", "work or data directory")
	httpAddr := fs.String("http", "", "REST API address (framework)")
	ping := fs.Duration("ping", time.Second, "agent ping timeout")
	maxPings := fs.Int("max-pings", 3, "max agent ping timeouts")
	maxLag := fs.Int("max-lag", 1, "min-replicas-max-lag of the instances (framework)")
	_ = fs.Parse(args[1:])
	// Each process's log is its node's log file (the bench's -v applies).
	_ = flag.CommandLine.Set("logtostderr", "true")
	_ = flag.CommandLine.Parse(nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "mesos-master":
		cfg := localmesos.NewMasterConfig()
		cfg.Host, cfg.Port = *ip, 5050
		cfg.AgentPingTimeout, cfg.MaxAgentPingTimeouts = *ping, *maxPings
		cfg.AllocationInterval = 100 * time.Millisecond
		cfg.HeartbeatInterval = time.Second
		cfg.StatusUpdateRetryInterval = time.Second
		var m *localmesos.MasterServer
		if m, err = localmesos.StartMaster(ctx, cfg); err == nil {
			<-m.Done()
		}
	case "mesos-agent":
		cfg := localmesos.NewAgentConfig(*master, *ip)
		cfg.Port = 5051
		cfg.Resources = "cpus:4;mem:4096;disk:8192;ports:[31000-31899]"
		cfg.WorkDir = *workDir
		cfg.KeepTasksOnClose = true
		cfg.AgentPingTimeout, cfg.MaxAgentPingTimeouts = *ping, *maxPings
		cfg.ExecutorShutdownGracePeriod = time.Second
		cfg.StatusUpdateRetryInterval = time.Second
		var a *localmesos.AgentServer
		if a, err = localmesos.StartAgent(ctx, cfg); err == nil {
			<-a.Done()
		}
	case "framework":
		cfg := redistest.FastConfig(*master, *workDir, *httpAddr, "process")
		// The API listens on the bed's private address, reached only from
		// the bed's own namespaces.
		cfg.InsecureNoAuth = true
		err = framework.Run(ctx, cfg, newWorkload(fencedCommand(*maxLag)))
	default:
		err = fmt.Errorf("unknown role %q", args[0])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "partition-role %s: %v\n", args[0], err)
		os.Exit(1)
	}
	os.Exit(0)
}
