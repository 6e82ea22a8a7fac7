package dockerlib

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Logs copies the container's output, from its start, to stdout and stderr
// (either may be nil to drop that stream) and follows it until the container
// exits (then it returns nil once everything is copied) or ctx ends (then it
// returns ctx's error). The executor streams a task's output into the Mesos
// sandbox this way.
func (c *Client) Logs(ctx context.Context, id string, stdout, stderr io.Writer) error {
	return c.LogsSince(ctx, id, time.Time{}, stdout, stderr)
}

// LogsSince is Logs starting at since (zero means from the start), so an
// executor that re-attaches to a container does not copy old output again.
func (c *Client) LogsSince(ctx context.Context, id string, since time.Time, stdout, stderr io.Writer) error {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
	if !since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	}
	rc, err := c.api.ContainerLogs(ctx, id, opts)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("logs of container %s: %w", shortID(id), ctx.Err())
		}
		return fmt.Errorf("logs of container %s: %w", shortID(id), err)
	}
	defer rc.Close()
	// Containers are created without a TTY, so the stream is multiplexed.
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	if ctx.Err() != nil {
		return fmt.Errorf("logs of container %s: %w", shortID(id), ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", shortID(id), err)
	}
	return nil
}
