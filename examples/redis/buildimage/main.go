// Command buildimage builds the Docker image the Redis example runs
// (redis:7 unless -image says otherwise) from this host's redis-server and
// redis-cli, for engines that cannot pull from a registry:
//
//	go run ./examples/redis/buildimage
//
// It exits 0 when the image is there, 1 when it could not be built, and 3
// when no Docker engine answers (nothing to do: the example then runs
// redis-server as a plain process).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/examples/redis/redisimage"
)

// exitNoEngine tells scripts that there is no engine to build for.
const exitNoEngine = 3

func main() {
	// Logs (of the Docker client) go to stderr, not to files in /tmp.
	_ = flag.Set("logtostderr", "true")
	name := flag.String("image", redisimage.DefaultName, "tag of the image to build")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	os.Exit(run(*name, *timeout))
}

func run(name string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cli, err := dockerlib.New(ctx, dockerlib.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildimage: docker client: %v\n", err)
		return 1
	}
	defer cli.Close()
	if err := cli.Available(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "buildimage: no Docker engine answers (%v); the example runs redis-server as a process\n", err)
		return exitNoEngine
	}
	if err := redisimage.Build(ctx, cli, name); err != nil {
		fmt.Fprintf(os.Stderr, "buildimage: %v\n", err)
		return 1
	}
	fmt.Printf("image %s is ready\n", name)
	return 0
}
