// Command localmesos runs an embedded Mesos-compatible cluster: a master
// speaking the v1 scheduler HTTP API on --port and --agents agents speaking
// the v1 executor HTTP API, each on its own loopback address.
//
//	localmesos --port 5050 --agents 3 --resources 'cpus:4;mem:8192;disk:20480;ports:[31000-32000]' --work-dir ./localmesos-data
//
// For a cluster of several processes or hosts, run the master alone and
// each agent alone:
//
//	localmesos master --ip 10.0.0.1 --port 5050
//	localmesos agent --master 10.0.0.1:5050 --ip 10.0.0.2 --resources 'cpus:4;mem:8192;ports:[31000-32000]' --work-dir ./agent-data
//
// Ctrl-C (or SIGTERM) stops the master and agents and kills every executor
// and task they started; with --keep-tasks it leaves the executors and
// tasks of checkpointing frameworks running instead. Started again on the
// same --work-dir (after either, or after kill -9), the agents come back
// with the same IDs and recover the executors and tasks still running.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful/localmesos"
)

func main() {
	// glog logs to files by default; a command run by hand wants stderr.
	if f := flag.Lookup("logtostderr"); f != nil {
		_ = f.Value.Set("true")
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "master":
			// glog wants the command line parsed; the subcommand parses
			// its own flags, glog's included.
			_ = flag.CommandLine.Parse(nil)
			runMaster(os.Args[2:])
			return
		case "agent":
			_ = flag.CommandLine.Parse(nil)
			runAgent(os.Args[2:])
			return
		}
	}
	cfg := localmesos.NewConfig()
	flag.IntVar(&cfg.Port, "port", localmesos.DefaultPort, "master port (0 picks a free one)")
	flag.IntVar(&cfg.Agents, "agents", localmesos.DefaultAgents, "number of agents")
	flag.StringVar(&cfg.Resources, "resources", localmesos.DefaultResources, "resources of each agent, in Mesos' --resources syntax (the ports range is divided among agents)")
	flag.StringVar(&cfg.WorkDir, "work-dir", "./localmesos-data", "directory for sandboxes and agent state (a restart on the same directory recovers the agents)")
	flag.BoolVar(&cfg.KeepTasksOnClose, "keep-tasks", false, "on Ctrl-C or SIGTERM, leave the executors and tasks of checkpointing frameworks running for the next start on --work-dir to recover (default: stop every task)")
	credentials := flag.String("credentials", "", `require HTTP Basic authentication from frameworks and operators, with the principals and secrets of this file (Mesos' format: {"credentials": [{"principal": "p", "secret": "s"}]}, mode 0600)`)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "localmesos: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "localmesos: %v\n", err)
		os.Exit(2)
	}
	if *credentials != "" {
		creds, err := localmesos.LoadCredentials(*credentials)
		if err != nil {
			fmt.Fprintf(os.Stderr, "localmesos: --credentials: %v\n", err)
			os.Exit(2)
		}
		cfg.Credentials = creds
	}

	serve(func(ctx context.Context) (func(), error) {
		cluster, err := localmesos.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		printMaster(cluster.MasterURL())
		for _, a := range cluster.Agents() {
			fmt.Printf("localmesos: agent %s at %s (state http://%s/state, metrics http://%s/metrics/snapshot)\n", a.ID, a.Address, a.Address, a.Address)
		}
		return func() {
			if err := cluster.Close(); err != nil {
				glog.Errorf("localmesos: %v", err)
			}
		}, nil
	})
}
