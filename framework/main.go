// Package framework is the composition root of a stateful framework: its
// configuration (flags, config file, defaults), the wiring of every part of
// the toolkit, and the process's lifecycle. A framework's main calls Main
// with its Workload:
//
//	func main() { framework.Main(&Redis{}) }
//
// The same binary is its own executor: agents start it with the "executor"
// argument (and MESOS_EXECUTOR_ID set), and Main then runs the executor
// instead of the scheduler.
package framework

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor"
)

// Option changes the defaults Main starts from, before the flags and the
// config file are applied: a framework may set its own name, say.
type Option func(*Config)

// Main is what a framework's main calls. Started as an executor, it runs
// the executor; otherwise it reads the flags (and the --config file) over
// NewConfig's defaults changed by opts, runs the scheduler until SIGINT or
// SIGTERM, and exits: 0 after a clean stop, 1 when the scheduler failed
// (Mesos removed the framework, a part failed; a lost leadership is not a
// failure: it campaigns again), 2 for bad flags. It does not return.
func Main(w stateful.Workload, opts ...Option) {
	if executor.IsExecutorInvocation(os.Args) {
		os.Exit(executorMain(w))
	}
	fs := flag.CommandLine
	cfg := NewConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	cfg.RegisterFlags(fs)
	configFile := fs.String("config", "", "JSON file of settings named like the flags; flags given on the command line win")
	// Logs go to stderr unless asked otherwise (-logtostderr=false -log_dir=...).
	_ = fs.Set("logtostderr", "true")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments %q (the only argument the binary takes is %q, given by Mesos agents)\n", fs.Args(), ExecutorArg)
		os.Exit(2)
	}
	if *configFile != "" {
		if err := LoadFile(fs, *configFile); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go exitIfStopHangs(ctx, stop, 2*cfg.ShutdownGrace+hardStopMargin)
	err := Run(ctx, cfg, w)
	stop()
	if err != nil {
		glog.Errorf("%v", err)
		glog.Flush()
		os.Exit(1)
	}
	glog.Flush()
	os.Exit(0)
}

// hardStopMargin is added to twice the shutdown grace (the parts' stop,
// then the closing of the embedded cluster and etcd) to bound how long the
// process may take to exit after SIGTERM or SIGINT.
const hardStopMargin = 15 * time.Second

// exitIfStopHangs makes SIGTERM and SIGINT end the process in bounded time
// even if something in Run ignores its context: once ctx ends (the first
// signal), a second signal kills the process at once (the default action is
// restored), and if Run has not returned within bound the goroutines'
// stacks are logged and the process exits with status 1. It returns only
// by exiting; Main exits before it otherwise.
func exitIfStopHangs(ctx context.Context, restoreSignals context.CancelFunc, bound time.Duration) {
	<-ctx.Done()
	restoreSignals()
	glog.Infof("framework: stopping (a second SIGTERM or SIGINT ends the process at once; it exits anyway after %v)", bound)
	time.Sleep(bound)
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	glog.Errorf("framework: not stopped %v after the signal; exiting. Goroutines:\n%s", bound, buf)
	glog.Flush()
	os.Exit(1)
}

// executorMain runs the executor for an agent and returns the exit code.
// It takes glog's flags and --stats-interval after the executor argument.
func executorMain(w stateful.Workload) int {
	// The agent keeps our stderr in the sandbox, where Mesos users look
	// for executor logs.
	_ = flag.Set("logtostderr", "true")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == ExecutorArg {
		args = args[1:]
	}
	fs := flag.NewFlagSet(ExecutorArg, flag.ContinueOnError)
	flag.CommandLine.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	statsInterval := fs.Duration("stats-interval", 0, "how often each task's stats are reported (0: the executor's default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runExecutor(ctx, w, *statsInterval)
	glog.Flush()
	if err != nil && !errors.Is(err, context.Canceled) {
		return 1
	}
	return 0
}
