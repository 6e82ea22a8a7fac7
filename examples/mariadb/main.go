// Command mariadb is the MariaDB example: a framework, built with the
// stateful toolkit's public API, that runs MariaDB primaries with GTID
// replicas (seeded from the primary), failover and planned switchover.
//
//	go run ./examples/mariadb
//
// runs it on embedded defaults (embedded etcd, a local Mesos cluster, the
// REST API on 127.0.0.1:5656). Tasks run mariadbd as processes: the agents
// need Debian's mariadb-server and mariadb-client.
package main

import (
	"github.com/mesos-stateful/stateful/examples/mariadb/workload"
	"github.com/mesos-stateful/stateful/framework"
)

func main() { framework.Main(workload.New()) }
