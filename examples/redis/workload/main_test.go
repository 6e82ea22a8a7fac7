package workload

import (
	"flag"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Logs go to the test's output (shown when it fails), not to files.
	_ = flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}
