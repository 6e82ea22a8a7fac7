package mesoslib

import (
	"context"
	"errors"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// OperationHandler is implemented by a Handler that sends offer
// operations with IDs and wants their feedback (UPDATE_OPERATION_STATUS).
// A status is acknowledged only when OperationStatus returns nil, so
// return nil only once it is persisted; Mesos resends it until then.
type OperationHandler interface {
	OperationStatus(ctx context.Context, status mesos.OperationStatus) error
}

// operationStatus hands operation feedback to the handler and acknowledges
// it once recorded (a status without a uuid, e.g. a reconciliation answer
// or OPERATION_ERROR, needs no acknowledgement).
func (c *Client) operationStatus(ctx context.Context, s mesos.OperationStatus) {
	oh, ok := c.handler.(OperationHandler)
	if !ok {
		glog.V(1).Infof("mesoslib: ignoring feedback %s of operation %s", s.GetState(), s.GetOperationID().GetValue())
		return
	}
	if err := oh.OperationStatus(ctx, s); err != nil {
		glog.V(1).Infof("mesoslib: feedback %s of operation %s not recorded, not acknowledging (Mesos will resend): %v", s.GetState(), s.GetOperationID().GetValue(), err)
		return
	}
	if s.UUID == nil || s.GetAgentID().GetValue() == "" {
		return
	}
	ack := calls.AcknowledgeOperationStatus(s.GetAgentID().GetValue(), "", s.UUID.GetValue(), s.GetOperationID().GetValue())
	if err := c.call(ctx, ack); err != nil {
		glog.Warningf("mesoslib: acknowledge feedback %s of operation %s: %v", s.GetState(), s.GetOperationID().GetValue(), err)
	}
}

// ReconcileOperations asks Mesos for the latest status of operations
// (operation ID → agent ID); the answers arrive as operation statuses.
func (c *Client) ReconcileOperations(ctx context.Context, ops map[string]string) error {
	if len(ops) == 0 {
		return errors.New("mesoslib: RECONCILE_OPERATIONS: no operations")
	}
	req := make([]calls.ReconcileOperationRequest, 0, len(ops))
	for id, agent := range ops {
		req = append(req, calls.ReconcileOperationRequest{OperationID: id, AgentID: agent})
	}
	return c.call(ctx, calls.ReconcileOperations(req))
}
