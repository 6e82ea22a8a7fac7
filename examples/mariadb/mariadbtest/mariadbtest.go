// Package mariadbtest holds what the MariaDB example's e2e test and
// bench/mariadbfailover share on top of redistest's cluster environment
// (nothing in which is Redis-specific but its name): SQL through the
// mariadb client, killing a task's mariadbd, and a client writing rows
// through the primary GET names.
package mariadbtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/examples/mariadb/workload"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
)

// Need reports the first MariaDB program missing from PATH, naming the
// Debian packages that bring it.
func Need() error {
	for _, p := range []string{"mariadbd", "mariadb", "mariadb-dump", "mariadb-install-db"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("needs %s (apt-get install mariadb-server mariadb-client): %w", p, err)
		}
	}
	return nil
}

// SQL runs statements as the app user against task's server and returns
// the output without headers, trimmed; the error names the statement, the
// task and what the client printed.
func SQL(ctx context.Context, task *stateful.Task, stmt string) (string, error) {
	out, err := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-h", task.Host, "-P", strconv.Itoa(task.Ports[workload.PortName]),
		"-u", workload.AppUser, "-N", "-B", "-e", stmt).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s on %s: %w: %s", stmt, task.Name, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// KillServer kills task's mariadbd with SIGKILL, found through the pid file
// the server reports; the server must be on this machine (runtime process).
func KillServer(ctx context.Context, task *stateful.Task) error {
	pidFile, err := SQL(ctx, task, "SELECT @@pid_file")
	if err != nil {
		return err
	}
	if !filepath.IsAbs(pidFile) {
		return fmt.Errorf("%s's pid file %q is not an absolute path", task.Name, pidFile)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("%s's pid file %s: %w", task.Name, pidFile, err)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

// Writer inserts rows into t.w (k INT PRIMARY KEY) through the primary GET
// names, one statement (and commit) per row; on an error it asks GET again
// and retries the same row. It keeps the rows whose INSERT returned and the
// longest time between two of them.
type Writer struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	acked []int
	gap   time.Duration
}

// StartWriter starts writing to the named instance until Stop.
func StartWriter(ctx context.Context, env *redistest.Env, name string) *Writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.run(ctx, env, name)
	}()
	return w
}

func (w *Writer) run(ctx context.Context, env *redistest.Env, name string) {
	last := time.Now()
	for i := 0; ctx.Err() == nil; {
		inst, _, err := env.Get(ctx, name)
		var m *stateful.Task
		if err == nil && inst != nil {
			m = redistest.Master(inst)
		}
		if m == nil || m.State != stateful.TaskRunning {
			pause(ctx)
			continue
		}
		if _, err := SQL(ctx, m, fmt.Sprintf("INSERT INTO t.w VALUES (%d)", i)); err != nil {
			// Refused (read-only) or the primary is gone; a duplicate
			// key means an earlier try did commit.
			if out, _ := SQL(ctx, m, fmt.Sprintf("SELECT COUNT(*) FROM t.w WHERE k=%d", i)); out != "1" {
				pause(ctx)
				continue
			}
		}
		now := time.Now()
		w.mu.Lock()
		w.acked = append(w.acked, i)
		w.gap = max(w.gap, now.Sub(last))
		w.mu.Unlock()
		last = now
		i++
	}
}

// pause waits as a client would before retrying, so that a writer without
// a primary does not spin on GET.
func pause(ctx context.Context) {
	t := time.NewTimer(5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stop ends the writes and waits for the writer to return.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
}

// Result returns the committed rows' keys and the longest gap between two
// commits.
func (w *Writer) Result() ([]int, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked), w.gap
}
