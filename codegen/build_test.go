package codegen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
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

// goCmd runs the go command in dir, offline, and fails the test with its
// output when it fails.
func goCmd(t *testing.T, ctx context.Context, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = offlineEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// hasFramework reports whether the toolkit at root has its framework
// package, which every generated project imports.
func hasFramework(root string) bool {
	_, err := os.Stat(filepath.Join(root, "framework"))
	return err == nil
}

// contractToolkit returns a toolkit to compile projects against: root
// itself once it has package framework, else a copy of root made of
// symlinks plus a framework package holding only the contract the templates
// rely on (testdata/contract/framework.go). Such a project compiles, but
// cannot run.
func contractToolkit(t *testing.T, root string) (dir string, stub bool) {
	t.Helper()
	if hasFramework(root) {
		return root, false
	}
	kit := filepath.Join(t.TempDir(), "stateful")
	if err := os.MkdirAll(filepath.Join(kit, "framework"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(kit, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	contract, err := os.ReadFile(filepath.Join("testdata", "contract", "framework.go"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(kit, "framework", "framework.go"), string(contract))
	return kit, true
}

// TestGeneratedProjectBuilds generates projects and builds, vets and
// compiles the tests of each offline, against the toolkit (or, until the
// toolkit has package framework, against the framework contract), with
// go.mod and go.sum as generated: nothing may need the network or a change.
func TestGeneratedProjectBuilds(t *testing.T) {
	root := repoRoot(t)
	kit, stub := contractToolkit(t, root)
	if stub {
		t.Logf("the toolkit has no framework package yet: compiling against testdata/contract/framework.go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, opts := range []Options{
		{Name: "MySQL"},
		{Name: "redis7", Image: "redis:7", Module: "github.com/example/redis"},
	} {
		t.Run(opts.Name, func(t *testing.T) {
			opts.Path, opts.Toolkit = t.TempDir(), kit
			res, err := Generate(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, res.Dir)
			goCmd(t, ctx, res.Dir, "build", "./...")
			// go build leaves the binary of a lone main package, named after
			// the module path (.gitignore lists it); nothing else may change.
			if err := os.Remove(filepath.Join(res.Dir, path.Base(res.Module))); err != nil {
				t.Errorf("go build ./... left no binary: %v", err)
			}
			goCmd(t, ctx, res.Dir, "vet", "./...")
			// Compiles the test and runs TestMain, but no test: running them
			// needs the real framework (TestGeneratedProjectEndToEnd).
			goCmd(t, ctx, res.Dir, "test", "-count=1", "-run", "^$", "./...")
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
func TestGeneratedProjectEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a generated framework; skipped with -short")
	}
	root := repoRoot(t)
	if !hasFramework(root) {
		t.Skipf("the toolkit at %s has no framework package yet (framework.Main, framework.Run, framework.NewConfig): a generated project cannot run until it has", root)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Generate(ctx, Options{Name: "MySQL", Path: t.TempDir(), Toolkit: root})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(res.Dir, "bin", "mysql")
	goCmd(t, ctx, res.Dir, "build", "-o", bin, ".")
	goCmd(t, ctx, res.Dir, "vet", "./...")
	goCmd(t, ctx, res.Dir, "test", "-count=1", "./...")

	// Run the binary as `make run` does, on a free port and with one agent
	// running processes, and use the workload's defaults as they come.
	addr := freeAddr(t)
	api := "http://" + addr
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config", "config.json", "--http", addr,
		"--data-dir", t.TempDir(), "--local-agents", "1", "--runtime", "process")
	cmd.Dir = res.Dir
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
	if code, body, err := httpDo(http.MethodPost, api+"/v1/instances", `{"name": "smoke", "type": "S"}`); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /v1/instances: %d %s %v, want 202", code, body, err)
	}
	poll(t, time.Minute, "instance smoke RUNNING", func() (bool, string) {
		code, body, err := httpDo(http.MethodGet, api+"/v1/instances/smoke", "")
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK && strings.Contains(body, `"status":"RUNNING"`), fmt.Sprintf("%d %s", code, body)
	})
	if code, body, err := httpDo(http.MethodDelete, api+"/v1/instances/smoke", ""); err != nil || code != http.StatusAccepted {
		t.Fatalf("DELETE /v1/instances/smoke: %d %s %v, want 202", code, body, err)
	}
	poll(t, time.Minute, "instance smoke gone", func() (bool, string) {
		code, body, err := httpDo(http.MethodGet, api+"/v1/instances/smoke", "")
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
		t.Errorf("the framework still runs 30s after SIGTERM")
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
