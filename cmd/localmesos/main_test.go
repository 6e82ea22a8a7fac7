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
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "localmesos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	if out, err := exec.Command(bin, "--agents", "0").CombinedOutput(); err == nil || !strings.Contains(string(out), "agents 0") {
		t.Errorf("--agents 0: err %v, output %q; want a refusal naming the setting", err, out)
	}

	cmd := exec.Command(bin, "--port", "0", "--agents", "2", "--resources", "cpus:1;mem:512;disk:512;ports:[41000-41099]", "--work-dir", filepath.Join(dir, "work"))
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
	var url string
	select {
	case url = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatal("the command never printed the master's address")
	}

	resp, err := http.Get(url + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Slaves []struct {
			Hostname string `json:"hostname"`
		} `json:"slaves"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || len(st.Slaves) != 2 {
		t.Fatalf("/master/state: %d agents (err %v), want 2", len(st.Slaves), err)
	}

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
