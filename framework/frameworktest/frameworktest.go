// Package frameworktest gives tests that run a framework in-process
// (framework.Run) a configuration with timers short enough for tests: offers
// declined and revived within a fraction of a second, relaunch and retry
// backoffs and the leader TTL in seconds, stats every second. The defaults
// of framework.NewConfig suit production and would make every wait of a
// test take tens of seconds.
package frameworktest

import (
	"path/filepath"
	"time"

	"github.com/mesos-stateful/stateful/framework"
)

// Config returns a configuration for a test: the master at master (a
// localmesos URL, or framework.MasterLocal), embedded etcd and task volumes
// in dataDir, the REST API on a free loopback port (learn it with
// cfg.APIReady), executors run from this binary's path, and short timers.
// Callers set the rest (Name, Runtime, ...).
func Config(master, dataDir string) framework.Config {
	cfg := framework.NewConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Master = master
	cfg.Etcd = framework.EtcdEmbedded
	cfg.DataDir = dataDir
	// Against a master given by URL the framework would keep volumes under
	// /var/lib, where one run's data would greet the next.
	cfg.VolumeRoot = filepath.Join(dataDir, "volumes")
	cfg.ExecutorMode = framework.ExecutorPath
	cfg.ExecutorStatsInterval = time.Second
	cfg.Creator.StickyWait = 2 * time.Second
	cfg.Creator.ReplaceAfter = 5 * time.Second
	cfg.Creator.RelaunchBackoff = 100 * time.Millisecond
	cfg.Creator.RelaunchMaxBackoff = time.Second
	cfg.Creator.KillRetry = time.Second
	cfg.Creator.CallbackTimeout = 15 * time.Second
	cfg.ResyncInterval = 2 * time.Second
	cfg.RetryBackoff = 50 * time.Millisecond
	cfg.RetryMaxBackoff = time.Second
	cfg.LeaderTTL = 2 * time.Second
	cfg.ShutdownGrace = 15 * time.Second
	cfg.Offers.DeclineRefuse = 200 * time.Millisecond
	cfg.Offers.IdleRefuse = time.Second
	cfg.Offers.ReviveInterval = 100 * time.Millisecond
	cfg.Offers.ResyncInterval = 200 * time.Millisecond
	cfg.Offers.Policy.CoLocateAfter = 2 * time.Second
	cfg.Mesos.SubscribeBackoff = 100 * time.Millisecond
	cfg.Mesos.SubscribeMaxBackoff = time.Second
	cfg.Mesos.ReconcileBackoff = 200 * time.Millisecond
	cfg.Mesos.ReconcileMaxBackoff = time.Second
	cfg.Mesos.ReconcileInterval = 3 * time.Second
	return cfg
}
