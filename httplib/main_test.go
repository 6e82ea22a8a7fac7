package httplib

import (
	"flag"
	"os"
	"testing"
)

// TestMain keeps glog on stderr: tests must not leave log files in the
// temporary directory.
func TestMain(m *testing.M) {
	flag.Parse()
	if err := flag.Set("logtostderr", "true"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
