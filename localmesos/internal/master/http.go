package master

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/basicauth"
)

const (
	mediaJSON     = "application/json"
	mediaProtobuf = "application/x-protobuf"
	// maxCallBytes bounds a call's body; Mesos has no limit, but no real
	// call comes near it.
	maxCallBytes = 64 << 20
)

// answer is an HTTP response decided by the actor.
type answer struct {
	status int
	body   string
}

func accepted() answer { return answer{status: http.StatusAccepted} }

func badRequest(msg string) answer { return answer{status: http.StatusBadRequest, body: msg} }

// writeText writes an error the way libprocess does: text/plain, a
// Content-Length, no trailing newline.
func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func (a answer) write(w http.ResponseWriter) {
	switch {
	case a.body != "":
		writeText(w, a.status, a.body)
	default:
		// 202, 501, and UPDATE_FRAMEWORK's 200: no body, no
		// Content-Type.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(a.status)
	}
}

// serveScheduler is POST /api/v1/scheduler. Checks run in Mesos' order:
// method, content type, body, call validation; for SUBSCRIBE the Accept
// header and the absence of a stream ID; for the other calls the
// framework, its subscription and the stream ID.
func (m *Master) serveScheduler(w http.ResponseWriter, r *http.Request) {
	// libprocess authenticates before the endpoint's handler runs.
	principal := ""
	if len(m.cfg.Credentials) > 0 {
		p, ok := m.cfg.Credentials.Authenticate(r)
		if !ok {
			basicauth.Unauthorized(w, basicauth.RealmScheduler)
			return
		}
		principal = p
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeText(w, http.StatusMethodNotAllowed, fmt.Sprintf("405 Method Not Allowed. Expecting one of { 'POST' }, but received '%s'.", r.Method))
		return
	}
	cts, ok := r.Header["Content-Type"]
	if !ok || len(cts) == 0 {
		writeText(w, http.StatusBadRequest, "Expecting 'Content-Type' to be present")
		return
	}
	ct := cts[0]
	if ct != mediaJSON && ct != mediaProtobuf {
		writeText(w, http.StatusUnsupportedMediaType, "Expecting 'Content-Type' of application/json or application/x-protobuf")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCallBytes+1))
	if err != nil {
		writeText(w, http.StatusBadRequest, "Failed to read body: "+err.Error())
		return
	}
	if len(body) > maxCallBytes {
		writeText(w, http.StatusRequestEntityTooLarge, "Request body is larger than 64 MiB")
		return
	}
	var d decodedCall
	var msg string
	if ct == mediaProtobuf {
		d, msg = decodeProtobufCall(body)
	} else {
		d, msg = decodeJSONCall(body)
	}
	if msg != "" {
		writeText(w, http.StatusBadRequest, msg)
		return
	}
	call := &d.call
	if msg := validateCall(d, principal); msg != "" {
		writeText(w, http.StatusBadRequest, "Failed to validate scheduler::Call: "+msg)
		return
	}
	glog.V(2).Infof("scheduler call %s from framework %q", call.Type, call.GetFrameworkID().GetValue())

	if call.Type == scheduler.Call_SUBSCRIBE {
		m.serveSubscribe(w, r, call)
		return
	}

	var a answer
	if !m.call(func() { a = m.handleCall(r, call) }) {
		writeText(w, http.StatusServiceUnavailable, "Master is shutting down")
		return
	}
	a.write(w)
}

// validateCall is Mesos' validation::scheduler::call::validate; principal
// is the authenticated one ("" without authentication).
func validateCall(d decodedCall, principal string) string {
	call := &d.call
	if !d.hasType {
		return "Expecting 'type' to be present"
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		if call.Subscribe == nil {
			return "Expecting 'subscribe' to be present"
		}
		if !sameFrameworkID(call.Subscribe.FrameworkInfo.GetID(), call.FrameworkID) {
			return "'framework_id' differs from 'subscribe.framework_info.id'"
		}
		if fp := call.Subscribe.FrameworkInfo.Principal; principal != "" && fp != nil && *fp != principal {
			return "Authenticated principal '" + principal + "' does not match principal '" + *fp + "' set in `FrameworkInfo`"
		}
		return ""
	}
	if call.FrameworkID == nil {
		return "Expecting 'framework_id' to be present"
	}
	missing := func(present bool, name string) string {
		if present {
			return ""
		}
		return "Expecting '" + name + "' to be present"
	}
	switch call.Type {
	case scheduler.Call_ACCEPT:
		return missing(call.Accept != nil, "accept")
	case scheduler.Call_DECLINE:
		return missing(call.Decline != nil, "decline")
	case scheduler.Call_ACCEPT_INVERSE_OFFERS:
		return missing(call.AcceptInverseOffers != nil, "accept_inverse_offers")
	case scheduler.Call_DECLINE_INVERSE_OFFERS:
		return missing(call.DeclineInverseOffers != nil, "decline_inverse_offers")
	case scheduler.Call_KILL:
		return missing(call.Kill != nil, "kill")
	case scheduler.Call_SHUTDOWN:
		return missing(call.Shutdown != nil, "shutdown")
	case scheduler.Call_ACKNOWLEDGE:
		if call.Acknowledge == nil {
			return "Expecting 'acknowledge' to be present"
		}
		if len(call.Acknowledge.UUID) != 16 {
			return "Not a valid UUID"
		}
	case scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		ack := call.AcknowledgeOperationStatus
		if ack == nil {
			return "Expecting 'acknowledge_operation_status' to be present"
		}
		if len(ack.UUID) != 16 {
			return "Not a valid UUID"
		}
		if ack.AgentID == nil {
			return "Expecting 'agent_id' to be present"
		}
	case scheduler.Call_RECONCILE:
		return missing(call.Reconcile != nil, "reconcile")
	case scheduler.Call_RECONCILE_OPERATIONS:
		return missing(call.ReconcileOperations != nil, "reconcile_operations")
	case scheduler.Call_MESSAGE:
		return missing(call.Message != nil, "message")
	case scheduler.Call_REQUEST:
		return missing(call.Request != nil, "request")
	case scheduler.Call_UPDATE_FRAMEWORK:
		if call.UpdateFramework == nil {
			return "Expecting 'update_framework' to be present"
		}
		if !sameFrameworkID(call.UpdateFramework.FrameworkInfo.ID, call.FrameworkID) {
			return "'framework_id' differs from 'update_framework.framework_info.id'"
		}
	}
	return ""
}

func sameFrameworkID(a, b *mesos.FrameworkID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Value == b.Value
}

// acceptsMediaType reports whether an Accept header allows t (no header
// allows everything), honouring wildcards and q=0.
func acceptsMediaType(values []string, t string) bool {
	if len(values) == 0 {
		return true
	}
	typ, sub, _ := strings.Cut(t, "/")
	bestSpecificity, bestQ := -1, 0.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(item)
			if err != nil {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(qs, 64); err == nil {
					q = f
				}
			}
			rt, rs, _ := strings.Cut(mt, "/")
			spec := -1
			switch {
			case rt == typ && rs == sub:
				spec = 2
			case rt == typ && rs == "*":
				spec = 1
			case rt == "*" && rs == "*":
				spec = 0
			}
			if spec > bestSpecificity {
				bestSpecificity, bestQ = spec, q
			}
		}
	}
	return bestSpecificity >= 0 && bestQ > 0
}

// serveSubscribe answers 200 at once and then streams events. The master
// decides on the subscription after the headers are out, as Mesos does:
// refusals are an ERROR event followed by the end of the stream.
func (m *Master) serveSubscribe(w http.ResponseWriter, r *http.Request, call *scheduler.Call) {
	accept := r.Header.Values("Accept")
	var codec encoding.Codec
	switch {
	case acceptsMediaType(accept, mediaJSON):
		codec = codecs.ByMediaType[codecs.MediaTypeJSON]
	case acceptsMediaType(accept, mediaProtobuf):
		codec = codecs.ByMediaType[codecs.MediaTypeProtobuf]
	default:
		writeText(w, http.StatusNotAcceptable, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'")
		return
	}
	if _, ok := r.Header["Mesos-Stream-Id"]; ok {
		writeText(w, http.StatusBadRequest, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
		return
	}
	select {
	case <-m.done:
		writeText(w, http.StatusServiceUnavailable, "Master is shutting down")
		return
	default:
	}
	s := newStream(codec)
	h := w.Header()
	h.Set("Content-Type", string(codec.Type))
	h.Set("Mesos-Stream-Id", s.id)
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	sub := call.Subscribe
	if !m.post(func() { m.subscribe(s, sub) }) {
		return
	}
	if s.run(w, r, m.cfg.HeartbeatInterval, m.done) {
		m.post(func() { m.streamGone(s) })
	}
}

// handleCall runs a non-SUBSCRIBE call on the actor.
func (m *Master) handleCall(r *http.Request, call *scheduler.Call) answer {
	fid := call.FrameworkID.Value
	f := m.frameworks[fid]
	if f == nil {
		return badRequest("Framework cannot be found")
	}
	if !f.connected() {
		return answer{status: http.StatusForbidden, body: "Framework is not subscribed"}
	}
	ids, ok := r.Header["Mesos-Stream-Id"]
	if !ok {
		return badRequest("All non-subscribe calls should include the 'Mesos-Stream-Id' header")
	}
	sid := ""
	if len(ids) > 0 {
		sid = ids[0]
	}
	if sid != f.stream.id {
		return badRequest("The stream ID '" + sid + "' included in this request didn't match the stream ID currently associated with framework ID " + fid)
	}

	switch call.Type {
	case scheduler.Call_TEARDOWN:
		glog.Infof("processing TEARDOWN call for framework %s", f)
		m.removeFramework(f)
	case scheduler.Call_ACCEPT:
		if a, refused := refuseUnsupportedOperations(call.Accept); refused {
			return a
		}
		if a, refused := refuseDefaultExecutor(call.Accept); refused {
			return a
		}
		m.accept(f, call.Accept)
	case scheduler.Call_DECLINE:
		m.decline(f, call.Decline)
	case scheduler.Call_ACCEPT_INVERSE_OFFERS, scheduler.Call_DECLINE_INVERSE_OFFERS:
		// No maintenance schedules here, hence no inverse offers.
	case scheduler.Call_REVIVE:
		m.revive(f, call.Revive.GetRoles())
	case scheduler.Call_SUPPRESS:
		m.suppress(f, call.Suppress.GetRoles())
	case scheduler.Call_KILL:
		m.kill(f, call.Kill)
	case scheduler.Call_SHUTDOWN:
		m.shutdown(f, call.Shutdown)
	case scheduler.Call_ACKNOWLEDGE:
		m.acknowledge(f, call.Acknowledge)
	case scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		m.acknowledgeOperation(f, call.AcknowledgeOperationStatus)
	case scheduler.Call_RECONCILE:
		m.reconcile(f, call.Reconcile.Tasks)
	case scheduler.Call_RECONCILE_OPERATIONS:
		// Since Mesos 1.8 (MESOS-9448) the answer is 202 and the statuses
		// come as UPDATE_OPERATION_STATUS events, without uuid.
		for _, st := range m.reconcileOperations(f, call.ReconcileOperations) {
			f.send(operationEvent(st))
		}
	case scheduler.Call_MESSAGE:
		m.message(f, call.Message)
	case scheduler.Call_REQUEST:
		// Mesos' allocator ignores resource requests.
	case scheduler.Call_UPDATE_FRAMEWORK:
		return m.updateFrameworkCall(f, call.UpdateFramework)
	default:
		return answer{status: http.StatusNotImplemented}
	}
	return accepted()
}
