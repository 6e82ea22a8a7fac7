package httplib

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The requests of the README, answered by the API over an in-memory service
// whose workload defaults are Redis's.
func Example() {
	s, err := New(NewConfig(), newMemService(), prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	call := func(method, path, body string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		fmt.Printf("%s %s → %d %s", method, path, rec.Code, rec.Body)
	}
	call("POST", "/v1/instances", `{"name": "cache1", "type": "MS", "slaves": 1, "spec": {"mem": 512}}`)
	call("POST", "/v1/instances", `{"name": "cache1", "type": "MS"}`)
	call("POST", "/v1/instances", `{"name": "cache2", "type": "MS", "spec": {"cpus": 1}}`)
	call("PATCH", "/v1/instances/cache1", `{"slaves": 2}`)
	call("PATCH", "/v1/instances/cache1", `{"masters": 2}`)
	call("DELETE", "/v1/instances/cache1", "")
	call("PATCH", "/v1/instances/cache1", `{"slaves": 3}`)
	call("GET", "/v1/instances/nope", "")
	call("PUT", "/v1/instances/cache1", "")
	// Output:
	// POST /v1/instances → 202 {"name":"cache1","type":"MS","masters":1,"slaves":1,"status":"CREATING","generation":1,"spec":{"cpu":0.5,"mem":512,"disk":512,"image":"redis:7","command":"redis-server","network":"host","ports":["redis"],"volume":"/data","health":{"tcp":"redis","interval_s":10,"grace_s":30,"timeout_s":5}},"master_ordinal":0,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","tasks":[{"instance":"cache1","ordinal":0,"name":"cache1-0","role":"master","state":"QUEUED","healthy":false,"task_id":"","attempt":0,"agent_id":"","host":"","ports":null,"stats":null,"message":"","generation":1,"queued_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"},{"instance":"cache1","ordinal":1,"name":"cache1-1","role":"slave","state":"QUEUED","healthy":false,"task_id":"","attempt":0,"agent_id":"","host":"","ports":null,"stats":null,"message":"","generation":1,"queued_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}]}
	// POST /v1/instances → 409 {"error":"instance \"cache1\" already exists","field":""}
	// POST /v1/instances → 400 {"error":"spec.cpus: unknown field (spec takes command, cpu, disk, env, health, image, mem, network, ports, volume)","field":"spec.cpus"}
	// PATCH /v1/instances/cache1 → 202 {"name":"cache1","type":"MS","masters":1,"slaves":2,"status":"CREATING","generation":2,"spec":{"cpu":0.5,"mem":512,"disk":512,"image":"redis:7","command":"redis-server","network":"host","ports":["redis"],"volume":"/data","health":{"tcp":"redis","interval_s":10,"grace_s":30,"timeout_s":5}},"master_ordinal":0,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","tasks":[{"instance":"cache1","ordinal":0,"name":"cache1-0","role":"master","state":"QUEUED","healthy":false,"task_id":"","attempt":0,"agent_id":"","host":"","ports":null,"stats":null,"message":"","generation":1,"queued_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"},{"instance":"cache1","ordinal":1,"name":"cache1-1","role":"slave","state":"QUEUED","healthy":false,"task_id":"","attempt":0,"agent_id":"","host":"","ports":null,"stats":null,"message":"","generation":1,"queued_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}]}
	// PATCH /v1/instances/cache1 → 400 {"error":"masters: cannot be changed (the instance has 1, the request says 2); only slaves can be scaled","field":"masters"}
	// DELETE /v1/instances/cache1 → 202 {"name":"cache1","type":"MS","masters":1,"slaves":2,"status":"DELETING","generation":2,"spec":{"cpu":0.5,"mem":512,"disk":512,"image":"redis:7","command":"redis-server","network":"host","ports":["redis"],"volume":"/data","health":{"tcp":"redis","interval_s":10,"grace_s":30,"timeout_s":5}},"master_ordinal":0,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","tasks":[{"instance":"cache1","ordinal":0,"name":"cache1-0","role":"master","state":"QUEUED","healthy":false,"task_id":"","attempt":0,"agent_id":"","host":"","ports":null,"stats":null,"message":"","generation":1,"queued_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"},{"instance":"cache1","ordinal":1,"name":"cache1-1","role":"slave","state":"QUEUED","healthy":false,"task_id":"","attempt":0,"agent_id":"","host":"","ports":null,"stats":null,"message":"","generation":1,"queued_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z"}]}
	// PATCH /v1/instances/cache1 → 409 {"error":"instance \"cache1\" is being deleted","field":""}
	// GET /v1/instances/nope → 404 {"error":"instance \"nope\" not found","field":""}
	// PUT /v1/instances/cache1 → 405 {"error":"method PUT is not allowed on /v1/instances/cache1 (allowed: DELETE, GET, PATCH)","field":""}
}
