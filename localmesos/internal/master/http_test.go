package master

import (
	"net/http"
	"strings"
	"testing"
)

// TestHTTPErrors checks every error answer recorded in
// scheduler-errors.jsonl: status, exact body, text/plain and no trailing
// newline.
func TestHTTPErrors(t *testing.T) {
	c := newTestCluster(t, testConfig())
	c.addAgent(0)
	s := c.subscribeFramework("errors", "")
	fid := s.fid
	sid := s.streamID
	revive := `{"framework_id":{"value":"` + fid + `"},"type":"REVIVE"}`
	unknownRevive := `{"framework_id":{"value":"00000000-0000-0000-0000-000000000000-0000"},"type":"REVIVE"}`

	cases := []struct {
		name   string
		method string
		body   string
		header map[string]string
		status int
		text   string
	}{
		{"no stream id", "", revive, nil, 400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"},
		{"wrong stream id", "", revive, map[string]string{"Mesos-Stream-Id": "07789e94-1fbc-48d1-8ff9-d10779b51386"}, 400,
			"The stream ID '07789e94-1fbc-48d1-8ff9-d10779b51386' included in this request didn't match the stream ID currently associated with framework ID " + fid},
		{"unknown framework", "", unknownRevive, map[string]string{"Mesos-Stream-Id": sid}, 400, "Framework cannot be found"},
		{"unknown framework no stream id", "", unknownRevive, nil, 400, "Framework cannot be found"},
		{"no framework_id", "", `{"type":"REVIVE"}`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Failed to validate scheduler::Call: Expecting 'framework_id' to be present"},
		{"malformed JSON", "", `{"type":"REVIVE",`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Failed to parse body into JSON: syntax error at line 1 near: "},
		{"unknown type", "", `{"framework_id":{"value":"` + fid + `"},"type":"FOO"}`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Failed to validate scheduler::Call: Expecting 'type' to be present"},
		{"accept without accept", "", `{"framework_id":{"value":"` + fid + `"},"type":"ACCEPT"}`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Failed to validate scheduler::Call: Expecting 'accept' to be present"},
		{"reconcile without reconcile", "", `{"framework_id":{"value":"` + fid + `"},"type":"RECONCILE"}`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Failed to validate scheduler::Call: Expecting 'reconcile' to be present"},
		{"ack with bad uuid", "", `{"framework_id":{"value":"` + fid + `"},"type":"ACKNOWLEDGE","acknowledge":{"agent_id":{"value":"x"},"task_id":{"value":"t"},"uuid":"AAAA"}}`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Failed to validate scheduler::Call: Not a valid UUID"},
		{"text/plain", "", revive, map[string]string{"Content-Type": "text/plain", "Mesos-Stream-Id": sid}, 415, "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{"no content type", "", revive, map[string]string{"Content-Type": "", "Mesos-Stream-Id": sid}, 400, "Expecting 'Content-Type' to be present"},
		{"GET", http.MethodGet, "", nil, 405, "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."},
		{"subscribe with stream id", "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"errors","id":{"value":"` + fid + `"}}},"framework_id":{"value":"` + fid + `"}}`, map[string]string{"Mesos-Stream-Id": sid}, 400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"},
		{"subscribe accept text/plain", "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"errors-406"}}}`, map[string]string{"Accept": "text/plain"}, 406, "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"},
		{"subscribe without name", "", `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root"}}}`, map[string]string{"Accept": "application/json"}, 400, "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.name"},
		{"subscribe id mismatch", "", `{"type":"SUBSCRIBE","framework_id":{"value":"` + fid + `"},"subscribe":{"framework_info":{"user":"root","name":"errors","id":{"value":"other"}}}}`, map[string]string{"Accept": "application/json"}, 400, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r httpResult
			if tc.method == http.MethodGet {
				res, err := http.Get(c.url)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b := make([]byte, 200)
				n, _ := res.Body.Read(b)
				r = httpResult{status: res.StatusCode, header: res.Header, body: string(b[:n])}
				if got := res.Header.Get("Allow"); got != "POST" {
					t.Errorf("Allow %q", got)
				}
			} else {
				r = c.post(tc.body, tc.header)
			}
			if r.status != tc.status || r.body != tc.text {
				t.Fatalf("got %d %q\nwant %d %q", r.status, r.body, tc.status, tc.text)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}

	t.Run("accepted calls are 202 with an empty body and no Content-Type", func(t *testing.T) {
		r := c.post(revive, map[string]string{"Mesos-Stream-Id": sid})
		if r.status != 202 || r.body != "" || r.header.Get("Content-Type") != "" || r.header.Get("Content-Length") != "0" {
			t.Fatalf("got %d %q %v", r.status, r.body, r.header)
		}
	})
	t.Run("UNKNOWN is 501", func(t *testing.T) {
		r := c.post(`{"framework_id":{"value":"`+fid+`"},"type":"UNKNOWN"}`, map[string]string{"Mesos-Stream-Id": sid})
		if r.status != 501 {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	})
	t.Run("REQUEST and inverse offer calls are no-ops", func(t *testing.T) {
		for _, body := range []string{
			`"request":{"requests":[]}`,
		} {
			if r := c.callOn(s, "REQUEST", body); r.status != 202 {
				t.Fatalf("REQUEST: %d %q", r.status, r.body)
			}
		}
		if r := c.callOn(s, "DECLINE_INVERSE_OFFERS", `"decline_inverse_offers":{"inverse_offer_ids":[{"value":"x"}]}`); r.status != 202 {
			t.Fatalf("DECLINE_INVERSE_OFFERS: %d", r.status)
		}
	})
	t.Run("mesos-go JSON nulls are accepted", func(t *testing.T) {
		r := c.callOn(s, "REVIVE", `"revive":{"roles":null}`)
		if r.status != 202 {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	})
	t.Run("UPDATE_FRAMEWORK is 200 with no Content-Type", func(t *testing.T) {
		r := c.callOn(s, "UPDATE_FRAMEWORK", `"update_framework":{"framework_info":{"user":"root","name":"errors-renamed","id":{"value":"`+fid+`"},"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}`)
		if r.status != 200 || r.header.Get("Content-Type") != "" || r.body != "" {
			t.Fatalf("got %d %q %v", r.status, r.body, r.header)
		}
		r = c.callOn(s, "UPDATE_FRAMEWORK", `"update_framework":{"framework_info":{"user":"nobody","name":"errors","id":{"value":"`+fid+`"},"roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}`)
		if r.status != 400 || !strings.Contains(r.body, "Updating 'FrameworkInfo.user' is unsupported") {
			t.Fatalf("user change: %d %q", r.status, r.body)
		}
	})
	t.Run("protobuf garbage", func(t *testing.T) {
		r := c.post("\xff\xff\xff", map[string]string{"Content-Type": "application/x-protobuf"})
		if r.status != 400 || r.body != "Failed to parse body into Call protobuf" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
	})
}

// TestSubscribeRefusals: semantic refusals are 200, an ERROR event, and
// the end of the stream.
func TestSubscribeRefusals(t *testing.T) {
	c := newTestCluster(t, testConfig())
	for _, tc := range []struct{ body, msg string }{
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","role":"a","capabilities":[{"type":"MULTI_ROLE"}]}}}`,
			"'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","roles":["a"]}}}`,
			"'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","role":"/a"}}}`,
			"'FrameworkInfo.role' is not a valid role: Role '/a' cannot start with a slash"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","roles":["a","a"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`,
			"'FrameworkInfo.roles' contains duplicate items: { a }"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","roles":["a"],"capabilities":[{"type":"MULTI_ROLE"}]},"suppressed_roles":["b"]}}`,
			"Suppressed roles { b } are not contained in the set of roles"},
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"x","failover_timeout":1e300}}}`,
			"The framework failover_timeout (1e+300) is invalid"},
	} {
		s := c.subscribe(tc.body)
		if s.res.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.msg, s.res.StatusCode)
		}
		f := s.next("ERROR")
		if got := str(f, "error", "message"); got != tc.msg {
			t.Errorf("ERROR %q, want %q", got, tc.msg)
		}
		s.ended()
	}
}

func TestAcceptsMediaType(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		typ    string
		want   bool
	}{
		{nil, mediaJSON, true},
		{[]string{"*/*"}, mediaJSON, true},
		{[]string{"application/*"}, mediaProtobuf, true},
		{[]string{"application/x-protobuf", "application/x-protobuf"}, mediaJSON, false},
		{[]string{"application/x-protobuf", "application/x-protobuf"}, mediaProtobuf, true},
		{[]string{"application/json;q=0, */*"}, mediaJSON, false},
		{[]string{"text/plain"}, mediaJSON, false},
	} {
		if got := acceptsMediaType(tc.accept, tc.typ); got != tc.want {
			t.Errorf("accepts(%q, %s) = %v", tc.accept, tc.typ, got)
		}
	}
}
