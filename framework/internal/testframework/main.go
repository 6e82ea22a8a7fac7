// Command testframework is a framework built with the toolkit around the
// test workload; the framework's crash tests run it as a subprocess.
package main

import (
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
)

func main() {
	framework.Main(testworkload.New())
}
