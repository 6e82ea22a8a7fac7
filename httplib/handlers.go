package httplib

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang/glog"
	"github.com/gorilla/mux"
	"github.com/mesos-stateful/stateful"
)

// createInstance: POST /v1/instances.
func (s *Server) createInstance(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, "application/json")
	if !ok {
		return
	}
	inst, err := decodeCreate(body, s.svc.Defaults())
	if err == nil {
		err = checkPolicy(s.svc, createSpec(body))
	}
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	created, err := s.svc.Create(ctx, inst)
	if err != nil {
		s.fail(w, r, inst.Name, fmt.Errorf("creating instance %q: %w", inst.Name, err))
		return
	}
	w.Header().Set("Location", "/v1/instances/"+inst.Name)
	s.reply(w, r, http.StatusAccepted, created)
}

// listInstances: GET /v1/instances.
func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	list, err := s.svc.List(ctx)
	if err != nil {
		s.fail(w, r, "", fmt.Errorf("listing instances: %w", err))
		return
	}
	list = slices.DeleteFunc(list, func(inst *stateful.Instance) bool { return inst == nil })
	slices.SortFunc(list, func(a, b *stateful.Instance) int { return cmp.Compare(a.Name, b.Name) })
	for _, inst := range list {
		sortTasks(inst)
	}
	if list == nil {
		list = []*stateful.Instance{} // [] rather than null
	}
	s.markStale(w)
	if requestInfoOf(r).role != RoleAdmin {
		for _, inst := range list {
			redact(inst)
		}
	}
	s.reply(w, r, http.StatusOK, list)
}

// getInstance: GET /v1/instances/{name}.
func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	inst, err := s.svc.Get(ctx, name)
	if err != nil {
		s.fail(w, r, name, fmt.Errorf("getting instance %q: %w", name, err))
		return
	}
	sortTasks(inst)
	if requestInfoOf(r).role != RoleAdmin {
		redact(inst)
	}
	s.markStale(w)
	s.reply(w, r, http.StatusOK, inst)
}

// Headers of a stale read (see StaleReads).
const (
	HeaderStale = "X-Stateful-Stale"
	HeaderAsOf  = "X-Stateful-As-Of"
)

// markStale marks a read's answer stale when the Service says it is.
func (s *Server) markStale(w http.ResponseWriter) {
	sr, ok := s.svc.(StaleReads)
	if !ok {
		return
	}
	asOf, stale := sr.ReadsStale()
	if !stale {
		return
	}
	h := w.Header()
	h.Set(HeaderStale, "true")
	h.Set(HeaderAsOf, asOf.UTC().Format(time.RFC3339Nano))
	h.Set("Warning", `110 - "Response is Stale"`)
}

// Redacted replaces the values of the spec's env in answers to read-only
// tokens: env is where workloads keep secrets (passwords) for their tasks.
const Redacted = stateful.Redacted

// redact hides inst's secrets. The instance is the caller's copy (the
// Service contract), so it is changed in place.
func redact(inst *stateful.Instance) {
	if inst == nil {
		return
	}
	for k := range inst.Spec.Env {
		inst.Spec.Env[k] = Redacted
	}
}

// patchInstance: PATCH /v1/instances/{name}. The body alone is checked
// first; then the instance is read, the change computed against it and
// validated as a whole, and handed to the service guarded by the generation
// it was computed from.
func (s *Server) patchInstance(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r, "application/json", "application/merge-patch+json")
	if !ok {
		return
	}
	req, err := parsePatch(body, name)
	if err == nil {
		err = checkPolicy(s.svc, req.Spec)
	}
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	current, err := s.svc.Get(ctx, name)
	if err != nil {
		s.fail(w, r, name, fmt.Errorf("getting instance %q to patch it: %w", name, err))
		return
	}
	if current.Status == stateful.StatusDeleting {
		s.fail(w, r, name, fmt.Errorf("patching instance %q: %w", name, stateful.ErrDeleting))
		return
	}
	patch, err := buildPatch(req, current, s.svc.Defaults())
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	updated, err := s.svc.Update(ctx, name, patch)
	if err != nil {
		s.fail(w, r, name, fmt.Errorf("patching instance %q: %w", name, err))
		return
	}
	s.reply(w, r, http.StatusAccepted, updated)
}

// deleteInstance: DELETE /v1/instances/{name}.
func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) {
	name, ok := pathName(w, r)
	if !ok {
		return
	}
	s.act(w, r, name, fmt.Sprintf("destroying instance %q", name), func(ctx context.Context) (*stateful.Instance, error) {
		return s.svc.Destroy(ctx, name)
	})
}

// act runs op, one change of the named instance, within the request
// timeout, and answers 202 with the instance as stored, or op's error
// wrapped with what was being done.
func (s *Server) act(w http.ResponseWriter, r *http.Request, name, what string, op func(context.Context) (*stateful.Instance, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	inst, err := op(ctx)
	if err != nil {
		s.fail(w, r, name, fmt.Errorf("%s: %w", what, err))
		return
	}
	s.reply(w, r, http.StatusAccepted, inst)
}

// healthReport is the body of GET /v1/health. Error repeats the problems
// in one line so that scripts reading .error on any failure see why.
type healthReport struct {
	Status   string       `json:"status"`
	Error    string       `json:"error,omitempty"`
	Problems []Problem    `json:"problems"`
	Runtime  *RuntimeInfo `json:"runtime,omitempty"`
}

// health: GET /v1/health.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
	defer cancel()
	problems := s.svc.Health(ctx)
	var rt *RuntimeInfo
	if rr, ok := s.svc.(RuntimeReporter); ok {
		info := rr.Runtime()
		rt = &info
	}
	if len(problems) == 0 {
		s.reply(w, r, http.StatusOK, healthReport{Status: "ok", Problems: []Problem{}, Runtime: rt})
		return
	}
	reasons := make([]string, len(problems))
	for i, p := range problems {
		reasons[i] = p.Component + ": " + p.Message
	}
	s.reply(w, r, http.StatusServiceUnavailable, healthReport{
		Status: "unhealthy", Error: strings.Join(reasons, "; "), Problems: problems, Runtime: rt,
	})
}

func sortTasks(inst *stateful.Instance) {
	if inst == nil {
		return
	}
	inst.Tasks = slices.DeleteFunc(inst.Tasks, func(t *stateful.Task) bool { return t == nil })
	slices.SortFunc(inst.Tasks, func(a, b *stateful.Task) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
}

// pathName returns the {name} of the route, or answers 400 if it cannot be
// an instance name.
func pathName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := mux.Vars(r)["name"]
	if err := stateful.ValidateName(name); err != nil {
		ve, _ := stateful.AsValidationError(err)
		writeError(w, http.StatusBadRequest, "name in the path: "+ve.Msg, "name")
		return "", false
	}
	return name, true
}

// readBody returns the request body if its media type is one of types and
// it fits in Config.MaxBodyBytes; otherwise it answers 415, 413 or 400.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, types ...string) ([]byte, bool) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(types, mt) {
		got := "none"
		if ct != "" {
			got = fmt.Sprintf("%q", echo(ct))
		}
		writeError(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Type must be %s, got %s", strings.Join(types, " or "), got), "")
		return nil, false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("charset must be utf-8, got %q", echo(cs)), "")
		return nil, false
	}
	tooLarge := func() ([]byte, bool) {
		// The rest of the body is not read: close the connection rather
		// than drain it.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes), "")
		return nil, false
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge()
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading the request body: %v", err), "")
		return nil, false
	}
	return body, true
}

// fail answers err with the status its stateful sentinel or validation
// error calls for, in words about the instance named (if any); the
// service's own wording goes to the log. Anything else is the scheduler's
// fault: 500 with a generic message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, name string, err error) {
	if ve, ok := stateful.AsValidationError(err); ok {
		writeError(w, http.StatusBadRequest, ve.Error(), ve.Field)
		return
	}
	subject := "the instance"
	if name != "" {
		subject = fmt.Sprintf("instance %q", name)
	}
	var code int
	var msg string
	switch {
	case errors.Is(err, stateful.ErrNotFound):
		code, msg = http.StatusNotFound, subject+" not found"
	case errors.Is(err, stateful.ErrExists):
		code, msg = http.StatusConflict, subject+" already exists"
	case errors.Is(err, stateful.ErrDeleting):
		code, msg = http.StatusConflict, subject+" is being deleted"
	case errors.Is(err, stateful.ErrConflict):
		code, msg = http.StatusConflict, subject+" was changed by another request meanwhile; nothing was changed, retry"
	case errors.Is(err, stateful.ErrUnavailable):
		// The reason (not the leader, store unreachable) is what the
		// operator needs.
		code, msg = http.StatusServiceUnavailable, "the scheduler cannot serve requests now: "+err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The service may have been in the middle of a write: say so
		// rather than claim nothing happened.
		glog.Warningf("httplib: %s %q: %v", r.Method, r.URL.Path, err)
		writeError(w, http.StatusServiceUnavailable,
			"the scheduler did not answer in time; a change may or may not have been made, GET the instance to see", "")
		return
	default:
		glog.Errorf("httplib: %s %q: %v", r.Method, r.URL.Path, err)
		writeError(w, http.StatusInternalServerError, "internal error (logged by the scheduler)", "")
		return
	}
	glog.V(1).Infof("httplib: %s %q: %v", r.Method, r.URL.Path, err)
	writeError(w, code, msg, "")
}

// reply answers v as JSON. v is encoded before anything is written, so a
// document that cannot be encoded becomes a clean 500.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		glog.Errorf("httplib: %s %q: encoding the answer: %v", r.Method, r.URL.Path, err)
		writeError(w, http.StatusInternalServerError, "internal error (logged by the scheduler)", "")
		return
	}
	writeJSON(w, code, data)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// maxErrorLen bounds an error message, which may quote client input.
const maxErrorLen = 1024

func writeError(w http.ResponseWriter, code int, msg, field string) {
	data, _ := json.Marshal(apiError{Error: truncate(msg, maxErrorLen), Field: truncate(field, maxErrorLen)})
	writeJSON(w, code, data)
}

func writeJSON(w http.ResponseWriter, code int, data []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if _, err := w.Write(append(data, '\n')); err != nil {
		glog.V(1).Infof("httplib: writing the answer: %v", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
