package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMasterAndAgentProcesses runs `localmesos master` and `localmesos
// agent` as two processes. The agent registers; paused with SIGSTOP it
// misses the master's pings and is marked unreachable; resumed with
// SIGCONT it registers again by itself, with the same ID.
func TestMasterAndAgentProcesses(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "localmesos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "agent", "--ip", "127.0.13.9", "--work-dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "master") {
		t.Errorf("agent without --master: err %v, output %q; want a refusal naming the setting", err, out)
	}

	ping := []string{"--agent-ping-timeout", "300ms", "--max-agent-ping-timeouts", "3"}
	master, url := startCommand(t, bin, append([]string{"master", "--ip", "127.0.0.1", "--port", "0"}, ping...)...)
	agent := exec.Command(bin, append([]string{"agent", "--master", strings.TrimPrefix(url, "http://"), "--ip", "127.0.13.9",
		"--resources", "cpus:1;mem:512;ports:[41200-41299]", "--work-dir", filepath.Join(dir, "agent")}, ping...)...)
	agent.Stdout, agent.Stderr = os.Stderr, os.Stderr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Signal(syscall.SIGCONT); _ = agent.Process.Kill(); _ = agent.Wait() })

	first := awaitState(t, url, "the agent registered", func(s masterState) bool { return len(s.Slaves) == 1 })
	id := first.Slaves[0].ID

	if err := agent.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	awaitState(t, url, "the paused agent unreachable", func(s masterState) bool { return len(s.Slaves) == 0 && s.UnreachableSlaves == 1 })
	if err := agent.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	back := awaitState(t, url, "the resumed agent registered again", func(s masterState) bool { return len(s.Slaves) == 1 && s.UnreachableSlaves == 0 })
	if back.Slaves[0].ID != id {
		t.Errorf("agent back as %s, want %s", back.Slaves[0].ID, id)
	}
	interrupt(t, agent)
	interrupt(t, master)
}

type masterState struct {
	Slaves []struct {
		ID string `json:"id"`
	} `json:"slaves"`
	UnreachableSlaves int `json:"unreachable_slaves"`
}

// awaitState polls /master/state until ok accepts it.
func awaitState(t *testing.T, url, what string, ok func(masterState) bool) masterState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var s masterState
	for time.Now().Before(deadline) {
		if res, err := http.Get(url + "/master/state"); err == nil {
			s = masterState{}
			err = json.NewDecoder(res.Body).Decode(&s)
			res.Body.Close()
			if err == nil && ok(s) {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s within 30s: last state %+v", what, s)
	return s
}
