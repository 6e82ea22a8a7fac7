// Command testframework is a framework built with the toolkit around the
// test workload, with the short timers of tests; the framework's crash
// tests run it as a subprocess. When STATEFUL_TEST_API_ADDR_FILE names a
// file, it writes its REST API's address there once the API listens.
package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang/glog"

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
		// The embedded cluster's timers (--master=local) as in tests.
		c.Local.AllocationInterval = 50 * time.Millisecond
		c.Local.HeartbeatInterval = time.Second
		c.Local.ExecutorShutdownGracePeriod = time.Second
		c.Local.StatusUpdateRetryInterval = time.Second
		if ip := os.Getenv(testworkload.LocalAgentIPEnv); ip != "" {
			c.Local.FirstAgentIP = ip
		}
		if path := os.Getenv(testworkload.APIAddrFileEnv); path != "" {
			c.APIReady = func(addr string) { writeAddr(path, addr) }
		}
		if v := os.Getenv(CrashAtEnv); v != "" {
			c.CrashPoint = crashAt(v)
		}
	})
}

// CrashAtEnv, as POINT:N, kills the process with SIGKILL the N-th time it
// reaches the crash point POINT (framework.Config.CrashPoint).
const CrashAtEnv = "STATEFUL_TEST_CRASH_AT"

func crashAt(v string) func(string) {
	i := strings.LastIndexByte(v, ':')
	if i < 0 {
		glog.Fatalf("testframework: %s=%q: want POINT:N", CrashAtEnv, v)
	}
	point, n := v[:i], v[i+1:]
	want, err := strconv.Atoi(n)
	if err != nil || want < 1 {
		glog.Fatalf("testframework: %s=%q: want POINT:N", CrashAtEnv, v)
	}
	var mu sync.Mutex
	seen := 0
	return func(p string) {
		if p != point {
			return
		}
		mu.Lock()
		seen++
		hit := seen == want
		mu.Unlock()
		if hit {
			glog.Errorf("testframework: crashing at %s (hit %d)", p, want)
			glog.Flush()
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}

// writeAddr writes addr to path through a rename, so that a reader never
// sees a partial address.
func writeAddr(path, addr string) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(addr), 0o644); err != nil {
		glog.Errorf("testframework: writing the API address: %v", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		glog.Errorf("testframework: writing the API address: %v", err)
	}
}
