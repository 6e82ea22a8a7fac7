package master

import (
	"encoding/json"
	"net/http"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
)

// The operator's storage endpoints (Mesos' master/http.cpp): POST
// /master/reserve and /master/unreserve (form fields slaveId and
// resources), /master/create-volumes and /master/destroy-volumes (slaveId
// and volumes), each a JSON array of Resource. No authentication here, so
// no principal is checked. 202 once applied; 400 for bad input or an
// invalid operation; 409 when the resources are not available even after
// the agent's offers that hold them are rescinded.

func (m *Master) operatorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/master/reserve", m.operatorEndpoint(mesos.Offer_Operation_RESERVE, "resources"))
	mux.HandleFunc("/master/unreserve", m.operatorEndpoint(mesos.Offer_Operation_UNRESERVE, "resources"))
	mux.HandleFunc("/master/create-volumes", m.operatorEndpoint(mesos.Offer_Operation_CREATE, "volumes"))
	mux.HandleFunc("/master/destroy-volumes", m.operatorEndpoint(mesos.Offer_Operation_DESTROY, "volumes"))
	mux.HandleFunc("/master/slaves", m.serveSlaves)
}

func (m *Master) operatorEndpoint(typ mesos.Offer_Operation_Type, field string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeText(w, http.StatusMethodNotAllowed, "Expecting one of { 'POST' }, but received '"+r.Method+"'")
			return
		}
		if err := r.ParseForm(); err != nil {
			writeText(w, http.StatusBadRequest, "Unable to decode query string: "+err.Error())
			return
		}
		slaveID, ok := r.PostForm["slaveId"]
		if !ok || len(slaveID) == 0 {
			writeText(w, http.StatusBadRequest, "Missing 'slaveId' query parameter in the request body")
			return
		}
		values, ok := r.PostForm[field]
		if !ok || len(values) == 0 {
			writeText(w, http.StatusBadRequest, "Missing '"+field+"' query parameter in the request body")
			return
		}
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(values[0]), &raw); err != nil {
			writeText(w, http.StatusBadRequest, "Error in parsing '"+field+"' query parameter in the request body: "+err.Error())
			return
		}
		rs := make([]mesos.Resource, 0, len(raw))
		for _, v := range raw {
			var res mesos.Resource
			if err := res.UnmarshalJSON(v); err != nil {
				writeText(w, http.StatusBadRequest, "Error in parsing '"+field+"' query parameter in the request body: "+err.Error())
				return
			}
			if err := requiredResourceFields(res); err != "" {
				writeText(w, http.StatusBadRequest, "Error in parsing '"+field+"' query parameter in the request body: "+err)
				return
			}
			rs = append(rs, res)
		}
		op := mesos.Offer_Operation{Type: typ}
		switch typ {
		case mesos.Offer_Operation_RESERVE:
			op.Reserve = &mesos.Offer_Operation_Reserve{Resources: rs}
		case mesos.Offer_Operation_UNRESERVE:
			op.Unreserve = &mesos.Offer_Operation_Unreserve{Resources: rs}
		case mesos.Offer_Operation_CREATE:
			op.Create = &mesos.Offer_Operation_Create{Volumes: rs}
		case mesos.Offer_Operation_DESTROY:
			op.Destroy = &mesos.Offer_Operation_Destroy{Volumes: rs}
		}
		status, body := http.StatusServiceUnavailable, "Master is shutting down"
		m.call(func() { status, body = m.operatorOperation(slaveID[0], op) })
		if status == http.StatusAccepted {
			w.WriteHeader(status)
			return
		}
		writeText(w, status, body)
	}
}

// requiredResourceFields are the required fields protobuf parsing of a
// Resource insists on.
func requiredResourceFields(r mesos.Resource) string {
	if r.Name == "" {
		return "Missing required fields: name"
	}
	if r.Disk != nil && r.Disk.Volume != nil && r.Disk.Volume.Mode == nil {
		return "Missing required fields: disk.volume.mode"
	}
	if r.Disk != nil && r.Disk.Persistence != nil && r.Disk.Persistence.ID == "" {
		return "Missing required fields: disk.persistence.id"
	}
	return ""
}

// operatorOperation runs on the actor: Master::Http::_reserve (and the
// others), then _operation.
func (m *Master) operatorOperation(slaveID string, op mesos.Offer_Operation) (int, string) {
	a := m.agents[slaveID]
	if a == nil {
		return http.StatusBadRequest, "No agent found with specified ID"
	}
	if err := validateOperationFormat(&op); err != "" {
		return http.StatusBadRequest, err
	}
	rs, err := upgradeOperation(&op, "")
	if err != "" {
		return http.StatusBadRequest, err
	}
	if err := m.validateStorageOperation(a, op.Type, rs, nil, nil); err != "" {
		return http.StatusBadRequest, "Invalid " + op.Type.String() + " operation on agent " + a.id + " at " + a.pid() + " (" + a.hostname() + "): " + err
	}
	consumed, converted := conversions(op.Type, rs)
	// Offers holding what the operation needs are rescinded, one at a
	// time, until it fits.
	for _, o := range sortedOffers(a.offers) {
		if containsAll(a.available(), consumed) {
			break
		}
		if !overlaps(unallocated(o.resources), consumed) {
			continue
		}
		m.rescindOffer(o)
	}
	if avail := a.available(); !containsAll(avail, consumed) {
		return http.StatusConflict, formatResources(avail) + " does not contain " + formatResources(sum(consumed))
	}
	glog.Infof("operator %s on agent %s", op.Type, a.id)
	m.applyOperation(nil, a, op, consumed, converted)
	m.allocateSoon()
	return http.StatusAccepted, ""
}

// overlaps reports whether any of want could be taken from have.
func overlaps(have, want mesos.Resources) bool {
	for i := range want {
		for j := range have {
			if have[j].Subtractable(want[i]) {
				return true
			}
		}
	}
	return false
}

// serveSlaves is GET /master/slaves: every agent with its resources
// summarised (as in /master/state) and in full, reservations in both
// formats.
func (m *Master) serveSlaves(w http.ResponseWriter, r *http.Request) {
	mesosjson.ServeDocument(w, r, "Master is shutting down", func() (any, bool) {
		var body map[string]any
		ok := m.call(func() {
			slaves := []any{}
			for _, a := range m.sortedAgents() {
				s := m.agentState(a)
				m.addFullResources(a, s)
				slaves = append(slaves, s)
			}
			recovered := []any{}
			for _, id := range sortedKeys(boolKeys(m.recovered)) {
				info := m.recovered[id]
				recovered = append(recovered, map[string]any{"id": id, "hostname": info.Hostname, "port": info.GetPort()})
			}
			body = map[string]any{"slaves": slaves, "recovered_slaves": recovered}
		})
		return body, ok
	})
}

// addFullResources adds the *_full fields of /master/slaves: each
// resource as JSON, reservations in both the legacy and the refinement
// format.
func (m *Master) addFullResources(a *agent, s map[string]any) {
	reserved := map[string][]json.RawMessage{}
	var unreserved []json.RawMessage
	for i := range a.total {
		r := a.total[i]
		if r.IsUnreserved() {
			unreserved = append(unreserved, resourceJSON(r))
		} else {
			reserved[r.GetRole()] = append(reserved[r.GetRole()], resourceJSON(r))
		}
	}
	full := func(rs mesos.Resources) []json.RawMessage {
		out := []json.RawMessage{}
		for i := range rs {
			out = append(out, resourceJSON(rs[i]))
		}
		return out
	}
	if unreserved == nil {
		unreserved = []json.RawMessage{}
	}
	s["reserved_resources_full"] = reserved
	s["unreserved_resources_full"] = unreserved
	s["used_resources_full"] = full(a.used())
	s["offered_resources_full"] = full(a.offered())
}

// resourceJSON renders a resource as the master's JSON does for
// operators: role (and reservation) plus the reservations stack.
func resourceJSON(r mesos.Resource) json.RawMessage {
	c := *proto.Clone(&r).(*mesos.Resource)
	if c.Role == nil {
		c.Role = proto.String("*")
	}
	c.Reservations = reservationStack(&c)
	return rawJSON(&c)
}
