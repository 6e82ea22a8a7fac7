package maintainer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/internal/reconcile"
)

// handle implements stateful.Handle on a Maintainer.
type handle struct{ m *Maintainer }

var _ stateful.Handle = handle{}

// Tasks implements stateful.Handle: the stored tasks with their latest
// stats.
func (h handle) Tasks(inst *stateful.Instance) []*stateful.Task {
	return h.m.WithStats(h.m.store.Tasks(inst.Name))
}

// execMargin is kept from the caller's deadline for the reply to travel
// back, so the executor gives up on the command before the caller gives up
// on the reply.
const execMargin = 500 * time.Millisecond

// Exec implements stateful.Handle: the command goes to the task's executor
// as an exec framework message, and the executor's exec_result is awaited
// until ctx ends.
func (h handle) Exec(ctx context.Context, task *stateful.Task, cmd []string) (stateful.ExecResult, error) {
	if task == nil {
		return stateful.ExecResult{}, errors.New("exec: no task")
	}
	cur, err := h.m.store.Task(task.Instance, task.Ordinal)
	if err != nil {
		return stateful.ExecResult{}, fmt.Errorf("exec in %s: %w", task.Name, err)
	}
	if !cur.State.IsRunning() || cur.AgentID == "" {
		return stateful.ExecResult{}, fmt.Errorf("exec in %s: the task is %s, not running", cur.Name, cur.State)
	}
	id, err := newExecID()
	if err != nil {
		return stateful.ExecResult{}, err
	}
	req := &protocol.Exec{ID: id, TaskID: cur.TaskID, Cmd: cmd}
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline) - execMargin
		if left < time.Second {
			left = min(time.Until(deadline), time.Second)
		}
		if left <= 0 {
			return stateful.ExecResult{}, fmt.Errorf("exec in %s: %w", cur.TaskID, context.DeadlineExceeded)
		}
		req.TimeoutSeconds = min(left, protocol.MaxExecTimeout).Seconds()
	}
	if err := req.Validate(); err != nil {
		return stateful.ExecResult{}, fmt.Errorf("exec in %s: %w", cur.TaskID, err)
	}
	data, err := protocol.EncodeMessage(req)
	if err != nil {
		return stateful.ExecResult{}, fmt.Errorf("exec in %s: %w", cur.TaskID, err)
	}
	reply := h.m.execs.add(id)
	defer h.m.execs.remove(id)
	glog.V(1).Infof("maintainer: exec %s in %s: %q", id, cur.TaskID, cmd)
	if err := h.m.messenger.Message(ctx, cur.AgentID, reconcile.ExecutorID(cur.TaskID), data); err != nil {
		return stateful.ExecResult{}, fmt.Errorf("exec in %s: send: %w", cur.TaskID, err)
	}
	select {
	case r := <-reply:
		if r.result == nil {
			return stateful.ExecResult{}, fmt.Errorf("exec in %s: the executor refused: %s", cur.TaskID, r.err)
		}
		res := stateful.ExecResult{ExitCode: r.result.ExitCode, Stdout: r.result.Stdout, Stderr: r.result.Stderr}
		if r.result.Error != "" {
			return res, fmt.Errorf("exec in %s: %s", cur.TaskID, r.result.Error)
		}
		return res, nil
	case <-ctx.Done():
		return stateful.ExecResult{}, fmt.Errorf("exec in %s: no reply from the executor: %w", cur.TaskID, ctx.Err())
	}
}

func newExecID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Promote implements stateful.Handle in one write of the instance and its
// tasks.
func (h handle) Promote(ctx context.Context, inst *stateful.Instance, task *stateful.Task) error {
	if inst == nil || task == nil {
		return errors.New("promote: no instance or task")
	}
	var changed []*stateful.Task
	_, err := h.m.store.UpdateInstance(ctx, inst.Name, func(w *stateful.Instance) error {
		changed = changed[:0]
		if w.Status == stateful.StatusDeleting {
			return stateful.ErrDeleting
		}
		if w.Type == stateful.TypeCluster {
			return fmt.Errorf("promote %s: a C instance's peers are all masters", task.Name)
		}
		var target *stateful.Task
		for _, t := range w.Tasks {
			if t.Ordinal == task.Ordinal {
				target = t
			}
		}
		if target == nil {
			return fmt.Errorf("promote %s: %w", task.Name, stateful.ErrNotFound)
		}
		if target.Role == stateful.RoleMaster && w.MasterOrdinal == target.Ordinal {
			return errSkip
		}
		for _, t := range w.Tasks {
			if t.Role == stateful.RoleMaster {
				t.Role = stateful.RoleSlave
				changed = append(changed, t)
			}
		}
		target.Role = stateful.RoleMaster
		changed = append(changed, target)
		w.MasterOrdinal = target.Ordinal
		return nil
	})
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		return err
	}
	glog.Infof("maintainer: instance %s: %s promoted to master", inst.Name, task.Name)
	for _, t := range changed {
		h.m.tellRole(ctx, t)
	}
	h.m.enqueue(inst.Name)
	return nil
}

// Relaunch implements stateful.Handle: the current attempt is marked for
// relaunch (durably) and killed; once it has ended the ordinal is queued
// again.
func (h handle) Relaunch(ctx context.Context, task *stateful.Task) error {
	if task == nil {
		return errors.New("relaunch: no task")
	}
	return h.m.relaunch(ctx, task.Instance, task.Ordinal, "")
}
