// Command stateful-executor is the stateful toolkit's Mesos executor on its
// own, for tests and for frameworks that ship the executor separately. A
// framework binary built with the toolkit embeds the same executor and
// needs no separate one.
package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful/executor"
)

func main() {
	runtime := flag.String("runtime", "auto", "runtime for tasks that do not choose one: auto, docker or process")
	statsInterval := flag.Duration("stats-interval", executor.DefaultStatsInterval, "how often each task's stats are sent to the scheduler (negative: never)")
	// The agent sends our stderr to the sandbox's stderr file, where Mesos
	// users look for executor logs.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := executor.Run(ctx, executor.Options{Runtime: *runtime, StatsInterval: *statsInterval})
	glog.Flush()
	if err != nil && !errors.Is(err, context.Canceled) {
		os.Exit(1)
	}
}
