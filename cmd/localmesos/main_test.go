package main

import (
	"bufio"
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

// TestCommand builds the command, starts it on a free port with two agents,
// reads the master's state, then stops it with SIGINT as Ctrl-C would.
// Started again on the same work dir (--keep-tasks this time), it has the
// same agents.
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "localmesos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	if out, err := exec.Command(bin, "--agents", "0").CombinedOutput(); err == nil || !strings.Contains(string(out), "agents 0") {
		t.Errorf("--agents 0: err %v, output %q; want a refusal naming the setting", err, out)
	}

	args := []string{"--port", "0", "--agents", "2", "--resources", "cpus:1;mem:512;disk:512;ports:[41000-41099]", "--work-dir", filepath.Join(dir, "work")}
	cmd, url := startCommand(t, bin, args...)
	first := agentIDs(t, url)
	if len(first) != 2 {
		t.Fatalf("/master/state: agents %v, want 2", first)
	}
	interrupt(t, cmd)

	cmd, url = startCommand(t, bin, append(args, "--keep-tasks")...)
	if again := agentIDs(t, url); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Errorf("agents after a restart on the same work dir: %v, want %v", again, first)
	}
	interrupt(t, cmd)
}

// startCommand runs the command and returns it with the master's URL,
// read from what it prints.
func startCommand(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "localmesos: master at "); ok {
				urls <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case url := <-urls:
		return cmd, url
	case <-time.After(30 * time.Second):
		t.Fatal("the command never printed the master's address")
	}
	return nil, ""
}

func agentIDs(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Slaves []struct {
			ID string `json:"id"`
		} `json:"slaves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range st.Slaves {
		ids = append(ids, s.ID)
	}
	return ids
}

// interrupt stops the command with SIGINT, as Ctrl-C would.
func interrupt(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20s after SIGINT")
	}
}
