package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful/localmesos"
)

// runMaster is `localmesos master`: a master alone, for agents started
// with `localmesos agent` in other processes or on other hosts.
func runMaster(args []string) {
	cfg := localmesos.NewMasterConfig()
	fs := flag.NewFlagSet("localmesos master", flag.ExitOnError)
	fs.StringVar(&cfg.Host, "ip", cfg.Host, "address to listen on (agents and schedulers reach the master there)")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "port (0 picks a free one)")
	fs.DurationVar(&cfg.AgentPingTimeout, "agent-ping-timeout", cfg.AgentPingTimeout, "Mesos' --agent_ping_timeout: how often agents are pinged and how long each answer may take")
	fs.IntVar(&cfg.MaxAgentPingTimeouts, "max-agent-ping-timeouts", cfg.MaxAgentPingTimeouts, "Mesos' --max_agent_ping_timeouts: missed pings in a row after which an agent is unreachable")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "interval of HEARTBEAT events to schedulers")
	parse(fs, args)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "localmesos master: %v\n", err)
		os.Exit(2)
	}
	serve(func(ctx context.Context) (func(), error) {
		m, err := localmesos.StartMaster(ctx, cfg)
		if err != nil {
			return nil, err
		}
		printMaster(m.MasterURL())
		return m.Close, nil
	})
}

// runAgent is `localmesos agent`: one agent of a master elsewhere.
func runAgent(args []string) {
	cfg := localmesos.NewAgentConfig("", "")
	fs := flag.NewFlagSet("localmesos agent", flag.ExitOnError)
	fs.StringVar(&cfg.Master, "master", "", "the master's host:port (required)")
	fs.StringVar(&cfg.IP, "ip", "", "address to listen on, reachable by the master and by this host's executors (required)")
	fs.IntVar(&cfg.Port, "port", 0, "port (0 picks a free one, kept across restarts on the same --work-dir)")
	fs.StringVar(&cfg.Hostname, "hostname", "", "hostname the agent reports (default: --ip)")
	fs.StringVar(&cfg.Resources, "resources", cfg.Resources, "resources in Mesos' --resources syntax")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "directory for sandboxes and the agent's checkpoint; a restart on it keeps the agent's ID and recovers its executors (required)")
	fs.BoolVar(&cfg.KeepTasksOnClose, "keep-tasks", false, "on Ctrl-C or SIGTERM, leave the executors and tasks of checkpointing frameworks running for the next start on --work-dir")
	fs.DurationVar(&cfg.AgentPingTimeout, "agent-ping-timeout", cfg.AgentPingTimeout, "as the master's: the agent registers again after --max-agent-ping-timeouts of these without a ping")
	fs.IntVar(&cfg.MaxAgentPingTimeouts, "max-agent-ping-timeouts", cfg.MaxAgentPingTimeouts, "as the master's")
	fs.DurationVar(&cfg.ExecutorShutdownGracePeriod, "executor-shutdown-grace-period", cfg.ExecutorShutdownGracePeriod, "time an executor has to stop its tasks after SHUTDOWN")
	parse(fs, args)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "localmesos agent: %v\n", err)
		os.Exit(2)
	}
	serve(func(ctx context.Context) (func(), error) {
		a, err := localmesos.StartAgent(ctx, cfg)
		if err != nil {
			return nil, err
		}
		fmt.Printf("localmesos: agent %s at %s (state http://%s/state), master %s\n", a.ID(), a.Address(), a.Address(), cfg.Master)
		return a.Close, nil
	})
}

// parse parses a subcommand's flags, glog's (-v, -logtostderr, ...)
// included.
func parse(fs *flag.FlagSet, args []string) {
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		os.Exit(2)
	}
}

// serve runs what start starts until Ctrl-C or SIGTERM, then closes it.
// A failed start exits with status 1.
func serve(start func(ctx context.Context) (closer func(), err error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	closer, err := start(ctx)
	if err != nil {
		glog.Errorf("%v", err)
		glog.Flush()
		os.Exit(1)
	}
	<-ctx.Done()
	glog.Infof("localmesos: stopping")
	closer()
	glog.Flush()
}

// printMaster tells where the master serves.
func printMaster(u string) {
	fmt.Printf("localmesos: master at %s (scheduler API %s/api/v1/scheduler, state %s/master/state, metrics %s/metrics/snapshot)\n", u, u, u, u)
}
