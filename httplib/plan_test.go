package httplib

import (
	"net/http/httptest"
	"testing"
)

// A switchover body is held to the same rules as every other body: exact
// keys, each once, one JSON value, the right type.
func TestSwitchoverBody(t *testing.T) {
	const path = "/v1/instances/cache1/switchover"
	requested := func(want int) func(*testing.T, *httptest.ResponseRecorder, *memService) {
		return func(t *testing.T, rec *httptest.ResponseRecorder, svc *memService) {
			if sw := stored(t, svc, "cache1").Switchover; sw == nil || sw.To != want {
				t.Errorf("stored switchover %+v, want to %d", sw, want)
			}
		}
	}
	runCases(t, []apiCase{
		{name: "no body", method: "POST", path: path, code: 202, check: requested(-1)},
		{name: "empty object", method: "POST", path: path, body: `{}`, code: 202, check: requested(-1)},
		{name: "null to", method: "POST", path: path, body: `{"to": null}`, code: 202, check: requested(-1)},
		{name: "to", method: "POST", path: path, body: `{"to": 2}`, code: 202, check: requested(2)},
		{name: "negative", method: "POST", path: path, body: `{"to": -1}`, code: 400, field: "to", errHas: "ordinal"},
		{name: "string", method: "POST", path: path, body: `{"to": "2"}`, code: 400, field: "to"},
		{name: "fraction", method: "POST", path: path, body: `{"to": 1.5}`, code: 400, field: "to"},
		{name: "unknown key", method: "POST", path: path, body: `{"target": 1}`, code: 400, field: "target", errHas: "unknown field"},
		{name: "key case", method: "POST", path: path, body: `{"TO": 1}`, code: 400, field: "TO", errHas: "unknown field"},
		{name: "key twice", method: "POST", path: path, body: `{"to": 1, "to": 2}`, code: 400, field: "to"},
		{name: "trailing value", method: "POST", path: path, body: `{"to": 1} {"to": 2}`, code: 400, errHas: "more after it"},
		{name: "not an object", method: "POST", path: path, body: `[1]`, code: 400},
	})
}
