package httplib

import (
	"context"
	"time"

	"github.com/mesos-stateful/stateful"
)

// Service is what the REST API needs from the rest of the scheduler. The
// framework wires it to creator, destroyer and statemgr; tests use an
// in-memory one.
//
// Contract for every method:
//   - The API has validated the request completely before calling a
//     mutating method (Create, Update, Destroy), so a Service only rejects
//     what depends on the stored state.
//   - Errors are wrapped stateful sentinels, mapped with errors.Is:
//     ErrNotFound → 404, ErrExists, ErrDeleting, ErrConflict → 409,
//     ErrUnavailable → 503, a *stateful.ValidationError → 400 naming its
//     field. Any other error is answered 500 with a generic message (the
//     detail is logged, never sent).
//   - A mutating method returns nil only once the change is durable in the
//     state store (etcd): the API answers 202 as soon as it returns, and a
//     scheduler that crashes right after must still find the change when it
//     restarts. A mutating method that returns an error has changed nothing,
//     except when ctx ended while the write was in flight (then the API says
//     so and the client has to look).
//   - Methods are called concurrently from many requests, and must honour
//     ctx (it carries the request's deadline).
//   - Returned instances are the caller's: copies that share no map, slice or
//     pointer with the Service's own state.
type Service interface {
	// Defaults returns the workload's spec defaults (Workload.Defaults):
	// what a request leaves out is taken from them before validation.
	Defaults() stateful.Spec

	// Create stores a new instance and queues its tasks. inst carries what
	// the request controls (Name, Type, Masters, Slaves and the complete
	// Spec, defaults applied and validated); Status, Generation, timestamps
	// and MasterOrdinal are the Service's to set. It fails with
	// stateful.ErrExists, changing nothing, if the name is taken (including
	// by an instance still being deleted).
	Create(ctx context.Context, inst *stateful.Instance) (*stateful.Instance, error)

	// Update applies patch to the named instance (scale, or a rolling spec
	// change) and bumps its generation. It fails with stateful.ErrNotFound,
	// stateful.ErrDeleting if the instance is being deleted, and
	// stateful.ErrConflict if the stored generation is no longer
	// patch.Generation (another change won; the request may be retried).
	Update(ctx context.Context, name string, patch Patch) (*stateful.Instance, error)

	// Destroy marks the named instance DELETING and starts killing its
	// tasks; the instance disappears (ErrNotFound) once every task is
	// terminal. Destroying an instance that is already DELETING succeeds
	// and changes nothing. Fails with stateful.ErrNotFound.
	Destroy(ctx context.Context, name string) (*stateful.Instance, error)

	// Get returns the named instance with its Tasks filled (including
	// Task.Unplaced, why a queued task is not placed yet). Fails with
	// stateful.ErrNotFound.
	Get(ctx context.Context, name string) (*stateful.Instance, error)

	// List returns every instance, in any order (the API sorts by name).
	List(ctx context.Context) ([]*stateful.Instance, error)

	// Health returns what keeps the scheduler from working (not registered
	// with Mesos, state store unreachable, not the leader...); an empty
	// result means healthy. It must return before ctx's deadline.
	Health(ctx context.Context) []Problem
}

// Patch is a validated change to one instance, computed by the API from a
// PATCH request and the instance as it was at Generation. At least one of
// Slaves and Spec is set, and each one that is set differs from the stored
// value.
type Patch struct {
	// Generation is the instance's generation the patch was computed from.
	// Update applies the patch only if the stored generation is still this
	// one (else stateful.ErrConflict): the new spec was merged from that
	// generation's spec and must not silently undo a change made since.
	Generation int64
	// Slaves is the new number of slaves; nil leaves it unchanged.
	Slaves *int
	// Spec is the complete new spec (the request's fields over the stored
	// spec, the workload's defaults applied, validated); nil leaves it
	// unchanged.
	Spec *stateful.Spec
}

// Apply returns a copy of inst with the patch applied. It neither bumps the
// generation nor touches status or tasks: that is the Service's job.
func (p Patch) Apply(inst *stateful.Instance) *stateful.Instance {
	out := inst.Clone()
	if p.Slaves != nil {
		out.Slaves = *p.Slaves
	}
	if p.Spec != nil {
		out.Spec = p.Spec.Clone()
	}
	return out
}

// Problem is one reason the scheduler is not healthy.
type Problem struct {
	// Component names the part that has the problem, e.g. "mesos", "etcd".
	Component string `json:"component"`
	// Message says what is wrong, for operators.
	Message string `json:"message"`
}

// RuntimeInfo says how executors run tasks, for GET /v1/health.
type RuntimeInfo struct {
	// Configured is auto, docker or process (--runtime).
	Configured string `json:"configured"`
	// Chosen is what auto comes to (docker or process), or Configured.
	Chosen string `json:"chosen"`
	// Reason says why, e.g. "a Docker engine answers at unix:///var/run/docker.sock".
	Reason string `json:"reason,omitempty"`
}

// RuntimeReporter is a Service that says how tasks run; GET /v1/health
// shows it.
type RuntimeReporter interface {
	Runtime() RuntimeInfo
}

// StaleReads is implemented by a Service whose reads may lag the stored
// state: a scheduler that serves them from its cache while the state store
// does not answer, or while it does not lead. The API then marks its
// answers to GET /v1/instances and GET /v1/instances/{name}: header
// X-Stateful-Stale: true, X-Stateful-As-Of with the time (RFC 3339) up to
// which the data is known to be current, and Warning: 110 - "Response is
// Stale". Fresh answers carry none of them.
type StaleReads interface {
	// ReadsStale returns when the data was last confirmed current and
	// whether reads are stale now.
	ReadsStale() (asOf time.Time, stale bool)
}
