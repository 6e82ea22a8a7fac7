package executor

import (
	"context"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// TestTaskMonSetRole: after a promotion the scheduler's set_role reaches the
// task; the workload's stats and health hooks see the new role at once
// (not after an interval), and the stats report carries it.
func TestTaskMonSetRole(t *testing.T) {
	var (
		mu          sync.Mutex
		healthRoles []string
	)
	hooks := taskHooks{
		stats: StatsProviderFunc(func(_ context.Context, task TaskHandle) (map[string]string, error) {
			return map[string]string{"seen_role": task.Role()}, nil
		}),
		health: HealthProviderFunc(func(_ context.Context, task TaskHandle) error {
			mu.Lock()
			healthRoles = append(healthRoles, task.Role())
			mu.Unlock()
			return nil
		}),
	}
	d := protocol.TaskData{Instance: "cache1", Role: protocol.RoleSlave, Command: "exec sleep 60"}
	// Intervals far longer than the test: only the role change can make
	// a report or a check now.
	mt := runMonWith(t, d, hooks, time.Hour)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)

	mt.mon.SetRole(protocol.RoleMaster)
	deadline := time.Now().Add(10 * time.Second)
	for {
		stats := mt.rec.stats()
		mu.Lock()
		last := ""
		if len(healthRoles) > 0 {
			last = healthRoles[len(healthRoles)-1]
		}
		mu.Unlock()
		if n := len(stats); n > 0 && stats[n-1].Role == protocol.RoleMaster && stats[n-1].Workload["seen_role"] == protocol.RoleMaster && last == protocol.RoleMaster {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after set_role master: stats %+v, health checks saw %v", stats, healthRoles)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
