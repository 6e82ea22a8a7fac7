package httplib

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"reflect"

	"github.com/mesos-stateful/stateful"
)

// PlanService is an optional interface of a Service: planned operations on
// one instance. Without it the routes below answer 501. Its methods follow
// the Service contract (durable when they return nil; errors are stateful
// sentinels or a *stateful.ValidationError).
type PlanService interface {
	// Switchover asks for the master of the named MS instance to move to
	// ordinal to (nil: the slave that has replicated the most), without
	// losing acknowledged writes; it is carried out once every task is
	// healthy.
	Switchover(ctx context.Context, name string, to *int) (*stateful.Instance, error)
	// SetRolloutPaused pauses (true) or resumes a rolling spec change.
	SetRolloutPaused(ctx context.Context, name string, paused bool) (*stateful.Instance, error)
	// AbortRollout goes back to the spec before the rolling change under
	// way (a ValidationError when there is none).
	AbortRollout(ctx context.Context, name string) (*stateful.Instance, error)
}

// switchoverRequest is the optional body of POST .../switchover.
type switchoverRequest struct {
	To *int `json:"to"`
}

func (s *Server) planService(w http.ResponseWriter) (PlanService, bool) {
	ps, ok := s.svc.(PlanService)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this scheduler does not offer planned operations", "")
	}
	return ps, ok
}

// switchoverSchema is what a switchover body is checked against, like
// every other body: exact keys, each once, one object.
var switchoverSchema = reflect.TypeFor[switchoverRequest]()

// switchover: POST /v1/instances/{name}/switchover, body {} or {"to": n}
// (or none).
func (s *Server) switchover(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	var req switchoverRequest
	if r.ContentLength != 0 {
		body, ok := s.readBody(w, r, "application/json")
		if !ok {
			return
		}
		if len(bytes.TrimSpace(body)) > 0 {
			err := checkSchema(body, switchoverSchema)
			if err == nil {
				err = decodeStrict(body, &req)
			}
			if err == nil && req.To != nil && *req.To < 0 {
				err = &stateful.ValidationError{Field: "to", Msg: fmt.Sprintf("must be a slave's ordinal, got %d", *req.To)}
			}
			if err != nil {
				s.fail(w, r, "", err)
				return
			}
		}
	}
	ps, ok := s.planService(w)
	if !ok {
		return
	}
	s.act(w, r, name, fmt.Sprintf("switchover of instance %q", name), func(ctx context.Context) (*stateful.Instance, error) {
		return ps.Switchover(ctx, name, req.To)
	})
}

// abortRollout: POST /v1/instances/{name}/rollout/abort.
func (s *Server) abortRollout(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	ps, ok := s.planService(w)
	if !ok {
		return
	}
	s.act(w, r, name, fmt.Sprintf("aborting the rollout of instance %q", name), func(ctx context.Context) (*stateful.Instance, error) {
		return ps.AbortRollout(ctx, name)
	})
}

// rollout: POST /v1/instances/{name}/rollout/pause and .../resume.
func (s *Server) rollout(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, ok := pathName(w, r)
		if !ok {
			return
		}
		ps, ok := s.planService(w)
		if !ok {
			return
		}
		s.act(w, r, name, fmt.Sprintf("rollout of instance %q", name), func(ctx context.Context) (*stateful.Instance, error) {
			return ps.SetRolloutPaused(ctx, name, paused)
		})
	}
}
