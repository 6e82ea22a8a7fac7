package workload

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mesos-stateful/stateful"
)

// runFunc runs a command inside one task: Handle.Exec bound to the task in
// the scheduler, the executor's ExecFunc next to it.
type runFunc func(ctx context.Context, cmd []string) (stateful.ExecResult, error)

// onTask binds h.Exec to task.
func onTask(h stateful.Handle, task *stateful.Task) runFunc {
	return func(ctx context.Context, cmd []string) (stateful.ExecResult, error) {
		return h.Exec(ctx, task, cmd)
	}
}

// cli runs redis-cli inside task against the task's own server and returns
// its output, trimmed. redis-cli exits 0 on an error reply, so callers check
// the output they expect.
func (r *Redis) cli(ctx context.Context, run runFunc, task *stateful.Task, args ...string) (string, error) {
	host, port, err := addrOf(task)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.ExecTimeout)
	defer cancel()
	cmd := append([]string{r.opts.CLI, "-h", host, "-p", strconv.Itoa(port)}, args...)
	res, err := run(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("%s on %s: %w", strings.Join(args, " "), task.Name, err)
	}
	out := strings.TrimSpace(res.Stdout)
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(res.Stderr)
		if msg == "" {
			msg = out
		}
		return "", fmt.Errorf("%s on %s: redis-cli exited %d: %s", strings.Join(args, " "), task.Name, res.ExitCode, msg)
	}
	return out, nil
}

// info runs INFO [section] inside task and parses it.
func (r *Redis) info(ctx context.Context, run runFunc, task *stateful.Task, section ...string) (Info, error) {
	out, err := r.cli(ctx, run, task, append([]string{"INFO"}, section...)...)
	if err != nil {
		return nil, err
	}
	inf := ParseInfo(out)
	if inf["role"] == "" && (len(section) == 0 || section[0] == "replication") {
		return nil, fmt.Errorf("INFO on %s: unexpected reply %q", task.Name, firstLine(out))
	}
	return inf, nil
}

// replicaOf runs REPLICAOF inside task: "NO ONE" makes it a master, a host
// and port make it replicate that server. Both are idempotent in Redis (a
// replica told its current master keeps its link).
func (r *Redis) replicaOf(ctx context.Context, run runFunc, task *stateful.Task, target ...string) error {
	out, err := r.cli(ctx, run, task, append([]string{"REPLICAOF"}, target...)...)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(out, "OK") {
		return fmt.Errorf("REPLICAOF %s on %s: %s", strings.Join(target, " "), task.Name, firstLine(out))
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// Info is the parsed output of Redis' INFO command: field name to value.
type Info map[string]string

// ParseInfo parses INFO output: "name:value" lines, with "# Section"
// headers and blank lines ignored. Lines without a colon are skipped.
func ParseInfo(text string) Info {
	inf := Info{}
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			continue
		}
		inf[k] = v
	}
	return inf
}

// Role is Redis' own role: "master" or "slave".
func (inf Info) Role() string { return inf["role"] }

// ReplicationOffset is how much of the replication stream the server has
// (master_repl_offset; a slave keeps it as it applies its master's stream
// and, unlike slave_repl_offset, keeps it once the link to its master is
// gone). ok is false when INFO did not say.
func (inf Info) ReplicationOffset() (offset int64, ok bool) {
	for _, key := range []string{"master_repl_offset", "slave_repl_offset"} {
		if n, err := strconv.ParseInt(inf[key], 10, 64); err == nil && n >= 0 {
			offset, ok = max(offset, n), true
		}
	}
	return offset, ok
}

// LinkUp reports whether a slave's link to its master is up: it has
// finished its initial sync and is streaming.
func (inf Info) LinkUp() bool {
	return inf["master_link_status"] == "up" && inf["master_sync_in_progress"] != "1"
}

// Keys is the number of keys over every database: the sum of the keyspace
// section's "dbN:keys=K,expires=E,avg_ttl=T" lines (none when empty).
func (inf Info) Keys() int64 {
	var total int64
	for k, v := range inf {
		if _, err := strconv.Atoi(strings.TrimPrefix(k, "db")); err != nil || !strings.HasPrefix(k, "db") {
			continue
		}
		for field := range strings.SplitSeq(v, ",") {
			if n, ok := strings.CutPrefix(field, "keys="); ok {
				if c, err := strconv.ParseInt(n, 10, 64); err == nil && c > 0 {
					total += c
				}
			}
		}
	}
	return total
}
