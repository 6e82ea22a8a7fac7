package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
	"github.com/mesos-stateful/stateful/examples/redis/workload"
)

func newRedisWorkload() *workload.Redis {
	// No 5 s wait before a master syncs its slaves, to keep the test
	// short.
	w, err := workload.New(workload.Options{Command: "redis-server --repl-diskless-sync-delay 0"})
	if err != nil {
		panic(err)
	}
	return w
}

// buildCLI builds statefulctl into a temporary directory: the test drives
// the binary an operator runs, main and all.
func buildCLI(t *testing.T) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go tool to build statefulctl: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "statefulctl")
	out, err := exec.Command(gotool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestRedisThroughTheBinary runs the Redis example framework on a local
// cluster and drives it with the built binary only: create, wait RUNNING,
// master (checked with Redis itself), delete -wait.
func TestRedisThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts a cluster and redis-servers")
	}
	for _, p := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s (apt-get install redis-server redis-tools): %v", p, err)
		}
	}
	bin := buildCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := redistest.Start(ctx, redistest.Options{Runtime: "process", WorkDir: t.TempDir(), Workload: newRedisWorkload()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("framework: %v", err)
		}
	})

	ctl := func(args ...string) result {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), envAPI+"="+env.API)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errOut.String()}
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			r.code = exit.ExitCode()
		case err != nil:
			t.Fatalf("statefulctl %v: %v", args, err)
		}
		t.Logf("$ statefulctl %s\n%v", strings.Join(args, " "), r)
		return r
	}

	// Health checked every second, to keep the test short.
	spec := `{"health": {"tcp": "redis", "interval_s": 1, "timeout_s": 1}}`
	expect(t, ctl("create", "cache1", "-type", "MS", "-slaves", "2", "-spec", spec), exitOK, []string{"Status:      CREATING"}, nil)
	expect(t, ctl("create", "cache1", "-type", "MS"), exitError, nil, []string{`409 Conflict: instance "cache1" already exists`})

	r := ctl("wait", "cache1", "-timeout", "2m", "-interval", "100ms")
	expect(t, r, exitOK, nil, nil)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, "cache1 RUNNING: cache1-0 master RUNNING healthy, cache1-1 slave RUNNING healthy, cache1-2 slave RUNNING healthy") {
		t.Errorf("wait's last line %q", last)
	}

	r = ctl("master", "cache1")
	expect(t, r, exitOK, nil, nil)
	host, port, ok := strings.Cut(strings.TrimSpace(r.stdout), " ")
	if !ok {
		t.Fatalf("master printed %q, want HOST PORT", r.stdout)
	}
	addr := net.JoinHostPort(host, port)
	inst, _, err := env.Get(ctx, "cache1")
	if err != nil || inst == nil {
		t.Fatalf("GET cache1: %v", err)
	}
	if m := redistest.Master(inst); m == nil || redistest.Addr(m) != addr {
		t.Fatalf("master printed %s; the API says %s", addr, redistest.Describe(inst))
	}
	// The password, as an operator gets it for redis-cli.
	r = ctl("env", "cache1", workload.PasswordEnv)
	expect(t, r, exitOK, nil, nil)
	srv := resp.Server{Addr: addr, Password: strings.TrimSpace(r.stdout)}
	if srv.Password == "" || srv.Password != inst.Spec.Env[workload.PasswordEnv] {
		t.Fatalf("env printed %q, the API says %q", r.stdout, inst.Spec.Env[workload.PasswordEnv])
	}
	if _, err := resp.Do(ctx, resp.Server{Addr: addr}, "INFO", "replication"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("INFO without the password: %v, want NOAUTH", err)
	}
	reply, err := resp.Do(ctx, srv, "INFO", "replication")
	if err != nil {
		t.Fatalf("INFO at the printed master %s: %v", addr, err)
	}
	if info := workload.ParseInfo(reply.(string)); info.Role() != "master" {
		t.Fatalf("the server at %s says role %q", addr, info.Role())
	}
	// (Stats come every 10 s; the in-memory tests check their column.)
	expect(t, ctl("get", "cache1"), exitOK, []string{"Status:      RUNNING", "cache1-0  master  TASK_RUNNING  yes"}, nil)

	r = ctl("delete", "cache1", "-wait", "-timeout", "1m", "-interval", "100ms")
	expect(t, r, exitOK, []string{"cache1 DELETING\n", "cache1 deleted\n"}, nil)
	if _, code, err := env.Get(ctx, "cache1"); code != 404 {
		t.Errorf("after delete -wait GET cache1 is %d (%v)", code, err)
	}
	err = redistest.Poll(ctx, "the master's server to be gone", func() (bool, string) {
		reply, err := resp.Do(ctx, srv, "PING")
		return err != nil, fmt.Sprintf("%s answers %v", addr, reply)
	})
	if err != nil {
		t.Error(err)
	}
	expect(t, ctl("list"), exitOK, nil, []string{"no instances"})
}
