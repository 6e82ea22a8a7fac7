package workload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
)

// MasterLost fails an MS instance over to the running slave that has
// replicated the most: it makes that slave a master (REPLICAOF NO ONE),
// records the promotion, and re-points every other running slave at it. The
// toolkit then relaunches the lost ordinal, as a slave of the new master.
//
// Every step is idempotent, so a retry after an error (or after a
// scheduler restart) carries on where the last attempt stopped: once the
// promotion is stored, a retry re-applies it instead of choosing again.
//
// When no slave runs (and for an S instance) nothing is promoted: the master
// is relaunched in place, back on the agent holding its volume, and reloads
// its append-only file. When slaves run but none answers, MasterLost fails
// (and is retried) rather than relaunch an empty master their next sync
// would copy.
func (r *Redis) MasterLost(ctx context.Context, h stateful.Handle, inst *stateful.Instance, lost *stateful.Task) error {
	if inst.Type != stateful.TypeMasterSlave {
		return nil
	}
	tasks := h.Tasks(inst)
	next := masterOf(inst, tasks)
	if next == nil || sameTask(next, lost) {
		var err error
		next, err = r.chooseSuccessor(ctx, h, tasks, lost)
		if err != nil {
			return fmt.Errorf("instance %s: fail over from %s: %w", inst.Name, lost.Name, err)
		}
		if next == nil {
			glog.Infof("instance %s: master %s lost and no slave runs: relaunching it in place", inst.Name, lost.Name)
			return nil
		}
	}
	if !next.State.IsRunning() {
		// A promotion stored by an earlier attempt whose task has since
		// ended: its own MasterLost takes over from here.
		glog.Infof("instance %s: new master %s is %s; nothing to re-point", inst.Name, next.Name, next.State)
		return nil
	}
	if err := r.replicaOf(ctx, onTask(h, next), next, "NO", "ONE"); err != nil {
		return fmt.Errorf("instance %s: promote %s: %w", inst.Name, next.Name, err)
	}
	if next.Role != stateful.RoleMaster {
		if err := h.Promote(ctx, inst, next); err != nil {
			return fmt.Errorf("instance %s: record %s as master: %w", inst.Name, next.Name, err)
		}
		glog.Infof("instance %s: %s is the master after %s was lost", inst.Name, next.Name, lost.Name)
	}
	return r.repoint(ctx, h, inst, next, lost)
}

// MasterRunning makes sure the master's server is a master and that every
// running slave replicates it: after a relaunch in place the master may
// listen on a new port.
func (r *Redis) MasterRunning(ctx context.Context, h stateful.Handle, inst *stateful.Instance, task *stateful.Task) error {
	if err := r.replicaOf(ctx, onTask(h, task), task, "NO", "ONE"); err != nil {
		return fmt.Errorf("instance %s: master %s: %w", inst.Name, task.Name, err)
	}
	return r.repoint(ctx, h, inst, task, nil)
}

// SlaveRunning makes sure the slave replicates the current master: the
// master may have moved between the slave's launch and now.
func (r *Redis) SlaveRunning(ctx context.Context, h stateful.Handle, inst *stateful.Instance, task *stateful.Task) error {
	master := masterOf(inst, h.Tasks(inst))
	if master == nil || !master.State.IsRunning() || sameTask(master, task) {
		// A failover is under way; MasterLost or MasterRunning re-points
		// this slave.
		return nil
	}
	host, port, err := addrOf(master)
	if err != nil {
		return err
	}
	if err := r.replicaOf(ctx, onTask(h, task), task, host, strconv.Itoa(port)); err != nil {
		return fmt.Errorf("instance %s: slave %s: %w", inst.Name, task.Name, err)
	}
	return nil
}

// repoint points every running slave of inst other than master and skip at
// master. It tries them all and returns every failure.
func (r *Redis) repoint(ctx context.Context, h stateful.Handle, inst *stateful.Instance, master, skip *stateful.Task) error {
	host, port, err := addrOf(master)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range h.Tasks(inst) {
		if t.Role != stateful.RoleSlave || !t.State.IsRunning() || sameTask(t, master) || (skip != nil && sameTask(t, skip)) {
			continue
		}
		if err := r.replicaOf(ctx, onTask(h, t), t, host, strconv.Itoa(port)); err != nil {
			errs = append(errs, err)
			continue
		}
		glog.V(1).Infof("instance %s: %s replicates %s (%s:%d)", inst.Name, t.Name, master.Name, host, port)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("instance %s: re-point slaves at %s: %w", inst.Name, master.Name, err)
	}
	return nil
}

// candidate is a slave that answered with its replication offset.
type candidate struct {
	task   *stateful.Task
	offset int64
}

// chooseSuccessor asks every running slave but lost how far it has
// replicated and returns the furthest (the smallest ordinal among equals).
// It asks the servers rather than read the stored stats, which lag by up to
// a stats interval. It returns nil, nil when no slave runs, and an error when
// slaves run but none answers.
func (r *Redis) chooseSuccessor(ctx context.Context, h stateful.Handle, tasks []*stateful.Task, lost *stateful.Task) (*stateful.Task, error) {
	var (
		found []candidate
		errs  []error
		asked int
	)
	for _, t := range tasks {
		if t.Role != stateful.RoleSlave || !t.State.IsRunning() || sameTask(t, lost) {
			continue
		}
		asked++
		inf, err := r.info(ctx, onTask(h, t), t, "replication")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		off, ok := inf.ReplicationOffset()
		if !ok {
			errs = append(errs, fmt.Errorf("%s reports no replication offset", t.Name))
			continue
		}
		glog.V(1).Infof("instance %s: slave %s has replicated to offset %d", t.Instance, t.Name, off)
		found = append(found, candidate{task: t, offset: off})
	}
	if asked == 0 {
		return nil, nil
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("none of %d running slaves answered: %w", asked, errors.Join(errs...))
	}
	best := slices.MinFunc(found, func(a, b candidate) int {
		if c := cmp.Compare(b.offset, a.offset); c != 0 {
			return c
		}
		return cmp.Compare(a.task.Ordinal, b.task.Ordinal)
	})
	return best.task, nil
}

func sameTask(a, b *stateful.Task) bool {
	return a.Instance == b.Instance && a.Ordinal == b.Ordinal
}
