package executor

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestShellCommand(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis-server --port 31000 --dir .", "exec redis-server --port 31000 --dir ."},
		{"redis-server --port $STATEFUL_PORT_REDIS", "exec redis-server --port $STATEFUL_PORT_REDIS"},
		{"server > out.log 2>&1", "exec server > out.log 2>&1"},
		{"exec server", "exec server"},
		{"prepare; server", "prepare; server"},
		{"prepare && server", "prepare && server"},
		{"server | tee log", "server | tee log"},
		{"server &", "server &"},
		{"(cd /data && server)", "(cd /data && server)"},
		{"A=1 server", "A=1 server"},
		{"while true; do sleep 1; done", "while true; do sleep 1; done"},
		{"if true\nthen server\nfi", "if true\nthen server\nfi"},
		{"   ", "   "},
		{"exit 0", "exit 0"},
		{"cd /data", "cd /data"},
	} {
		if got := shellCommand(tc.in); got != tc.want {
			t.Errorf("shellCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestShellCommandExecReplacesTheShell: with the exec prefix the workload
// is the process the runtime started (so it gets the stop signal), not a
// child of a shell.
func TestShellCommandExecReplacesTheShell(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", shellCommand("sleep 30"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is %q, want sleep (the shell did not exec it)", cmd.Process.Pid, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
