package testimage_test

import (
	"bufio"
	"bytes"
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
	"github.com/mesos-stateful/stateful/internal/testimage"
)

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// engineFor returns a client and a label selector unique to the test; the
// test's containers carrying it are removed when it ends.
func engineFor(t *testing.T) (context.Context, *dockerlib.Client, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cli, err := dockerlib.New(ctx, dockerlib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if err := cli.Available(ctx); err != nil {
		t.Skipf("needs a Docker engine: %v", err)
	}
	sel := map[string]string{"io.stateful.test": "testimage-" + randomSuffix()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.Cleanup(ctx, sel, 0); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ctx, cli, sel
}

// resp sends one RESP command and returns the first reply line.
func resp(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func TestRedisImageRunsAndAnswersPing(t *testing.T) {
	ctx, cli, sel := engineFor(t)
	if err := testimage.Redis(ctx, cli, testimage.RedisImage); err != nil {
		if errors.Is(err, testimage.ErrNotInstalled) {
			t.Skipf("needs redis-server and redis-tools on the host: %v", err)
		}
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	id, err := cli.Run(ctx, dockerlib.ContainerSpec{
		Image:  testimage.RedisImage,
		Cmd:    []string{"--port", "7001", "--appendonly", "yes", "--dir", "/data"},
		Labels: sel,
		Ports:  []dockerlib.PortBinding{{ContainerPort: 7001, HostIP: "127.0.0.1"}},
		Mounts: []dockerlib.Mount{{HostPath: dataDir, ContainerPath: "/data"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := cli.Inspect(ctx, id)
	if err != nil || len(st.Ports) != 1 {
		t.Fatalf("inspect: %+v, %v", st, err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(st.Ports[0].HostPort)))

	// A client on the host, through the bridge's port binding.
	deadline := time.Now().Add(20 * time.Second)
	for {
		reply, err := resp(addr, "PING")
		if err == nil && reply == "+PONG" {
			break
		}
		if time.Now().After(deadline) {
			var logs bytes.Buffer
			_ = cli.Logs(context.Background(), id, &logs, &logs) // the container has likely exited
			t.Fatalf("redis at %s: reply %q, err %v; logs:\n%s", addr, reply, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	if reply, err := resp(addr, "SET", "greeting", "hello"); err != nil || reply != "+OK" {
		t.Fatalf("SET: %q, %v", reply, err)
	}

	// redis-cli inside the container works too.
	res, err := cli.Exec(ctx, id, []string{testimage.RedisCLIPath, "-p", "7001", "get", "greeting"}, nil)
	if err != nil || res.ExitCode != 0 || string(res.Stdout) != "hello\n" {
		t.Fatalf("redis-cli get: %+v (stdout %q stderr %q), %v", res, res.Stdout, res.Stderr, err)
	}
	// --appendonly yes --dir /data wrote to the bind-mounted directory.
	if entries, err := os.ReadDir(dataDir); err != nil || len(entries) == 0 {
		t.Fatalf("data dir after an append-only write: %v, %v", entries, err)
	}
}

func TestBuildIsIdempotentAndReplacesChangedImages(t *testing.T) {
	ctx, cli, _ := engineFor(t)
	name := "stateful-test/throwaway-" + randomSuffix() + ":latest"
	t.Cleanup(func() {
		if err := cli.RemoveImage(context.Background(), name); err != nil {
			t.Errorf("remove test image: %v", err)
		}
	})
	spec := func(content string) testimage.Spec {
		return testimage.Spec{Files: []testimage.File{{Path: "/etc/content", Data: []byte(content)}}}
	}

	if err := testimage.Build(ctx, cli, name, spec("v1")); err != nil {
		t.Fatal(err)
	}
	first, err := cli.InspectImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Labels[testimage.LabelContentHash]) != 64 {
		t.Fatalf("labels %v: no content hash", first.Labels)
	}
	if err := testimage.Build(ctx, cli, name, spec("v1")); err != nil {
		t.Fatal(err)
	}
	same, err := cli.InspectImage(ctx, name)
	if err != nil || same.ID != first.ID || !same.Created.Equal(first.Created) {
		t.Fatalf("unchanged content rebuilt the image: %s -> %s (%v)", first.ID, same.ID, err)
	}

	if err := testimage.Build(ctx, cli, name, spec("v2")); err != nil {
		t.Fatal(err)
	}
	second, err := cli.InspectImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID == first.ID || second.Labels[testimage.LabelContentHash] == first.Labels[testimage.LabelContentHash] {
		t.Fatalf("changed content kept image %s", first.ID)
	}
	if _, err := cli.InspectImage(ctx, first.ID); !dockerlib.IsNotFound(err) {
		t.Errorf("replaced image %s still present (%v)", first.ID, err)
	}
}

func TestStaticGoImageRunsAlone(t *testing.T) {
	ctx, cli, sel := engineFor(t)
	if err := testimage.Probe(ctx, cli, testimage.ProbeImage); err != nil {
		t.Fatal(err)
	}
	id, err := cli.Run(ctx, dockerlib.ContainerSpec{Image: testimage.ProbeImage, Cmd: []string{"exit", "3", "from scratch"}, Labels: sel})
	if err != nil {
		t.Fatal(err)
	}
	exit, err := cli.Wait(ctx, id)
	if err != nil || exit.Code != 3 {
		t.Fatalf("Wait = %v, %v; want code 3", exit, err)
	}
	var out bytes.Buffer
	if err := cli.Logs(ctx, id, &out, nil); err != nil || out.String() != "from scratch" {
		t.Fatalf("logs %q, %v", out.String(), err)
	}
}
