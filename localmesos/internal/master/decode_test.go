package master

import (
	"testing"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// TestDecodeJSONCall: Mesos' JSON-to-protobuf conversion rules.
func TestDecodeJSONCall(t *testing.T) {
	for _, tc := range []struct {
		body    string
		msg     string
		hasType bool
	}{
		{`{"type":"REVIVE","framework_id":{"value":"x"},"foo":1}`, "", true},                          // unknown fields are ignored
		{`{"type":"REVIVE","framework_id":{"value":"x"},"revive":{"roles":null}}`, "", true},          // null is unset
		{`{"type":"FOO","framework_id":{"value":"x"}}`, "", false},                                    // unknown enum value dropped
		{`{"framework_id":{"value":"x"}}`, "", false},                                                 // no type at all
		{`{"type":"UNKNOWN","framework_id":{"value":"x"}}`, "", true},                                 // UNKNOWN is a type (501 later)
		{`[1,2]`, "Failed to convert JSON into Call protobuf: Expecting a JSON object", false},        // not an object
		{`{"type":"REVIVE",`, "Failed to parse body into JSON: syntax error at line 1 near: ", false}, // truncated
		{`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}`, "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.name", false},
		{`{"type":"ACCEPT","framework_id":{"value":"x"},"accept":{"offer_ids":[{"value":"o"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"t","task_id":{"value":"t"},"resources":[{"name":"cpus","scalar":{"value":0.1}}]}]}}]}}`,
			"Failed to convert JSON into Call protobuf: Missing required fields: accept.operations[0].launch.task_infos[0].agent_id, accept.operations[0].launch.task_infos[0].resources[0].type", false},
	} {
		d, msg := decodeJSONCall([]byte(tc.body))
		if msg != tc.msg || (msg == "" && d.hasType != tc.hasType) {
			t.Errorf("%s\n got %q (hasType %v)\nwant %q (hasType %v)", tc.body, msg, d.hasType, tc.msg, tc.hasType)
		}
	}
	d, msg := decodeJSONCall([]byte(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n","capabilities":[{"type":"NOPE"},{"type":"MULTI_ROLE"}],"offer_filters":null}}}`))
	if msg != "" || d.call.Type != scheduler.Call_SUBSCRIBE || len(d.call.Subscribe.FrameworkInfo.Capabilities) != 2 {
		t.Fatalf("capabilities with an unknown value: %q %v", msg, d.call.Subscribe)
	}
}

// TestDecodeProtobufCall: required fields are enforced and the presence of
// the type is seen on the wire.
func TestDecodeProtobufCall(t *testing.T) {
	call := scheduler.Call{Type: scheduler.Call_REVIVE}
	b, err := call.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if d, msg := decodeProtobufCall(b); msg != "" || !d.hasType || d.call.Type != scheduler.Call_REVIVE {
		t.Fatalf("REVIVE: %q %v", msg, d)
	}
	if d, msg := decodeProtobufCall(nil); msg != "" || d.hasType {
		t.Fatalf("empty body: %q hasType %v", msg, d.hasType)
	}
	if _, msg := decodeProtobufCall([]byte{0x1a, 0x00}); msg != "Failed to parse body into Call protobuf" {
		t.Fatalf("SUBSCRIBE without framework_info: %q", msg)
	}
}
