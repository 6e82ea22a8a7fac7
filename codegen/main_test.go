package codegen

import (
	"flag"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// glog would otherwise leave log files in the system's temporary
	// directory; go test shows stderr only when a test fails.
	_ = flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}
