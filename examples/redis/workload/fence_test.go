package workload

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
)

// TestMasterLostFencesAMasterThatStillRuns: the master is reported
// TASK_UNREACHABLE but its server runs on, its slaves linked. With
// min-replicas-to-write 1, MasterLost cuts the slaves from it, waits until
// it refuses writes, and only then promotes: when MasterLost returns the
// old master answers -NOREPLICAS, every write it acknowledged is on the
// new master, and the other slave replicates the new master.
func TestMasterLostFencesAMasterThatStillRuns(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 2)
	m, s1, s2 := c.servers[0], c.servers[1], c.servers[2]
	for _, s := range c.servers {
		mustDo(t, s.addr(), "CONFIG", "SET", "min-replicas-to-write", "1")
		mustDo(t, s.addr(), "CONFIG", "SET", "min-replicas-max-lag", "1")
	}
	waitGoodReplicas(t, m.addr(), 2)
	write(t, m.addr(), "acked", 20, 2)
	c.h.setState(m.task, stateful.TaskUnreachable)

	start := time.Now()
	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second+fenceSlack-200*time.Millisecond {
		t.Errorf("MasterLost returned after %v; the fence needs min-replicas-max-lag (1s) + %v", took, fenceSlack)
	}
	got, err := resp.Do(ctx, m.srv(), "SET", "after", "v")
	if err == nil || !strings.HasPrefix(err.Error(), "NOREPLICAS") {
		t.Errorf("write on the old master after the failover: %v, %v; want -NOREPLICAS", got, err)
	}
	if len(c.h.promoted) != 1 {
		t.Fatalf("promoted %v, want one slave", c.h.promoted)
	}
	next, other := s1, s2
	if c.h.promoted[0] == s2.task.Name {
		next, other = s2, s1
	}
	if inf := serverInfo(t, next.addr(), "replication"); inf.Role() != "master" {
		t.Errorf("promoted server's role is %s", inf.Role())
	}
	checkKeys(t, next.addr(), "acked", 20)
	waitLinkUp(t, other, next.addr())
	write(t, next.addr(), "new", 5, 1)
}

// TestMasterLostDoesNotWaitForADeadMaster: a master whose end the agent
// saw (TASK_FAILED) cannot serve; the promotion is not delayed.
func TestMasterLostDoesNotWaitForADeadMaster(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 1)
	m := c.servers[0]
	for _, s := range c.servers {
		mustDo(t, s.addr(), "CONFIG", "SET", "min-replicas-to-write", "1")
		mustDo(t, s.addr(), "CONFIG", "SET", "min-replicas-max-lag", "10")
	}
	m.kill(t)
	c.h.setState(m.task, stateful.TaskFailed)
	start := time.Now()
	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("MasterLost for a failed master took %v; the fence (10s lag) must not apply", took)
	}
}

// TestFenceThenChoose: with the old master still running and streaming,
// the successor is chosen after the slaves are cut, so the slave that has
// every acknowledged write is promoted even when it is not the one that
// was ahead before.
func TestFenceThenChoose(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 2)
	m, s1, s2 := c.servers[0], c.servers[1], c.servers[2]
	for _, s := range c.servers {
		mustDo(t, s.addr(), "CONFIG", "SET", "min-replicas-to-write", "1")
		mustDo(t, s.addr(), "CONFIG", "SET", "min-replicas-max-lag", "1")
	}
	// Slave 1 falls behind; writes acknowledged by slave 2 only.
	mustDo(t, s1.addr(), "REPLICAOF", "127.0.0.1", strconv.Itoa(freePort(t)))
	waitGoodReplicas(t, m.addr(), 1)
	write(t, m.addr(), "only-s2-", 20, 1)
	c.h.setState(m.task, stateful.TaskUnreachable)
	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if len(c.h.promoted) != 1 || c.h.promoted[0] != s2.task.Name {
		t.Fatalf("promoted %v, want [%s], the slave with every acknowledged write", c.h.promoted, s2.task.Name)
	}
	checkKeys(t, s2.addr(), "only-s2-", 20)
	waitLinkUp(t, s1, s2.addr())
}
