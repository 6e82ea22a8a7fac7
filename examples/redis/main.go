// Command redis is the Redis example: a framework, built with the stateful
// toolkit, that runs Redis master/slave instances with automatic failover.
//
//	go run ./examples/redis
//
// runs it on embedded defaults (embedded etcd, a local Mesos cluster of
// three agents, the REST API on 127.0.0.1:5656); -help lists the flags that
// point it at real ones. Tasks run redis-server in a container of
// -redis-image (redis:7) when a Docker engine answers, and as a process of
// -redis-command (redis-server) otherwise. No registry reachable? Build the
// image from this host's Redis first: go run ./examples/redis/buildimage.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mesos-stateful/stateful/examples/redis/workload"
	"github.com/mesos-stateful/stateful/framework"
)

func main() {
	w, err := workload.New(workload.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w.RegisterFlags(flag.CommandLine)
	framework.Main(w)
}
