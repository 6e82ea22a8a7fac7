package dockerlib

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecOutputLimit is how many bytes of each of stdout and stderr Exec keeps;
// the rest is read and dropped so a chatty command cannot exhaust memory.
const ExecOutputLimit = 1 << 20

// ExecResult is the outcome of a command run with Exec.
type ExecResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Truncated is set when either stream exceeded ExecOutputLimit.
	Truncated bool
}

// Exec runs cmd (argv, no shell) in the running container with env added to
// the container's environment, waits for it to finish, and returns its exit
// code and output. A command that cannot be started inside the container
// (e.g. not found) is reported as the engine reports it: exit code 126 or 127
// with the reason on stdout. When ctx ends first Exec returns ctx's error;
// the engine offers no way to kill an exec'd process, so it may run on.
func (c *Client) Exec(ctx context.Context, id string, cmd []string, env map[string]string) (ExecResult, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return ExecResult{}, fmt.Errorf("exec in container %s: command is empty", shortID(id))
	}
	for k := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return ExecResult{}, fmt.Errorf("exec in container %s: env name %q must be non-empty without '=' or NUL", shortID(id), k)
		}
	}
	what := fmt.Sprintf("exec %q in container %s", cmd[0], shortID(id))
	created, err := c.api.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd:          cmd,
		Env:          envList(env),
		AttachStdout: true,
		AttachStderr: true,
	})
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: create: %w", what, err)
	}
	att, err := c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: start: %w", what, err)
	}
	defer att.Close()
	// A hijacked connection ignores ctx once established; closing it is the
	// only way to stop reading.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()

	stdout := &cappedBuffer{limit: ExecOutputLimit}
	stderr := &cappedBuffer{limit: ExecOutputLimit}
	_, copyErr := stdcopy.StdCopy(stdout, stderr, att.Reader)
	if ctx.Err() != nil {
		return ExecResult{}, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	if copyErr != nil {
		return ExecResult{}, fmt.Errorf("%s: read output: %w", what, copyErr)
	}
	code, err := c.execExitCode(ctx, created.ID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("%s: %w", what, err)
	}
	return ExecResult{
		ExitCode:  code,
		Stdout:    stdout.buf,
		Stderr:    stderr.buf,
		Truncated: stdout.dropped > 0 || stderr.dropped > 0,
	}, nil
}

// execExitCode waits for the engine to record the exit. The output stream
// closes when the process exits, but the engine may mark the exec finished a
// moment later, and it offers no event for that; so this polls briefly.
func (c *Client) execExitCode(ctx context.Context, execID string) (int, error) {
	delay := 5 * time.Millisecond
	for {
		ins, err := c.api.ContainerExecInspect(ctx, execID)
		if err != nil {
			return 0, fmt.Errorf("inspect exec: %w", err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// cappedBuffer keeps the first limit bytes written and counts the rest. It
// never fails a write, so the stream it is fed from is drained to the end.
type cappedBuffer struct {
	buf     []byte
	limit   int
	dropped int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	keep := min(max(b.limit-len(b.buf), 0), len(p))
	b.buf = append(b.buf, p[:keep]...)
	b.dropped += len(p) - keep
	return len(p), nil
}
