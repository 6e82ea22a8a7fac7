package workload

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
)

func TestAllowSpec(t *testing.T) {
	w, err := New(Options{AllowedImages: []string{"redis:7", "registry.local/redis:7.2"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		given     []string
		requested stateful.Spec
		field     string
	}{
		{[]string{"command"}, stateful.Spec{Command: "sh"}, "spec.command"},
		{[]string{"command", "health", "image"}, stateful.Spec{}, ""}, // reset to the defaults (README)
		{[]string{"env"}, stateful.Spec{}, "spec.env"},                // a reset would change the password
		{[]string{"env", "mem"}, stateful.Spec{Env: map[string]string{"X": "1"}, Mem: 64}, "spec.env"},
		{[]string{"image"}, stateful.Spec{Image: "evil/redis"}, "spec.image"},
		{[]string{"image"}, stateful.Spec{Image: "registry.local/redis:7.2"}, ""},
		{[]string{"image"}, stateful.Spec{}, ""}, // reset to the default
		{[]string{"cpu", "mem", "health"}, stateful.Spec{CPU: 1, Mem: 512}, ""},
	} {
		err := w.AllowSpec(tc.given, tc.requested)
		ve, _ := stateful.AsValidationError(err)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%v: %v", tc.given, err)
		case tc.field != "" && (ve == nil || ve.Field != tc.field):
			t.Errorf("%v: %v, want a validation error naming %s", tc.given, err, tc.field)
		}
	}
}

// TestEachInstanceGetsItsOwnPassword: Defaults generates a password per
// call; Config makes the server require it (and replicas use it) and gives
// redis-cli inside the task REDISCLI_AUTH.
func TestEachInstanceGetsItsOwnPassword(t *testing.T) {
	w, _ := New(Options{})
	a, b := w.Defaults().Env[PasswordEnv], w.Defaults().Env[PasswordEnv]
	if len(a) < 32 || a == b {
		t.Fatalf("passwords %q and %q: want two long, different ones", a, b)
	}
	inst := &stateful.Instance{Name: "pw", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1, Spec: stateful.Spec{}.WithDefaults(w.Defaults())}
	master := placed(t, inst, 0, stateful.RoleMaster)
	slave := placed(t, inst, 1, stateful.RoleSlave)
	inst.Tasks = []*stateful.Task{master, slave}
	pw := inst.Spec.Env[PasswordEnv]
	for _, task := range inst.Tasks {
		lc, err := w.Config(context.Background(), inst, task)
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(lc.Args, " ")
		if !strings.Contains(args, "--requirepass "+pw) || !strings.Contains(args, "--masterauth "+pw) || slices.Contains(lc.Args, "--protected-mode") {
			t.Errorf("%s: args %q, want --requirepass and --masterauth with the password and protected mode left on", task.Name, args)
		}
		if lc.Env["REDISCLI_AUTH"] != pw {
			t.Errorf("%s: env %v, want REDISCLI_AUTH", task.Name, lc.Env)
		}
	}

	// The servers: a client without the password is refused, the slave
	// replicates with it.
	m := startServer(t, w, inst, master)
	s := startServer(t, w, inst, slave)
	port := strconv.Itoa(master.Ports[PortName])
	res, err := localExec(testContext(t), []string{"redis-cli", "-h", master.Host, "-p", port, "GET", "k"})
	if err != nil || !strings.Contains(res.Stdout+res.Stderr, "NOAUTH") {
		t.Errorf("redis-cli without the password: %+v, %v; want NOAUTH", res, err)
	}
	if _, err := resp.Do(testContext(t), resp.Server{Addr: m.addr()}, "GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET without the password: %v, want NOAUTH", err)
	}
	if got, err := resp.Do(testContext(t), m.srv(), "SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET with the password: %v, %v", got, err)
	}
	waitFor(t, "the slave to sync with the password", func() error {
		reply, err := resp.Do(testContext(t), s.srv(), "GET", "k")
		if err != nil || reply != "v" {
			return fmt.Errorf("GET k on the slave: %v, %v", reply, err)
		}
		return nil
	})
}
