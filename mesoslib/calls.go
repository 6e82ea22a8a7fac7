package mesoslib

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/callrules"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/apierrors"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Accept uses offers, all from one agent, for operations (typically one
// calls.OpLaunch of TaskInfos), applied in order. What the operations leave
// is declined for refuse (0: no filter; Mesos' own default is 5 s).
// The outcome arrives as updates: a stale offer makes every task
// TASK_DROPPED.
func (c *Client) Accept(ctx context.Context, offerIDs []mesos.OfferID, ops []mesos.Offer_Operation, refuse time.Duration) error {
	if err := checkOfferIDs(offerIDs); err != nil {
		return fmt.Errorf("mesoslib: ACCEPT: %w", err)
	}
	if len(ops) == 0 {
		return errors.New("mesoslib: ACCEPT: no operations (use Decline)")
	}
	for i, op := range ops {
		if err := checkOperation(op); err != nil {
			return fmt.Errorf("mesoslib: ACCEPT: operation %d: %w", i, err)
		}
	}
	if refuse < 0 {
		return fmt.Errorf("mesoslib: ACCEPT: refuse %v: must not be negative", refuse)
	}
	call := calls.Accept(calls.OfferOperations(ops).WithOffers(offerIDs...)).With(calls.RefuseSeconds(refuse))
	return c.call(ctx, call)
}

// Decline returns offers, filtering their resources out of new offers for
// refuse (0: no filter, offered again at the next allocation).
func (c *Client) Decline(ctx context.Context, offerIDs []mesos.OfferID, refuse time.Duration) error {
	if err := checkOfferIDs(offerIDs); err != nil {
		return fmt.Errorf("mesoslib: DECLINE: %w", err)
	}
	if refuse < 0 {
		return fmt.Errorf("mesoslib: DECLINE: refuse %v: must not be negative", refuse)
	}
	return c.call(ctx, calls.Decline(offerIDs...).With(calls.RefuseSeconds(refuse)))
}

// Revive asks for offers again for roles (none: all the framework's roles)
// and clears every decline filter.
func (c *Client) Revive(ctx context.Context, roles ...string) error {
	if err := checkRoles(roles); err != nil {
		return fmt.Errorf("mesoslib: REVIVE: %w", err)
	}
	return c.call(ctx, calls.ReviveWith(roles))
}

// Suppress stops offers for roles (none: all the framework's roles) until
// Revive.
func (c *Client) Suppress(ctx context.Context, roles ...string) error {
	if err := checkRoles(roles); err != nil {
		return fmt.Errorf("mesoslib: SUPPRESS: %w", err)
	}
	return c.call(ctx, calls.SuppressWith(roles))
}

// Kill asks the task's executor to kill it. agentID may be empty. The
// result is an update (TASK_KILLING, then TASK_KILLED); for a task Mesos
// does not know, a reconciliation answer.
func (c *Client) Kill(ctx context.Context, taskID mesos.TaskID, agentID mesos.AgentID) error {
	if taskID.Value == "" {
		return errors.New("mesoslib: KILL: empty task ID")
	}
	return c.call(ctx, calls.Kill(taskID.Value, agentID.Value))
}

// Shutdown stops an executor and every task it runs.
func (c *Client) Shutdown(ctx context.Context, executorID mesos.ExecutorID, agentID mesos.AgentID) error {
	if executorID.Value == "" || agentID.Value == "" {
		return errors.New("mesoslib: SHUTDOWN: executor ID and agent ID are required")
	}
	return c.call(ctx, calls.Shutdown(executorID.Value, agentID.Value))
}

// Reconcile asks Mesos for the state of tasks; the answers arrive as
// updates. No tasks: implicit reconciliation of every task Mesos knows.
func (c *Client) Reconcile(ctx context.Context, tasks []TaskRef) error {
	call := calls.Reconcile()
	for i, t := range tasks {
		if t.TaskID.Value == "" {
			return fmt.Errorf("mesoslib: RECONCILE: task %d: empty task ID", i)
		}
		rt := scheduler.Call_Reconcile_Task{TaskID: t.TaskID}
		if t.AgentID.Value != "" {
			agentID := t.AgentID
			rt.AgentID = &agentID
		}
		call.Reconcile.Tasks = append(call.Reconcile.Tasks, rt)
	}
	return c.call(ctx, call)
}

// Message sends data to an executor (best effort).
func (c *Client) Message(ctx context.Context, agentID mesos.AgentID, executorID mesos.ExecutorID, data []byte) error {
	if agentID.Value == "" || executorID.Value == "" {
		return errors.New("mesoslib: MESSAGE: agent ID and executor ID are required")
	}
	return c.call(ctx, calls.Message(agentID.Value, executorID.Value, data))
}

// Teardown removes the framework from Mesos: every task and executor is
// killed and no further updates come. The stored framework ID is cleared
// so that the next start registers a new framework, and Run returns
// ErrTornDown.
func (c *Client) Teardown(ctx context.Context) error {
	if !c.tearingDown.CompareAndSwap(false, true) {
		return errors.New("mesoslib: TEARDOWN: already in progress")
	}
	if err := c.call(ctx, &scheduler.Call{Type: scheduler.Call_TEARDOWN}); err != nil {
		c.tearingDown.Store(false)
		return err
	}
	glog.Infof("mesoslib: framework %s torn down", c.FrameworkID())
	var err error
	if err = c.store.SetFrameworkID(ctx, ""); err != nil {
		err = fmt.Errorf("mesoslib: TEARDOWN done, but clearing the stored framework ID failed: %w", err)
	}
	c.fatal(ErrTornDown)
	return err
}

// call sends a call and reports any failure as an error, ErrNotConnected
// (wrapped) when there is no subscription.
func (c *Client) call(ctx context.Context, call *scheduler.Call) error {
	if !c.connected.Load() {
		return fmt.Errorf("mesoslib: %s: %w", call.Type, ErrNotConnected)
	}
	err := calls.CallNoData(ctx, c.caller, call)
	switch {
	case err == nil:
		return nil
	case apierrors.CodeUnsubscribed.Matches(err):
		// From the master (a 403) or from httpsched, whose stream already
		// ended; either way the subscription is gone.
		why := fmt.Errorf("%s refused: %s", call.Type, strings.TrimSpace(err.Error()))
		c.noteDisconnect(why)
		return fmt.Errorf("mesoslib: %w: %v", ErrNotConnected, why)
	}
	return fmt.Errorf("mesoslib: %s: %s", call.Type, strings.TrimSpace(err.Error()))
}

// logCalls logs every call but heartbeats' worth of noise at -v=2, and
// failures at -v=1.
func logCalls(ctx context.Context, call *scheduler.Call, resp mesos.Response, err error, ch callrules.Chain) (context.Context, *scheduler.Call, mesos.Response, error) {
	ctx, call, resp, err = ch(ctx, call, resp, err)
	if err != nil {
		glog.V(1).Infof("mesoslib: call %s failed: %v", call.Type, err)
	} else if glog.V(2) {
		glog.Infof("mesoslib: call %s", describeCall(call))
	}
	return ctx, call, resp, err
}

func describeCall(call *scheduler.Call) string {
	switch call.Type {
	case scheduler.Call_ACCEPT:
		var tasks []string
		for _, op := range call.Accept.Operations {
			for _, t := range op.GetLaunch().GetTaskInfos() {
				tasks = append(tasks, t.TaskID.Value)
			}
		}
		return fmt.Sprintf("ACCEPT offers %v launching %v", offerIDValues(call.Accept.OfferIDs), tasks)
	case scheduler.Call_DECLINE:
		return fmt.Sprintf("DECLINE offers %v for %vs", offerIDValues(call.Decline.OfferIDs), call.Decline.GetFilters().GetRefuseSeconds())
	case scheduler.Call_ACKNOWLEDGE:
		return fmt.Sprintf("ACKNOWLEDGE task %s on agent %s", call.Acknowledge.TaskID.Value, call.Acknowledge.AgentID.Value)
	case scheduler.Call_KILL:
		return fmt.Sprintf("KILL task %s", call.Kill.TaskID.Value)
	case scheduler.Call_RECONCILE:
		return fmt.Sprintf("RECONCILE %d tasks", len(call.Reconcile.Tasks))
	}
	return call.Type.String()
}

func offerIDValues(ids []mesos.OfferID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Value
	}
	return out
}

func checkOfferIDs(ids []mesos.OfferID) error {
	if len(ids) == 0 {
		return errors.New("no offer IDs")
	}
	for i, id := range ids {
		if id.Value == "" {
			return fmt.Errorf("offer ID %d is empty", i)
		}
	}
	return nil
}

func checkOperation(op mesos.Offer_Operation) error {
	switch op.Type {
	case mesos.Offer_Operation_LAUNCH:
		if op.Launch == nil || len(op.Launch.TaskInfos) == 0 {
			return errors.New("LAUNCH without tasks")
		}
		for _, t := range op.Launch.TaskInfos {
			switch {
			case t.TaskID.Value == "":
				return fmt.Errorf("task %q: empty task ID", t.Name)
			case t.AgentID.Value == "":
				return fmt.Errorf("task %s: empty agent ID", t.TaskID.Value)
			case (t.Command == nil) == (t.Executor == nil):
				return fmt.Errorf("task %s: needs exactly one of command and executor", t.TaskID.Value)
			}
		}
	case mesos.Offer_Operation_UNKNOWN:
		return errors.New("operation type not set")
	}
	return nil
}

func checkRoles(roles []string) error {
	for _, r := range roles {
		if err := validateRole(r); err != nil {
			return fmt.Errorf("role %q: %w", r, err)
		}
	}
	return nil
}
