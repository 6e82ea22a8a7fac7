package agent

import (
	"testing"
	"time"

	mesostime "github.com/mesos/mesos-go/api/v1/lib/time"
)

func TestStoutDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Second, "5secs"},
		{15 * time.Minute, "15mins"},
		{2 * time.Second, "2secs"},
		{time.Minute, "1mins"},
		{400 * time.Millisecond, "400ms"},
		{1500 * time.Millisecond, "1500ms"},
		{90 * time.Second, "90secs"},
		{2500 * time.Microsecond, "2500us"},
		{36 * time.Hour, "36hrs"},
		{14 * 24 * time.Hour, "2weeks"},
		{10 * 24 * time.Hour, "10days"},
		{7 * time.Nanosecond, "7ns"},
		{0, "0ns"},
	} {
		got := stoutDuration(tc.d)
		if got != tc.want {
			t.Errorf("stoutDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
		// What mesos-go's executor config reads back.
		back, err := mesostime.ParseDuration(got)
		if err != nil || back != tc.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tc.d)
		}
	}
}

func TestAccepts(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		json   bool
		proto  bool
	}{
		{nil, true, true},
		{[]string{"*/*"}, true, true},
		{[]string{"application/json"}, true, false},
		{[]string{"application/x-protobuf", "application/x-protobuf"}, false, true},
		{[]string{"application/*;q=0.5"}, true, true},
		{[]string{"application/json;q=0, application/x-protobuf"}, false, true},
		{[]string{"text/plain"}, false, false},
	} {
		if got := accepts(tc.accept, mediaJSON); got != tc.json {
			t.Errorf("accepts(%q, json) = %v", tc.accept, got)
		}
		if got := accepts(tc.accept, mediaProtobuf); got != tc.proto {
			t.Errorf("accepts(%q, protobuf) = %v", tc.accept, got)
		}
	}
}

func TestValidUUID(t *testing.T) {
	if !validUUID(newUUID()) {
		t.Error("a new UUID is invalid")
	}
	zero := make([]byte, 16)
	if validUUID(zero) || validUUID([]byte("0123")) {
		t.Error("accepted a UUID of unknown version or length")
	}
}
