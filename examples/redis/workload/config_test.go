package workload

import (
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
)

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{ExecTimeout: -time.Second}); err == nil {
		t.Error("New accepted a negative exec timeout")
	}
}

func TestDefaultsAndFlags(t *testing.T) {
	w, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := w.Defaults()
	if d.Image != DefaultImage || d.Command != DefaultCommand || !d.HasPort(PortName) || d.Volume != DefaultVolume || d.Health == nil || d.Health.TCP != PortName {
		t.Errorf("defaults %+v", d)
	}
	// A request naming nothing gets a complete, valid spec.
	inst := &stateful.Instance{Name: "c", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 2, Spec: stateful.Spec{}.WithDefaults(d)}
	if err := inst.Validate(); err != nil {
		t.Errorf("instance with defaults: %v", err)
	}

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	w.RegisterFlags(fs)
	if err := fs.Parse([]string{"-redis-image", "registry.local/redis:7.2", "-redis-command", "/opt/redis/bin/redis-server"}); err != nil {
		t.Fatal(err)
	}
	d = w.Defaults()
	if d.Image != "registry.local/redis:7.2" || d.Command != "/opt/redis/bin/redis-server" {
		t.Errorf("after flags: %+v, %+v", d, w.Options())
	}
	if err := fs.Parse([]string{"-redis-image", ""}); err == nil {
		t.Error("an empty image flag was accepted")
	}
}

func argValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

func TestConfigArguments(t *testing.T) {
	ctx := context.Background()
	w, _ := New(Options{})
	inst := newInstance("cache1", stateful.TypeMasterSlave, 2)
	master := placed(t, inst, 0, stateful.RoleMaster)
	master.Host = "127.0.0.2"
	master.Ports[PortName] = 31001
	slave := placed(t, inst, 1, stateful.RoleSlave)
	slave.Host = "127.0.0.3"
	slave.Ports[PortName] = 31400
	withTasks := inst.Clone()
	withTasks.Tasks = []*stateful.Task{master, slave}

	lc, err := w.Config(ctx, withTasks, master)
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"--port": "31001", "--bind": "127.0.0.2", "--appendonly": "yes", "--protected-mode": "no", "--dir": "."} {
		if got, _ := argValue(lc.Args, flag); got != want {
			t.Errorf("master %s = %q, want %q (args %q)", flag, got, want, lc.Args)
		}
	}
	if slices.Contains(lc.Args, "--replicaof") {
		t.Errorf("master args %q replicate something", lc.Args)
	}

	// Without a command the image's entrypoint runs, and the volume is
	// where the spec mounts it.
	entrypoint := withTasks.Clone()
	entrypoint.Spec.Command = ""
	lc, err = w.Config(ctx, entrypoint, slave)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(lc.Args, "--replicaof")
	if i < 0 || i+2 >= len(lc.Args) || lc.Args[i+1] != "127.0.0.2" || lc.Args[i+2] != "31001" {
		t.Errorf("slave args %q do not replicate 127.0.0.2 31001", lc.Args)
	}
	if got, _ := argValue(lc.Args, "--dir"); got != DefaultVolume {
		t.Errorf("entrypoint slave --dir %q, want the volume's path in the container %q", got, DefaultVolume)
	}

	// Without tasks in inst, the master comes from the Handle Init gave.
	fresh, _ := New(Options{})
	if _, err := fresh.Config(ctx, inst, slave); err == nil || !strings.Contains(err.Error(), "unknown") {
		t.Errorf("slave Config with no way to find the master: %v", err)
	}
	fresh.Init(newHandle(inst, master, slave))
	lc, err = fresh.Config(ctx, inst, slave)
	if err != nil || !slices.Contains(lc.Args, "--replicaof") {
		t.Errorf("slave Config through the Handle: %q, %v", lc.Args, err)
	}

	// After a failover the master is whoever holds the role.
	promoted := inst.Clone()
	promoted.MasterOrdinal = 1
	m2, s2 := master.Clone(), slave.Clone()
	m2.Role, s2.Role = stateful.RoleSlave, stateful.RoleMaster
	promoted.Tasks = []*stateful.Task{m2, s2}
	lc, err = w.Config(ctx, promoted, m2)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(lc.Args, "--replicaof"); i < 0 || lc.Args[i+1] != "127.0.0.3" || lc.Args[i+2] != "31400" {
		t.Errorf("relaunched old master args %q do not replicate the new master", lc.Args)
	}
}

func TestConfigRefusesWhatCannotRun(t *testing.T) {
	ctx := context.Background()
	w, _ := New(Options{})
	inst := newInstance("cache1", stateful.TypeMasterSlave, 1)
	master := placed(t, inst, 0, stateful.RoleMaster)
	slave := placed(t, inst, 1, stateful.RoleSlave)
	unplacedMaster := stateful.NewTask(inst, 0, stateful.RoleMaster, time.Now())

	noPort := master.Clone()
	noPort.Ports = nil
	noHost := master.Clone()
	noHost.Host = ""
	cluster := inst.Clone()
	cluster.Type, cluster.Masters, cluster.Slaves = stateful.TypeCluster, 3, 0
	bridge := inst.Clone()
	bridge.Spec.Network = stateful.NetworkBridge
	otherPort := inst.Clone()
	otherPort.Spec.Ports = []string{"client"}
	otherVolume := inst.Clone()
	otherVolume.Spec.Volume = "/var/lib/redis"
	waiting := inst.Clone()
	waiting.Tasks = []*stateful.Task{unplacedMaster, slave}

	for name, tc := range map[string]struct {
		inst *stateful.Instance
		task *stateful.Task
		want string
	}{
		"no port":                {inst, noPort, "no \"redis\" port"},
		"no host":                {inst, noHost, "no host"},
		"cluster":                {cluster, master, "not supported"},
		"bridge":                 {bridge, master, "host networking"},
		"port not named":         {otherPort, master, "spec.ports"},
		"master not yet placed":  {waiting, slave, "not placed yet"},
		"volume off the workdir": {otherVolume, master, "the image's working directory"},
	} {
		_, err := w.Config(ctx, tc.inst, tc.task)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Config error %v, want one saying %q", name, err, tc.want)
		}
	}
	if err := w.Start(ctx, newHandle(cluster), cluster); err == nil {
		t.Error("Start accepted a C instance")
	}
}

// TestConfigLaunchesReplicatingPersistentServers runs redis-server with the
// arguments Config makes: the slave syncs from the master, and both write
// their append-only files in the volume.
func TestConfigLaunchesReplicatingPersistentServers(t *testing.T) {
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

	write(t, m.addr(), "k", 1, 1)
	if got := mustDo(t, s.addr(), "GET", "k0"); got != "v" {
		t.Errorf("GET on the slave: %v", got)
	}
	_, err := resp.Do(ctx, resp.Server{Addr: s.addr()}, "SET", "k", "w")
	if e, ok := err.(resp.Error); !ok || e.Prefix() != "READONLY" {
		t.Errorf("SET on the slave: %v, want READONLY", err)
	}
	for _, srv := range []*server{m, s} {
		if files := dataFiles(t, srv.dir); len(files) == 0 {
			t.Errorf("%s wrote nothing in its volume", srv.task.Name)
		}
	}
}
