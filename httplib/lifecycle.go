package httplib

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/mesos-stateful/stateful"
)

// Lifecycle is what a Service implements to replace tasks and to uninstall
// the framework. A Service without it answers those routes 501.
type Lifecycle interface {
	// Replace kills the ordinal, gives up its reservation and volume
	// (released now if the agent is reachable, else when it returns) and
	// places it afresh with an empty volume. It returns the instance as
	// stored; stateful.ErrNotFound for an unknown instance or ordinal,
	// stateful.ErrDeleting while the instance is being deleted.
	Replace(ctx context.Context, name string, ordinal int) (*stateful.Instance, error)
	// Uninstall deletes every instance (releasing its reservations and
	// volumes) and then tears the framework down on Mesos.
	Uninstall(ctx context.Context) (UninstallStatus, error)
}

// UninstallStatus is the answer of POST /v1/uninstall.
type UninstallStatus struct {
	// Deleting names the instances still being deleted; once none is
	// left the framework is torn down.
	Deleting []string `json:"deleting"`
	Message  string   `json:"message"`
}

// replaceTask: POST /v1/instances/{name}/tasks/{ordinal}/replace. No body.
func (s *Server) replaceTask(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	raw := mux.Vars(r)["ordinal"]
	ordinal, err := strconv.Atoi(raw)
	if err != nil || ordinal < 0 || ordinal > stateful.MaxOrdinal || strconv.Itoa(ordinal) != raw {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ordinal in the path: %q is not a number from 0 to %d", echo(raw), stateful.MaxOrdinal), "ordinal")
		return
	}
	if r.ContentLength > 0 {
		writeError(w, http.StatusBadRequest, "replace takes no body", "")
		return
	}
	lc, ok := s.svc.(Lifecycle)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this scheduler cannot replace tasks", "")
		return
	}
	s.act(w, r, name, fmt.Sprintf("replacing task %d of instance %q", ordinal, name), func(ctx context.Context) (*stateful.Instance, error) {
		inst, err := lc.Replace(ctx, name, ordinal)
		sortTasks(inst)
		return inst, err
	})
}

// uninstall: POST /v1/uninstall. No body.
func (s *Server) uninstall(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > 0 {
		writeError(w, http.StatusBadRequest, "uninstall takes no body", "")
		return
	}
	lc, ok := s.svc.(Lifecycle)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this scheduler cannot uninstall", "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	st, err := lc.Uninstall(ctx)
	if err != nil {
		s.fail(w, r, "", fmt.Errorf("uninstall: %w", err))
		return
	}
	s.reply(w, r, http.StatusAccepted, st)
}
