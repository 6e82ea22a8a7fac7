package protocol

import (
	"reflect"
	"testing"
)

// FuzzDecodeTaskData checks that no input crashes the decoder and that
// whatever it accepts survives an encode/decode round trip unchanged.
func FuzzDecodeTaskData(f *testing.F) {
	seed, _ := EncodeTaskData(validRedis())
	f.Add(seed)
	f.Add([]byte(`{"version":1,"runtime":"docker","image":"redis:7","network":"bridge","ports":{"redis":31000},"volume":{"host_path":"/v","container_path":"/data"}}`))
	f.Add([]byte(`{"version":1,"args":["redis-server","--port","1"],"health":{"command":"redis-cli ping","grace":"1m"}}`))
	f.Add([]byte(`{"version":1,"command":"x","health":{"command":"true","consecutive_failures":0}}`))
	f.Add([]byte(`{"version":1,"runtime":"docker","image":"r","args":["--port","1"],"health":{"args":["redis-cli","ping"],"timeout":"1s"}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"command":"x"}{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeTaskData(b)
		if err != nil {
			if d != nil {
				t.Fatalf("decode returned data and an error: %v", err)
			}
			return
		}
		enc, err := EncodeTaskData(*d)
		if err != nil {
			t.Fatalf("accepted data does not encode: %v (%+v)", err, d)
		}
		again, err := DecodeTaskData(enc)
		if err != nil {
			t.Fatalf("re-encoded data does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(d, again) {
			t.Fatalf("round trip changed the data:\n%+v\n%+v", d, again)
		}
	})
}

// FuzzDecodeMessage does the same for framework messages.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(`{"type":"exec","id":"1","task_id":"t","cmd":["redis-cli","INFO"],"timeout_s":3}`))
	f.Add([]byte(`{"type":"exec_result","id":"1","task_id":"t","exit_code":0,"stdout":"ok","stderr":""}`))
	f.Add([]byte(`{"type":"stats","task_id":"t","time":"2026-01-01T00:00:00Z","state":"TASK_RUNNING","cpu_seconds":1,"mem_bytes":2}`))
	f.Add([]byte(`{"type":"stats","task_id":"t","time":"2026-01-01T00:00:00+01:00","state":"TASK_RUNNING","cpu_seconds":1,"mem_bytes":2,"workload":{}}`))
	f.Add([]byte(`{"type":"exec_result","id":"1","task_id":"t","exit_code":0,"stdout":"ok","stderr":"","truncated":false}`))
	f.Add([]byte(`{"type":"error","error":"x"}`))
	f.Add([]byte(`{"type":"nope"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		enc, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
		again, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the message:\n%#v\n%#v", m, again)
		}
	})
}
