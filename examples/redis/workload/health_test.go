package workload

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
)

func TestParseInfo(t *testing.T) {
	text := "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.2\r\nmaster_port:31001\r\n" +
		"master_link_status:up\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:4242\r\n" +
		"master_repl_offset:4242\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\n" +
		"db2:keys=4,expires=1,avg_ttl=10\r\nnot a field\r\n:novalue\r\n"
	inf := ParseInfo(text)
	if inf.Role() != "slave" || !inf.LinkUp() || inf.Keys() != 7 || inf["master_host"] != "127.0.0.2" {
		t.Errorf("ParseInfo = %v (keys %d)", inf, inf.Keys())
	}
	if off, ok := inf.ReplicationOffset(); !ok || off != 4242 {
		t.Errorf("offset %d %v", off, ok)
	}
	if _, ok := inf[""]; ok {
		t.Error("a line with an empty name was kept")
	}

	for name, tc := range map[string]struct {
		text   string
		offset int64
		ok     bool
		linkUp bool
	}{
		"master":                       {"role:master\nmaster_repl_offset:99\n", 99, true, false},
		"slave syncing":                {"role:slave\nmaster_link_status:up\nmaster_sync_in_progress:1\nslave_repl_offset:0\n", 0, true, false},
		"slave link down":              {"role:slave\nmaster_link_status:down\nslave_repl_offset:12\n", 12, true, false},
		"slave after its link dropped": {"role:slave\nmaster_link_status:down\nslave_repl_offset:0\nmaster_repl_offset:77\n", 77, true, false},
		"no offset":                    {"role:master\n", 0, false, false},
		"bad offset":                   {"role:master\nmaster_repl_offset:x\n", 0, false, false},
		"negative offset":              {"role:master\nmaster_repl_offset:-1\n", 0, false, false},
	} {
		inf := ParseInfo(tc.text)
		off, ok := inf.ReplicationOffset()
		if off != tc.offset || ok != tc.ok || inf.LinkUp() != tc.linkUp {
			t.Errorf("%s: offset %d %v link %v", name, off, ok, inf.LinkUp())
		}
	}
}

func TestStatsAndHealthOfRealServers(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	w, _ := New(Options{})
	inst := newInstance("cache1", stateful.TypeMasterSlave, 1)
	master := placed(t, inst, 0, stateful.RoleMaster)
	slave := placed(t, inst, 1, stateful.RoleSlave)
	inst.Tasks = []*stateful.Task{master, slave}
	m := startServer(t, w, inst, master)
	s := startServer(t, w, inst, slave)
	waitLinkUp(t, s, m.addr())
	write(t, m.addr(), "key", 5, 1)

	stats, err := w.Stats(ctx, master, localExec)
	if err != nil {
		t.Fatal(err)
	}
	if stats[stateful.StatRole] != "master" || stats[StatKeys] != "5" || stats[StatConnectedSlaves] != "1" {
		t.Errorf("master stats %v", stats)
	}
	moff, err := strconv.ParseInt(stats[stateful.StatReplicationOffset], 10, 64)
	if err != nil || moff <= 0 {
		t.Errorf("master offset %q", stats[stateful.StatReplicationOffset])
	}
	if n, err := strconv.Atoi(stats[StatUsedMemory]); err != nil || n <= 0 {
		t.Errorf("used memory %q", stats[StatUsedMemory])
	}
	if n, err := strconv.Atoi(stats[StatConnectedClients]); err != nil || n < 1 {
		t.Errorf("connected clients %q", stats[StatConnectedClients])
	}

	// The slave reports the offset it has reached, which WAIT says is the
	// master's.
	waitFor(t, "the slave's stats to reach the master's offset", func() error {
		stats, err := w.Stats(ctx, slave, localExec)
		if err != nil {
			return err
		}
		if stats[stateful.StatRole] != "slave" || stats[StatMaster] != m.addr() || stats[StatMasterLinkStatus] != "up" || stats[StatKeys] != "5" {
			return fmt.Errorf("slave stats %v", stats)
		}
		if off, _ := strconv.ParseInt(stats[stateful.StatReplicationOffset], 10, 64); off < moff {
			return fmt.Errorf("slave offset %d < master's %d", off, moff)
		}
		return nil
	})

	for _, task := range []*stateful.Task{master, slave} {
		if err := w.CheckHealth(ctx, task, localExec); err != nil {
			t.Errorf("%s: %v", task.Name, err)
		}
	}

	// A slave whose master is gone is unhealthy; so is a server that is gone.
	m.kill(t)
	waitFor(t, "the slave to report its link down", func() error {
		err := w.CheckHealth(ctx, slave, localExec)
		if err == nil {
			return fmt.Errorf("still healthy")
		}
		if !strings.Contains(err.Error(), "link to master") {
			t.Fatalf("health of an orphaned slave: %v", err)
		}
		return nil
	})
	if err := w.CheckHealth(ctx, master, localExec); err == nil {
		t.Error("a killed server is healthy")
	}
	if _, err := w.Stats(ctx, master, localExec); err == nil {
		t.Error("Stats of a killed server succeeded")
	}
}

func TestHealthOfASlaveBeforeItsInitialSync(t *testing.T) {
	needRedis(t)
	ctx := testContext(t)
	w, _ := New(Options{})
	inst := newInstance("cache1", stateful.TypeMasterSlave, 1)
	master := placed(t, inst, 0, stateful.RoleMaster) // never started
	slave := placed(t, inst, 1, stateful.RoleSlave)
	inst.Tasks = []*stateful.Task{master, slave}
	startServer(t, w, inst, slave)
	if err := w.CheckHealth(ctx, slave, localExec); err == nil {
		t.Error("a slave that never synced is healthy")
	}
}

func TestStatsNeedThePlacement(t *testing.T) {
	w, _ := New(Options{})
	task := stateful.NewTask(newInstance("c", stateful.TypeSingle, 0), 0, stateful.RoleMaster, time.Now())
	never := func(context.Context, []string) (stateful.ExecResult, error) {
		t.Fatal("exec without an address")
		return stateful.ExecResult{}, nil
	}
	if _, err := w.Stats(context.Background(), task, never); err == nil {
		t.Error("Stats of an unplaced task succeeded")
	}
	if err := w.CheckHealth(context.Background(), task, never); err == nil {
		t.Error("CheckHealth of an unplaced task succeeded")
	}
}
