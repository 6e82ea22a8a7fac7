// Package redisimage builds, on the local Docker engine, the image the
// Redis example runs when no registry is reachable: FROM scratch, holding
// this host's redis-server and redis-cli (Debian packages redis-server and
// redis-tools) with their libraries, and a shell.
//
// It behaves like the official redis image where the example relies on
// it: redis-server and redis-cli on the PATH, /bin/sh (the spec's command is
// a shell line run with /bin/sh -c), /data as the working directory, and an
// entrypoint that takes redis-server options.
package redisimage

import (
	"context"
	"fmt"
	"os"

	"github.com/mesos-stateful/stateful/internal/testimage"
)

// DefaultName is the tag the example's tasks run by default.
const DefaultName = "redis:7"

// Host programs the image is made of.
const (
	shellPath = "/bin/sh"
)

// Build makes sure image name holds the host's Redis programs, building it
// if it is missing or stale. The error wraps testimage.ErrNotInstalled when
// the Redis packages are missing.
func Build(ctx context.Context, eng testimage.Engine, name string) error {
	for _, p := range []string{testimage.RedisServerPath, testimage.RedisCLIPath, shellPath} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("redis image %s: %s: %w (apt-get install redis-server redis-tools)", name, p, testimage.ErrNotInstalled)
		}
	}
	return testimage.Build(ctx, eng, name, testimage.Spec{
		Binaries: []string{testimage.RedisServerPath, testimage.RedisCLIPath, shellPath},
		Dirs:     []testimage.Dir{{Path: "/tmp", Mode: 0o777 | os.ModeSticky}, {Path: "/data", Mode: 0o755}},
		Env:      map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		// On a bridge network clients never come from loopback, so
		// protected mode would refuse them all (the official image turns
		// it off too).
		Entrypoint: []string{testimage.RedisServerPath, "--protected-mode", "no"},
		WorkingDir: "/data",
	})
}
