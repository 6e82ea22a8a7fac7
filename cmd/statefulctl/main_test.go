package main

import (
	"flag"
	"os"
	"testing"
)

// TestMain keeps glog (the REST API's logs) on stderr rather than in
// files in the temporary directory.
func TestMain(m *testing.M) {
	flag.Parse()
	if err := flag.Set("logtostderr", "true"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
