package workload

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
)

// Fencing a master that may still run.
//
// A master reported TASK_UNREACHABLE (its agent is partitioned, paused or
// its process restarting) may still serve clients. Promoting a slave then
// risks two masters, and losing writes the old one acknowledged through a
// slave that is then re-pointed. The fence is Redis' own: with
// min-replicas-to-write N (N >= 1) a master refuses writes
// (-NOREPLICAS) once fewer than N replicas acknowledged its stream within
// min-replicas-max-lag seconds. So before choosing a successor, MasterLost
// cuts every running slave from the old master (each replicates an address
// that refuses, keeping its data and offset), and waits until the old
// master cannot count a single replica any more: min-replicas-max-lag
// seconds plus 2 (Redis counts lag in whole seconds and refreshes the count
// once a second). From then on the old master accepts no write, and the
// slaves' offsets no longer move: every write the old master acknowledged
// (WAIT reached a replica) is on the slave with the highest offset, which
// is the one promoted. (Choosing first would not do: the old master keeps
// streaming until the cut, and the other slave may get ahead meanwhile.)
// A slave that runs but cannot be reached fails the callback (the toolkit
// retries): it might still acknowledge the old master's writes.
//
// Without min-replicas-to-write (0, Redis' default) there is no fence: the
// promotion happens at once, and an isolated master keeps accepting writes
// that are lost when it is replaced.

// fenceSlack is what Redis' whole-second lag and once-a-second refresh add
// to min-replicas-max-lag before a master stops counting a replica.
const fenceSlack = 2 * time.Second

// mayStillRun says whether a lost master's process may still serve: the
// agent did not see it end.
func mayStillRun(s stateful.TaskState) bool {
	switch s {
	case stateful.TaskFailed, stateful.TaskFinished, stateful.TaskKilled, stateful.TaskError, stateful.TaskDropped:
		return false
	}
	return true
}

// fence cuts every running slave of inst from the lost master and waits
// until the lost master refuses writes.
func (r *Redis) fence(ctx context.Context, h stateful.Handle, inst *stateful.Instance, lost *stateful.Task) error {
	var slaves []*stateful.Task
	for _, t := range h.Tasks(inst) {
		if t.Role == stateful.RoleSlave && t.State.IsRunning() && !sameTask(t, lost) {
			slaves = append(slaves, t)
		}
	}
	if len(slaves) == 0 {
		return nil // nothing acknowledges its writes
	}
	toWrite, maxLag, err := r.minReplicas(ctx, h, slaves)
	if err != nil {
		return err
	}
	if toWrite < 1 {
		glog.Warningf("instance %s: master %s is %s and may still accept writes; min-replicas-to-write is 0, so nothing fences it", inst.Name, lost.Name, lost.State)
		return nil
	}
	// quiet is how long every slave has already been cut from the old
	// master: its link down that long.
	quiet := time.Duration(1<<62 - 1)
	var errs []error
	for _, t := range slaves {
		inf, err := r.info(ctx, onTask(h, t), t, "replication")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		quiet = min(quiet, linkDownFor(inf))
		host, _, err := addrOf(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Port 1 of its own host refuses: the slave keeps its data and
		// offset, and acknowledges nobody.
		if err := r.replicaOf(ctx, onTask(h, t), t, host, "1"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fence %s: a running slave may still acknowledge its writes: %w", lost.Name, err)
	}
	wait := time.Duration(maxLag)*time.Second + fenceSlack - quiet
	if wait <= 0 {
		glog.Infof("instance %s: every slave has been cut from %s for %v: it refuses writes already", inst.Name, lost.Name, quiet)
		return nil
	}
	glog.Infof("instance %s: slaves cut from %s (%s); waiting %v until it refuses writes (min-replicas-max-lag %ds)", inst.Name, lost.Name, lost.State, wait, maxLag)
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fence %s: %w", lost.Name, ctx.Err())
	}
}

// minReplicas reads min-replicas-to-write and min-replicas-max-lag from
// the first of tasks that answers: every task of an instance runs the same
// configuration.
func (r *Redis) minReplicas(ctx context.Context, h stateful.Handle, tasks []*stateful.Task) (toWrite, maxLag int, err error) {
	var errs []error
	for _, task := range tasks {
		out, err := r.cli(ctx, onTask(h, task), task, "CONFIG", "GET", "min-replicas-*")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fields := strings.Fields(out)
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.Atoi(fields[i+1])
			if err != nil {
				return 0, 0, fmt.Errorf("CONFIG GET min-replicas-* on %s: %q", task.Name, out)
			}
			switch fields[i] {
			case "min-replicas-to-write":
				toWrite = v
			case "min-replicas-max-lag":
				maxLag = v
			}
		}
		return toWrite, maxLag, nil
	}
	return 0, 0, fmt.Errorf("reading min-replicas-*: %w", errors.Join(errs...))
}

// linkDownFor is how long a slave's link to its master has been down
// (zero while up: it acknowledges every second).
func linkDownFor(inf Info) time.Duration {
	if inf["master_link_status"] == "up" {
		return 0
	}
	s, err := strconv.Atoi(inf["master_link_down_since_seconds"])
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
