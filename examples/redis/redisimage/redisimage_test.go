package redisimage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/examples/redis/redisimage"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
	"github.com/mesos-stateful/stateful/internal/testimage"
)

// testImage is the tag tests build, so that a user's redis:7 is left alone.
const testImage = "stateful-test/redis-example:latest"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestImageRunsTheExampleBothWays runs the image as the docker runtime
// does: the spec's command through /bin/sh -c (the entrypoint replaced),
// and options after the entrypoint; both serve, persist in the mounted
// volume, and answer redis-cli run inside the container.
func TestImageRunsTheExampleBothWays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cli, err := dockerlib.New(ctx, dockerlib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Available(ctx); err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	if err := redisimage.Build(ctx, cli, testImage); err != nil {
		if errors.Is(err, testimage.ErrNotInstalled) {
			t.Skipf("needs redis-server and redis-tools on the host: %v", err)
		}
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	sel := map[string]string{"io.stateful.test": "redisimage-" + hex.EncodeToString(b)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.Cleanup(ctx, sel, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	for name, shape := range map[string]func(port int) ([]string, []string){
		"command": func(port int) ([]string, []string) {
			return []string{"/bin/sh", "-c"}, []string{fmt.Sprintf("redis-server --port %d --bind 127.0.0.1 --protected-mode no --appendonly yes --dir .", port)}
		},
		"entrypoint": func(port int) ([]string, []string) {
			return nil, []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--dir", "/data"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			port := freePort(t)
			dir := t.TempDir()
			entrypoint, cmd := shape(port)
			id, err := cli.Run(ctx, dockerlib.ContainerSpec{
				Image: testImage, Entrypoint: entrypoint, Cmd: cmd, Labels: sel,
				Network: dockerlib.NetworkHost,
				Mounts:  []dockerlib.Mount{{HostPath: dir, ContainerPath: "/data"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			deadline := time.Now().Add(20 * time.Second)
			for {
				reply, err := resp.Do(ctx, resp.Server{Addr: addr}, "SET", "k", "v")
				if err == nil && reply == "OK" {
					break
				}
				if time.Now().After(deadline) {
					var logs strings.Builder
					_ = cli.Logs(context.Background(), id, &logs, &logs)
					t.Fatalf("SET at %s: %v, %v; logs:\n%s", addr, reply, err, logs.String())
				}
				time.Sleep(50 * time.Millisecond) // poll interval
			}
			res, err := cli.Exec(ctx, id, []string{"redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "GET", "k"}, nil)
			if err != nil || res.ExitCode != 0 || string(res.Stdout) != "v\n" {
				t.Fatalf("redis-cli in the container: %+v (stdout %q, stderr %q), %v", res, res.Stdout, res.Stderr, err)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "appendonlydir"))
			if err != nil || len(entries) == 0 {
				t.Errorf("no append-only files in the volume: %v, %v", entries, err)
			}
		})
	}
}
