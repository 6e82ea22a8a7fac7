package codegen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// offlineEnv is the environment the generated project is built in: no
// proxy (so nothing can come from the network), go.mod updates allowed
// (-mod=mod: the test then checks that none was needed), no workspace.
func offlineEnv() []string {
	return append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
}

// goCmd runs the go command in dir, offline, with env added to its
// environment, and returns its output; it fails the test with the output
// when the command fails.
func goCmd(t *testing.T, ctx context.Context, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(offlineEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestGeneratedProjectBuilds generates projects and builds, vets and tests
// each offline, against the toolkit, with go.mod and go.sum as generated:
// nothing may need the network or a change. The MySQL project's test runs
// with -short, which must skip its end-to-end test as the README says
// (TestGeneratedProjectEndToEnd runs it); the image project's runs whole.
func TestGeneratedProjectBuilds(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		opts  Options
		short bool
	}{
		{Options{Name: "MySQL"}, true},
		{Options{Name: "redis7", Image: "redis:7", Module: "github.com/example/redis"}, testing.Short()},
	} {
		opts := tc.opts
		t.Run(opts.Name, func(t *testing.T) {
			opts.Path, opts.Toolkit = t.TempDir(), root
			res, err := Generate(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, res.Dir)
			goCmd(t, ctx, res.Dir, nil, "build", "./...")
			// go build leaves the binary of a lone main package, named after
			// the module path (.gitignore lists it); nothing else may change.
			if err := os.Remove(filepath.Join(res.Dir, path.Base(res.Module))); err != nil {
				t.Errorf("go build ./... left no binary: %v", err)
			}
			goCmd(t, ctx, res.Dir, nil, "vet", "./...")
			e2e := "Test" + typeName(opts.Name) + "EndToEnd"
			if tc.short {
				out := goCmd(t, ctx, res.Dir, nil, "test", "-count=1", "-short", "-v", "./...")
				if !strings.Contains(out, "--- SKIP: "+e2e) {
					t.Errorf("go test -short: no %q in its output:\n%s", "--- SKIP: "+e2e, out)
				}
			} else {
				marker := processMarker(t)
				out := goCmd(t, ctx, res.Dir, []string{marker}, "test", "-count=1", "-v", "./...")
				if !strings.Contains(out, "--- PASS: "+e2e) {
					t.Errorf("go test: no %q in its output:\n%s", "--- PASS: "+e2e, out)
				}
				noProcessLeft(t, "after the generated test", marker)
			}
			sameSnapshot(t, "after go build, vet and test", snapshot(t, res.Dir), before)

			if _, err := exec.LookPath("make"); err == nil {
				cmd := exec.CommandContext(ctx, "make", "-n", "build", "test", "vet", "run", "clean")
				cmd.Dir = res.Dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("make -n: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestGeneratedProjectEndToEnd is what a framework author does first:
// generate, build, vet, run the generated tests, then run the binary on
// embedded defaults and create, watch and destroy an instance over HTTP.
// Neither leaves a process behind.
func TestGeneratedProjectEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a generated framework; skipped with -short")
	}
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skipf("needs /proc to find the processes the framework leaves behind: %v", err)
	}
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Generate(ctx, Options{Name: "MySQL", Path: t.TempDir(), Toolkit: root})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(res.Dir, "bin", "mysql")
	goCmd(t, ctx, res.Dir, nil, "build", "-o", bin, ".")
	goCmd(t, ctx, res.Dir, nil, "vet", "./...")
	// Every process the generated test starts (executors, tasks) inherits
	// the marker from its environment; none may outlive the test.
	marker := processMarker(t)
	out := goCmd(t, ctx, res.Dir, []string{marker}, "test", "-count=1", "-v", "./...")
	if !strings.Contains(out, "--- PASS: TestMySQLEndToEnd") {
		t.Errorf("go test ran no end-to-end test:\n%s", out)
	}
	noProcessLeft(t, "after the generated test", marker)

	// The binary names itself after the project unless told otherwise, as
	// config.json says.
	help, _ := exec.CommandContext(ctx, bin, "-help").CombinedOutput()
	if !regexp.MustCompile(`(?m)^\s+-name string\n\s.*\(default "mysql"\)$`).Match(help) {
		t.Errorf("mysql -help does not give \"mysql\" as the default -name:\n%s", help)
	}

	// Run the binary as `make run` does, on a free port and with one agent
	// running processes, and use the workload's defaults as they come.
	marker = processMarker(t)
	addr := freeAddr(t)
	api := "http://" + addr
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", "config.json", "--http", addr,
		"--data-dir", t.TempDir(), "--local-agents", "1", "--runtime", "process")
	cmd.Dir = res.Dir
	cmd.Env = append(os.Environ(), marker)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
			}
		}
		// Whatever is left of its process group goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("framework output:\n%s", logs.String())
		}
	})

	poll(t, time.Minute, "the framework healthy", func() (bool, string) {
		code, body, err := httpDo(http.MethodGet, api+"/v1/health", "")
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	// The README's commands, as a user runs them from another terminal.
	send := readmeRequests(t, ctx, res.Dir, api)
	if body := send("POST"); !strings.Contains(body, `"name":"demo"`) {
		t.Fatalf("the README's create command answered %s, want the instance demo", body)
	}
	poll(t, time.Minute, "instance demo RUNNING", func() (bool, string) {
		body := send("GET")
		return strings.Contains(body, `"status":"RUNNING"`), body
	})
	if n := len(processesWith(t, marker)); n < 3 {
		t.Errorf("%d processes carry the marker while an instance runs, want the framework, an executor and its task", n)
	}
	if body := send("DELETE"); !strings.Contains(body, `"name":"demo"`) {
		t.Fatalf("the README's destroy command answered %s, want the instance demo", body)
	}
	poll(t, time.Minute, "instance demo gone", func() (bool, string) {
		code, body, err := httpDo(http.MethodGet, api+"/v1/instances/demo", "")
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusNotFound, fmt.Sprintf("%d %s", code, body)
	})

	stopped = true
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the framework exited after SIGTERM with %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the framework still runs 30s after SIGTERM")
	}
	noProcessLeft(t, "after the framework stopped", marker)
}

// readmeRequests returns a function that runs the README's curl command
// for method (GET: the one without -X) against api instead of the README's
// address, and returns what it prints. Without curl it sends the same
// requests with net/http.
func readmeRequests(t *testing.T, ctx context.Context, dir, api string) func(method string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	commands := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		line, ok := strings.CutPrefix(line, "    curl ")
		if !ok {
			continue
		}
		method := "GET"
		for _, m := range []string{"POST", "DELETE"} {
			if strings.Contains(line, "-X "+m+" ") {
				method = m
			}
		}
		commands[method] = "curl " + strings.ReplaceAll(line, "http://127.0.0.1:5656", api)
	}
	if len(commands) != 3 {
		t.Fatalf("README.md has curl commands for %v, want POST, GET and DELETE", commands)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Logf("curl not found: sending the README's requests with net/http")
		return func(method string) string {
			url, body := api+"/v1/instances/demo", ""
			if method == "POST" {
				url, body = api+"/v1/instances", `{"name": "demo", "type": "S"}`
			}
			code, answer, err := httpDo(method, url, body)
			return fmt.Sprintf("%d %s %v", code, answer, err)
		}
	}
	return func(method string) string {
		out, err := exec.CommandContext(ctx, "sh", "-c", commands[method]).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%s: %v: %s", commands[method], err, out)
		}
		return string(out)
	}
}

// processMarker returns an environment variable (NAME=value) unique to this
// call, for processesWith to find the processes that inherited it.
func processMarker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "CODEGEN_TEST_MARKER=" + hex.EncodeToString(b)
}

// processesWith lists the live processes whose environment holds marker
// (pid and command line), from /proc.
func processesWith(t *testing.T, marker string) []string {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, dir := range dirs {
		// Unreadable (another user's) or gone since the glob: not ours.
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), marker) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		found = append(found, filepath.Base(dir)+" "+strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
	}
	return found
}

// noProcessLeft fails the test if a process holding marker is still alive a
// few seconds from now (a killed process takes a moment to be reaped).
func noProcessLeft(t *testing.T, when, marker string) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		if left = processesWith(t, marker); len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s, processes it started are still alive:\n%s", when, strings.Join(left, "\n"))
	for _, p := range left {
		pid, _, _ := strings.Cut(p, " ")
		if n, err := strconv.Atoi(pid); err == nil {
			_ = syscall.Kill(n, syscall.SIGKILL)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// poll calls check until it reports done, failing the test with its last
// message after timeout.
func poll(t *testing.T, timeout time.Duration, what string, check func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, msg := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", timeout, what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func httpDo(method, url, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		return resp.StatusCode, string(b), err
	}
	return resp.StatusCode, string(b), nil
}
