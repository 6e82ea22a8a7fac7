package workload

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mesos-stateful/stateful"
)

// cluster is a master and slaves of one MS instance, as real servers.
type cluster struct {
	w       *Redis
	inst    *stateful.Instance
	h       *testHandle
	servers []*server
}

func startCluster(t *testing.T, slaves int) *cluster {
	t.Helper()
	w, _ := New(Options{})
	inst := newInstance("cache1", stateful.TypeMasterSlave, slaves)
	var tasks []*stateful.Task
	for n := range slaves + 1 {
		tasks = append(tasks, placed(t, inst, n, inst.RoleFor(n)))
	}
	inst.Tasks = tasks
	c := &cluster{w: w, inst: inst, h: newHandle(inst, tasks...)}
	for _, task := range tasks {
		c.servers = append(c.servers, startServer(t, w, inst, task))
	}
	for _, s := range c.servers[1:] {
		waitLinkUp(t, s, c.servers[0].addr())
	}
	return c
}

func checkKeys(t *testing.T, addr, prefix string, n int) {
	t.Helper()
	for i := range n {
		if got := mustDo(t, addr, "GET", prefix+strconv.Itoa(i)); got != "v" {
			t.Fatalf("GET %s%d at %s = %v", prefix, i, addr, got)
		}
	}
}

// TestMasterLostPromotesTheMostUpToDateSlave: slave 1 is stopped while
// more is written, so slave 2 is ahead although its ordinal is larger; after
// the master dies MasterLost must pick slave 2, make it a master, record it
// and re-point slave 1, which then catches up from it.
func TestMasterLostPromotesTheMostUpToDateSlave(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 2)
	m, s1, s2 := c.servers[0], c.servers[1], c.servers[2]
	write(t, m.addr(), "before", 20, 2)

	// Slave 1 follows a server that is not there: it keeps its data and
	// offset but gets nothing more.
	mustDo(t, s1.addr(), "REPLICAOF", "127.0.0.1", strconv.Itoa(freePort(t)))
	write(t, m.addr(), "later", 20, 1) // only s2 can acknowledge
	m.kill(t)
	c.h.setState(m.task, stateful.TaskFailed)

	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.h.promoted, []string{s2.task.Name}) {
		t.Fatalf("promoted %v, want [%s]", c.h.promoted, s2.task.Name)
	}
	if inf := serverInfo(t, s2.addr(), "replication"); inf.Role() != "master" {
		t.Errorf("promoted server's role is %s", inf.Role())
	}
	if got := mustDo(t, s2.addr(), "SET", "after", "v"); got != "OK" {
		t.Errorf("write on the new master: %v", got)
	}
	checkKeys(t, s2.addr(), "before", 20)
	checkKeys(t, s2.addr(), "later", 20)
	waitLinkUp(t, s1, s2.addr())
	waitFor(t, "slave 1 to catch up from the new master", func() error {
		if got := mustDo(t, s1.addr(), "GET", "after"); got != "v" {
			return errors.New("no key written after the failover")
		}
		return nil
	})
	checkKeys(t, s1.addr(), "later", 20)

	// A retry (the toolkit retries on error, and may call again after a
	// restart) changes nothing: the stored promotion is kept.
	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if len(c.h.promoted) != 1 || c.h.role(s2.task) != stateful.RoleMaster || c.h.role(m.task) != stateful.RoleSlave {
		t.Errorf("after a retry: promoted %v, roles %s/%s", c.h.promoted, c.h.role(s2.task), c.h.role(m.task))
	}
	waitLinkUp(t, s1, s2.addr())

	// The lost ordinal relaunches as a slave of the new master.
	relaunch := c.inst.Clone()
	relaunch.Tasks = c.h.Tasks(c.inst)
	relaunch.MasterOrdinal = 2
	lc, err := c.w.Config(ctx, relaunch, relaunch.Tasks[0])
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(lc.Args, "--replicaof"); i < 0 || lc.Args[i+2] != strconv.Itoa(s2.task.Ports[PortName]) {
		t.Errorf("relaunch of the lost master: %q", lc.Args)
	}
}

// TestMasterLostRetriesAfterAFailedPromote: the server is promoted but the
// state write fails; the retry promotes the same slave and records it.
func TestMasterLostRetriesAfterAFailedPromote(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 2)
	m, s1, s2 := c.servers[0], c.servers[1], c.servers[2]
	write(t, m.addr(), "k", 10, 2)
	m.kill(t)
	c.h.setState(m.task, stateful.TaskFailed)
	c.h.promoteErrs = []error{stateful.ErrConflict}

	err := c.w.MasterLost(ctx, c.h, c.inst, m.task)
	if !errors.Is(err, stateful.ErrConflict) {
		t.Fatalf("MasterLost with a failing Promote: %v", err)
	}
	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	// Equal offsets: the smaller ordinal wins, both times.
	if !slices.Equal(c.h.promoted, []string{s1.task.Name}) {
		t.Fatalf("promoted %v, want [%s]", c.h.promoted, s1.task.Name)
	}
	waitLinkUp(t, s2, s1.addr())
	checkKeys(t, s2.addr(), "k", 10)
}

func TestMasterLostWithoutARunningSlaveRelaunchesInPlace(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 1)
	m, s := c.servers[0], c.servers[1]
	m.kill(t)
	c.h.setState(m.task, stateful.TaskFailed)
	c.h.setState(s.task, stateful.TaskQueued)
	if err := c.w.MasterLost(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if len(c.h.promoted) != 0 || len(c.h.execs) != 0 {
		t.Errorf("promoted %v, ran %v", c.h.promoted, c.h.execs)
	}

	single := newInstance("single", stateful.TypeSingle, 0)
	task := placed(t, single, 0, stateful.RoleMaster)
	h := newHandle(single, task)
	if err := c.w.MasterLost(ctx, h, single, task); err != nil || len(h.promoted) != 0 {
		t.Errorf("S instance: %v, promoted %v", err, h.promoted)
	}
}

// TestMasterLostWhenNoSlaveAnswers: slaves Mesos calls running that do
// not answer must not be replaced by an empty master; MasterLost fails and
// is retried.
func TestMasterLostWhenNoSlaveAnswers(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 1)
	m, s := c.servers[0], c.servers[1]
	m.kill(t)
	s.kill(t)
	c.h.setState(m.task, stateful.TaskFailed)
	err := c.w.MasterLost(ctx, c.h, c.inst, m.task)
	if err == nil || !strings.Contains(err.Error(), "none of 1 running slaves answered") {
		t.Errorf("MasterLost with a silent slave: %v", err)
	}
	if len(c.h.promoted) != 0 {
		t.Errorf("promoted %v", c.h.promoted)
	}
}

// TestRunningCallbacksRepointSlaves: a master relaunched in place may
// listen on another port; MasterRunning points the slaves at it, and
// SlaveRunning points a slave that follows someone else at the master.
func TestRunningCallbacksRepointSlaves(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	c := startCluster(t, 2)
	m, s1, s2 := c.servers[0], c.servers[1], c.servers[2]

	// A stray master elsewhere: both slaves follow it.
	stray := startServer(t, c.w, c.inst, placed(t, c.inst, 9, stateful.RoleMaster))
	for _, s := range []*server{s1, s2} {
		mustDo(t, s.addr(), "REPLICAOF", stray.task.Host, strconv.Itoa(stray.task.Ports[PortName]))
		waitLinkUp(t, s, stray.addr())
	}
	if err := c.w.SlaveRunning(ctx, c.h, c.inst, s1.task); err != nil {
		t.Fatal(err)
	}
	waitLinkUp(t, s1, m.addr())
	if err := c.w.MasterRunning(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	waitLinkUp(t, s2, m.addr())

	// MasterRunning also makes sure the master is one.
	mustDo(t, m.addr(), "REPLICAOF", stray.task.Host, strconv.Itoa(stray.task.Ports[PortName]))
	if err := c.w.MasterRunning(ctx, c.h, c.inst, m.task); err != nil {
		t.Fatal(err)
	}
	if inf := serverInfo(t, m.addr(), "replication"); inf.Role() != "master" {
		t.Errorf("master's role after MasterRunning: %s", inf.Role())
	}
}
