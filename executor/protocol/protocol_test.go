package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validRedis() TaskData {
	return TaskData{
		Version:   TaskDataVersion,
		Framework: "redis",
		Instance:  "cache1",
		Ordinal:   2,
		Role:      RoleSlave,
		Runtime:   RuntimeProcess,
		Command:   "redis-server --port $STATEFUL_PORT_REDIS",
		Env:       map[string]string{"REDIS_PASSWORD": "s3cret"},
		Network:   NetworkHost,
		Ports:     map[string]uint32{"redis": 31001},
		Volume:    &Volume{HostPath: "/var/lib/stateful/cache1-2", ContainerPath: "/data"},
		Health:    &Health{TCPPort: "redis", Interval: Duration(2 * time.Second), Grace: Duration(30 * time.Second)},
		CPU:       0.5,
		MemMB:     256,
		Labels:    map[string]string{"team": "cache"},
	}
}

func TestTaskDataRoundTrip(t *testing.T) {
	in := validRedis()
	b, err := EncodeTaskData(in)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if !strings.Contains(string(b), `"interval":"2s"`) {
		t.Errorf("durations should be written as Go duration strings, got %s", b)
	}
	out, err := DecodeTaskData(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(*out, in) {
		t.Errorf("round trip changed the data:\n got %+v\nwant %+v", *out, in)
	}
}

func TestEncodeFillsVersion(t *testing.T) {
	d := validRedis()
	d.Version = 0
	b, err := EncodeTaskData(d)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTaskData(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Version != TaskDataVersion {
		t.Errorf("version = %d, want %d", out.Version, TaskDataVersion)
	}
}

func TestDecodeTaskDataRejects(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", ``, "empty"},
		{"not json", `redis-server`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"no version", `{"command":"x"}`, "no version"},
		{"newer version", `{"version":2,"command":"x","brand_new":true}`, "unsupported task data version 2"},
		{"unknown field", `{"version":1,"command":"x","colour":"red"}`, `unknown field "colour"`},
		{"trailing", `{"version":1,"command":"x"} {}`, "after top-level value"},
		{"case-insensitive key", `{"version":1,"COMMAND":"x"}`, `unknown field "COMMAND"`},
		{"nested unknown key", `{"version":1,"command":"x","volume":{"host_path":"/v","hostpath":"/w"}}`, `unknown field "volume.hostpath"`},
		{"wrong type", `{"version":1,"command":5}`, "cannot unmarshal"},
		{"bad duration", `{"version":1,"command":"x","ports":{"p":1},"health":{"tcp_port":"p","interval":5}}`, "duration"},
		{"nothing to run", `{"version":1}`, "image or a command"},
		{"docker without image", `{"version":1,"runtime":"docker","command":"x"}`, "image: required"},
		{"process without command", `{"version":1,"runtime":"process","image":"redis"}`, "command"},
		{"unknown runtime", `{"version":1,"runtime":"vm","command":"x"}`, "runtime"},
		{"command and args", `{"version":1,"command":"x","args":["y"]}`, "not both"},
		{"empty program", `{"version":1,"args":[""]}`, "args[0]"},
		{"bridge process", `{"version":1,"runtime":"process","command":"x","network":"bridge"}`, "bridge needs the docker runtime"},
		{"bad network", `{"version":1,"command":"x","network":"overlay"}`, "network"},
		{"bad role", `{"version":1,"command":"x","role":"boss"}`, "role"},
		{"negative ordinal", `{"version":1,"command":"x","ordinal":-1}`, "ordinal"},
		{"port zero", `{"version":1,"command":"x","ports":{"redis":0}}`, "not in 1-65535"},
		{"port too big", `{"version":1,"command":"x","ports":{"redis":70000}}`, "not in 1-65535"},
		{"bad port name", `{"version":1,"command":"x","ports":{"Redis Port":1}}`, "name"},
		{"bad env name", `{"version":1,"command":"x","env":{"A=B":"1"}}`, "variable name"},
		{"relative volume", `{"version":1,"command":"x","volume":{"host_path":"data"}}`, "host_path"},
		{"dotdot volume", `{"version":1,"command":"x","volume":{"host_path":"/a/../b"}}`, "host_path"},
		{"root volume", `{"version":1,"command":"x","volume":{"host_path":"/"}}`, "must not be /"},
		{"docker volume without container path", `{"version":1,"runtime":"docker","image":"r","volume":{"host_path":"/v"}}`, "container_path"},
		{"empty health", `{"version":1,"command":"x","health":{}}`, "set a command, args or a tcp_port"},
		{"both health", `{"version":1,"command":"x","ports":{"p":1},"health":{"command":"true","tcp_port":"p"}}`, "only one of"},
		{"command and args health", `{"version":1,"command":"x","health":{"command":"true","args":["true"]}}`, "only one of"},
		{"empty health program", `{"version":1,"command":"x","health":{"args":[""]}}`, "health.args[0]"},
		{"health unknown port", `{"version":1,"command":"x","health":{"tcp_port":"redis"}}`, "not one of the task's ports"},
		{"negative grace", `{"version":1,"command":"x","health":{"command":"true","grace":"-1s"}}`, "health.grace"},
		{"negative consecutive failures", `{"version":1,"command":"x","health":{"command":"true","consecutive_failures":-1}}`, "health.consecutive_failures"},
		{"fractional consecutive failures", `{"version":1,"command":"x","health":{"command":"true","consecutive_failures":1.5}}`, "consecutive_failures"},
		{"negative cpu", `{"version":1,"command":"x","cpu":-1}`, "cpu"},
		{"too big", `{"version":1,"command":"` + strings.Repeat("x", maxTaskData) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeTaskData([]byte(tt.data))
			if err == nil {
				t.Fatalf("decoded %+v, want an error containing %q", d, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestUnsupportedVersionIsTyped(t *testing.T) {
	_, err := DecodeTaskData([]byte(`{"version":7}`))
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("error %v is not ErrUnsupportedVersion", err)
	}
}

func TestEnvValuesNeverInErrors(t *testing.T) {
	_, err := DecodeTaskData([]byte("{\"version\":1,\"command\":\"x\",\"env\":{\"PASSWORD\":\"hunter2\\u0000\"}}"))
	if err == nil {
		t.Fatal("a NUL byte in an env value must be rejected")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks an env value: %v", err)
	}
}

func TestHealthDefaults(t *testing.T) {
	var h Health
	if h.IntervalOrDefault() != DefaultHealthInterval || h.GraceOrDefault() != DefaultHealthGrace || h.TimeoutOrDefault() != DefaultHealthTimeout {
		t.Errorf("zero health should use defaults, got %v %v %v", h.IntervalOrDefault(), h.GraceOrDefault(), h.TimeoutOrDefault())
	}
	h = Health{Interval: Duration(time.Second), Grace: Duration(2 * time.Second), Timeout: Duration(3 * time.Second)}
	if h.IntervalOrDefault() != time.Second || h.GraceOrDefault() != 2*time.Second || h.TimeoutOrDefault() != 3*time.Second {
		t.Errorf("set values should win, got %v %v %v", h.IntervalOrDefault(), h.GraceOrDefault(), h.TimeoutOrDefault())
	}
	if got := h.ConsecutiveFailuresOrDefault(); got != DefaultHealthConsecutiveFailures {
		t.Errorf("unset consecutive failures = %d, want the default %d", got, DefaultHealthConsecutiveFailures)
	}
}

// An explicit 0 ("never kill") must survive the wire and not turn into
// the default.
func TestHealthConsecutiveFailuresZeroMeansNever(t *testing.T) {
	for _, tc := range []struct {
		json string
		want int
	}{
		{`{"version":1,"command":"x","health":{"command":"true","consecutive_failures":0}}`, 0},
		{`{"version":1,"command":"x","health":{"command":"true","consecutive_failures":5}}`, 5},
		{`{"version":1,"command":"x","health":{"command":"true"}}`, DefaultHealthConsecutiveFailures},
	} {
		d, err := DecodeTaskData([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		enc, err := EncodeTaskData(*d)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeTaskData(enc)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if got := again.Health.ConsecutiveFailuresOrDefault(); got != tc.want {
			t.Errorf("%s: after a round trip consecutive failures = %d, want %d", tc.json, got, tc.want)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	healthy := true
	msgs := []Message{
		&Exec{ID: "1", TaskID: "cache1-0.1", Cmd: []string{"redis-cli", "INFO", "replication"}, TimeoutSeconds: 5},
		&ExecResult{ID: "1", TaskID: "cache1-0.1", ExitCode: 0, Stdout: "role:master\n", Stderr: ""},
		&Stats{TaskID: "t", ExecutorID: "e", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), State: "TASK_RUNNING", Healthy: &healthy, CPUSeconds: 1.5, MemBytes: 1 << 20, Workload: map[string]string{"role": "master"}},
		&ErrorReply{ID: "9", Error: "no such task"},
	}
	for _, m := range msgs {
		t.Run(m.MessageType(), func(t *testing.T) {
			b, err := EncodeMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), `{"type":"`+m.MessageType()+`",`) {
				t.Errorf("encoded message should start with its type: %s", b)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip changed the message:\n got %#v\nwant %#v", got, m)
			}
		})
	}
}

func TestExecWireFormat(t *testing.T) {
	// The form the issue and the scheduler engineers write by hand.
	m, err := DecodeMessage([]byte(`{"type":"exec","id":"42","task_id":"t1","cmd":["redis-cli","PING"],"timeout_s":2.5}`))
	if err != nil {
		t.Fatal(err)
	}
	e := m.(*Exec)
	if e.ID != "42" || e.TaskID != "t1" || len(e.Cmd) != 2 || e.Timeout() != 2500*time.Millisecond {
		t.Errorf("decoded %+v", e)
	}
	if (&Exec{}).Timeout() != DefaultExecTimeout {
		t.Error("no timeout should mean the default")
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"not json", `hello`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"no type", `{"id":"1"}`, "no type"},
		{"type not string", `{"type":1}`, "must be a string"},
		{"unknown type", `{"type":"reboot"}`, `unknown message type "reboot"`},
		{"unknown field", `{"type":"exec","id":"1","task_id":"t","cmd":["x"],"sudo":true}`, "unknown field"},
		{"exec without id", `{"type":"exec","task_id":"t","cmd":["x"]}`, "id must be"},
		{"exec without task", `{"type":"exec","id":"1","cmd":["x"]}`, "task_id"},
		{"exec without cmd", `{"type":"exec","id":"1","task_id":"t","cmd":[]}`, "cmd"},
		{"exec long timeout", `{"type":"exec","id":"1","task_id":"t","cmd":["x"],"timeout_s":100000}`, "timeout_s"},
		{"exec negative timeout", `{"type":"exec","id":"1","task_id":"t","cmd":["x"],"timeout_s":-1}`, "timeout_s"},
		{"too big", `{"type":"error","error":"` + strings.Repeat("x", MaxMessageSize) + `"}`, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeMessage([]byte(tt.data))
			if err == nil {
				t.Fatalf("decoded %#v, want error containing %q", m, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	if got := MessageID([]byte(`{"type":"bogus","id":"abc"}`)); got != "abc" {
		t.Errorf("MessageID = %q, want abc", got)
	}
	if got := MessageID([]byte(`garbage`)); got != "" {
		t.Errorf("MessageID of garbage = %q, want empty", got)
	}
}

func TestStatusDataRoundTrip(t *testing.T) {
	code := 137
	in := StatusData{Runtime: RuntimeDocker, ExitCode: &code, StderrTail: "oom\n", Host: "127.0.0.2"}
	b, err := EncodeStatusData(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeStatusData(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*out, in) {
		t.Errorf("got %+v, want %+v", *out, in)
	}
	if _, err := DecodeStatusData([]byte(`{"exit_code":"x"}`)); err == nil {
		t.Error("a malformed status data must be rejected")
	}
}
