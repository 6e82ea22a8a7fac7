// Command testframework is a framework built with the toolkit around the
// test workload, with the short timers of tests; the framework's crash
// tests run it as a subprocess.
package main

import (
	"time"

	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
)

func main() {
	framework.Main(testworkload.New(), func(c *framework.Config) {
		c.Creator.StickyWait = 3 * time.Second
		c.Creator.RelaunchBackoff = 100 * time.Millisecond
		c.Creator.RelaunchMaxBackoff = time.Second
		c.Creator.KillRetry = time.Second
		c.ResyncInterval = 2 * time.Second
		c.RetryBackoff = 50 * time.Millisecond
		c.RetryMaxBackoff = time.Second
		c.LeaderTTL = time.Second
		c.Offers.DeclineRefuse = 200 * time.Millisecond
		c.Offers.IdleRefuse = time.Second
		c.Offers.ReviveInterval = 100 * time.Millisecond
		c.Offers.ResyncInterval = 200 * time.Millisecond
		c.Offers.Policy.CoLocateAfter = 3 * time.Second
		c.Mesos.SubscribeBackoff = 100 * time.Millisecond
		c.Mesos.SubscribeMaxBackoff = time.Second
		c.Mesos.ReconcileBackoff = 200 * time.Millisecond
		c.Mesos.ReconcileMaxBackoff = time.Second
		c.Mesos.ReconcileInterval = 3 * time.Second
	})
}
