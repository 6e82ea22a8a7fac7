package main

import (
	"flag"
	"os"
	"testing"

	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
)

// TestMain hands the framework its executor starts (the end-to-end test's
// framework runs its executor from this test binary) and keeps glog on
// stderr rather than in files in the temporary directory.
func TestMain(m *testing.M) {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(newRedisWorkload())
	}
	flag.Parse()
	if err := flag.Set("logtostderr", "true"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
