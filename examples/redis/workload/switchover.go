package workload

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
)

// switchoverPause bounds how long the old master refuses writes during a
// switchover: Redis lifts the pause by itself after it, should the
// scheduler die half-way.
const switchoverPause = 10 * time.Second

// switchoverPoll is how often the new master's offset is read while it
// catches up.
const switchoverPoll = 10 * time.Millisecond

// Switchover moves the master role from from to to with Redis' own means:
// CLIENT PAUSE WRITE on the old master (its clients' writes wait), wait
// until to has applied the old master's whole replication stream, REPLICAOF
// NO ONE on to, point the old master and every other slave at it, and lift
// the pause: the writes that waited then meet a replica (READONLY) and the
// clients retry on the new master, so no acknowledged write is lost.
//
// Every step is idempotent: on a retry the old master may already be a
// replica (no pause, no wait) and to already a master.
func (r *Redis) Switchover(ctx context.Context, h stateful.Handle, inst *stateful.Instance, from, to *stateful.Task) error {
	runFrom, runTo := onTask(h, from), onTask(h, to)
	inf, err := r.info(ctx, runFrom, from, "replication")
	if err != nil {
		return fmt.Errorf("instance %s: switchover: %w", inst.Name, err)
	}
	if inf.Role() == "master" {
		ms := strconv.FormatInt(switchoverPause.Milliseconds(), 10)
		out, err := r.cli(ctx, runFrom, from, "CLIENT", "PAUSE", ms, "WRITE")
		if err != nil {
			return fmt.Errorf("instance %s: switchover: %w", inst.Name, err)
		}
		if !strings.HasPrefix(out, "OK") {
			return fmt.Errorf("instance %s: CLIENT PAUSE on %s: %s", inst.Name, from.Name, firstLine(out))
		}
		// Read the offset after the pause: nothing is written after it.
		if inf, err = r.info(ctx, runFrom, from, "replication"); err != nil {
			return fmt.Errorf("instance %s: switchover: %w", inst.Name, err)
		}
		want, ok := inf.ReplicationOffset()
		if !ok {
			return fmt.Errorf("instance %s: %s reports no replication offset", inst.Name, from.Name)
		}
		if err := r.catchUp(ctx, runTo, to, want); err != nil {
			r.unpause(ctx, runFrom, from)
			return fmt.Errorf("instance %s: switchover to %s: %w", inst.Name, to.Name, err)
		}
	}
	if err := r.replicaOf(ctx, runTo, to, "NO", "ONE"); err != nil {
		r.unpause(ctx, runFrom, from)
		return fmt.Errorf("instance %s: promote %s: %w", inst.Name, to.Name, err)
	}
	host, port, err := addrOf(to)
	if err != nil {
		return err
	}
	if err := r.replicaOf(ctx, runFrom, from, host, strconv.Itoa(port)); err != nil {
		r.unpause(ctx, runFrom, from)
		return fmt.Errorf("instance %s: re-point %s: %w", inst.Name, from.Name, err)
	}
	r.unpause(ctx, runFrom, from)
	glog.Infof("instance %s: switched over from %s to %s", inst.Name, from.Name, to.Name)
	return r.repoint(ctx, h, inst, to, from)
}

// catchUp waits until task has applied the replication stream up to want.
func (r *Redis) catchUp(ctx context.Context, run runFunc, task *stateful.Task, want int64) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for offset %d: %w", want, ctx.Err())
		case <-t.C:
		}
		inf, err := r.info(ctx, run, task, "replication")
		if err != nil {
			return err
		}
		if off, ok := inf.ReplicationOffset(); (ok && off >= want) || inf.Role() == "master" {
			return nil
		}
		t.Reset(switchoverPoll)
	}
}

// unpause lifts a CLIENT PAUSE, best effort (it ends by itself anyway).
func (r *Redis) unpause(ctx context.Context, run runFunc, task *stateful.Task) {
	if _, err := r.cli(ctx, run, task, "CLIENT", "UNPAUSE"); err != nil {
		glog.Warningf("%s: CLIENT UNPAUSE: %v (the pause ends by itself within %v)", task.Name, err, switchoverPause)
	}
}
