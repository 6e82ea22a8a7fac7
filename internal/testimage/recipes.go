package testimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// RedisImage is the conventional name of the image Redis builds.
const RedisImage = "stateful-test/redis:latest"

// Paths of the Debian redis-server and redis-tools packages' programs.
const (
	RedisServerPath = "/usr/bin/redis-server"
	RedisCLIPath    = "/usr/bin/redis-cli"
)

// Redis builds image name holding the host's redis-server and redis-cli
// (Debian packages redis-server and redis-tools) with their libraries, empty
// /tmp and /data, and working directory /data, so
//
//	docker run IMAGE --port 6380 --appendonly yes --dir /data
//
// runs a server. Like the official redis image, it turns protected mode off
// (entrypoint "redis-server --protected-mode no"): on a bridge network clients
// never come from loopback, so protected mode would refuse them all. As the
// entrypoint already passes options, arguments must be options too; to use a
// config file, override the entrypoint. The error wraps ErrNotInstalled when
// the packages are missing.
func Redis(ctx context.Context, eng Engine, name string) error {
	for _, p := range []string{RedisServerPath, RedisCLIPath} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("testimage %s: %s: %w (apt-get install redis-server redis-tools)", name, p, ErrNotInstalled)
		}
	}
	return Build(ctx, eng, name, Spec{
		Binaries:   []string{RedisServerPath, RedisCLIPath},
		Dirs:       []Dir{{Path: "/tmp", Mode: 0o777 | os.ModeSticky}, {Path: "/data", Mode: 0o755}},
		WorkingDir: "/data",
		Entrypoint: []string{RedisServerPath, "--protected-mode", "no"},
	})
}

// BuildStaticGo compiles the Go main package in pkgDir with CGO_ENABLED=0
// (so it needs no libc) and builds image name holding only that binary, at
// /<last element of pkgDir>, as its entrypoint, plus an empty /tmp. The
// compile is reproducible (-trimpath, no VCS stamp), so an unchanged program
// yields the same content hash and no image rebuild.
func BuildStaticGo(ctx context.Context, eng Engine, name, pkgDir string) error {
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		return fmt.Errorf("testimage %s: %w", name, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("testimage %s: go toolchain: %w (%v)", name, ErrNotInstalled, err)
	}
	tmp, err := os.MkdirTemp("", "testimage-")
	if err != nil {
		return fmt.Errorf("testimage %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	base := filepath.Base(abs)
	out := filepath.Join(tmp, base)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testimage %s: go build %s: %w: %s", name, pkgDir, err, msg)
	}
	return Build(ctx, eng, name, Spec{
		Files:      []File{{Path: "/" + base, HostPath: out, Mode: 0o755}},
		Dirs:       []Dir{{Path: "/tmp", Mode: 0o777 | os.ModeSticky}},
		Entrypoint: []string{"/" + base},
	})
}

// ProbeImage is the conventional name of the image Probe builds.
const ProbeImage = "stateful-test/probe:latest"

// Probe builds image name from the probe program next to this file (see
// package probe's documentation): a static server and toolbox for container
// tests, entrypoint /probe.
func Probe(ctx context.Context, eng Engine, name string) error {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("testimage %s: cannot locate the probe sources", name)
	}
	return BuildStaticGo(ctx, eng, name, filepath.Join(filepath.Dir(self), "probe"))
}
