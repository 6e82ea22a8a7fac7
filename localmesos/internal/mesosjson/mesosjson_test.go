package mesosjson

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// TestRecordedEvents: every JSON event a real Mesos 1.12 master sent in
// the recordings, decoded into mesos-go's types and written again, comes
// out as Mesos wrote it: the same fields in the same order, the same
// literals, numbers written alike (a decimal point or not). Only the last
// digit of a 17-digit double may differ (Mesos' dtoa is not always the
// shortest; both read back as the same double).
func TestRecordedEvents(t *testing.T) {
	files, err := filepath.Glob("../../testdata/transcripts/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	checked := 0
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var rec struct {
				Dir      string          `json:"dir"`
				Scenario string          `json:"scenario"`
				Body     json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Dir != "frame" || len(rec.Body) == 0 || strings.HasSuffix(rec.Scenario, "/executor") {
				continue
			}
			// mesos-go v0.0.11 does not know QUOTA_V2 (see the README).
			want := bytes.ReplaceAll(rec.Body, []byte(`,{"type":"QUOTA_V2"}`), nil)
			var ev scheduler.Event
			if err := ev.UnmarshalJSON(want); err != nil {
				t.Fatalf("%s: %v", filepath.Base(file), err)
			}
			got, err := Marshal(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(got, want) {
				t.Errorf("%s:\n got %s\nwant %s", filepath.Base(file), got, want)
			}
			checked++
		}
		f.Close()
	}
	if checked < 50 {
		t.Errorf("only %d events checked", checked)
	}
}

// sameJSON compares token by token; numbers by value and by whether they
// have a decimal point.
func sameJSON(a, b []byte) bool {
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for {
		ta, ea := da.Token()
		tb, eb := db.Token()
		if ea != nil || eb != nil {
			return ea == io.EOF && eb == io.EOF
		}
		na, aNum := ta.(json.Number)
		nb, bNum := tb.(json.Number)
		if aNum && bNum {
			fa, _ := na.Float64()
			fb, _ := nb.Float64()
			if fa != fb || strings.Contains(na.String(), ".") != strings.Contains(nb.String(), ".") {
				return false
			}
			continue
		}
		if ta != tb {
			return false
		}
	}
}

func TestDefaultsAndAbsentFields(t *testing.T) {
	ip := "127.0.0.2"
	hb := 15.0
	for _, c := range []struct {
		ev   scheduler.Event
		want string
	}{
		{
			scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{FrameworkID: &mesos.FrameworkID{Value: "f"}, HeartbeatIntervalSeconds: &hb}},
			`{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f"},"heartbeat_interval_seconds":15.0}}`,
		},
		{
			scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: mesos.TaskStatus{
				TaskID: mesos.TaskID{Value: "t"}, State: mesos.TASK_RUNNING.Enum(),
				ContainerStatus: &mesos.ContainerStatus{NetworkInfos: []mesos.NetworkInfo{{IPAddresses: []mesos.NetworkInfo_IPAddress{{IPAddress: &ip}}}}},
			}}},
			`{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","container_status":{"network_infos":[{"ip_addresses":[{"protocol":"IPv4","ip_address":"127.0.0.2"}]}]}}}}`,
		},
		{
			scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: []mesos.Offer{{
				ID: mesos.OfferID{Value: "o"}, FrameworkID: mesos.FrameworkID{Value: "f"}, AgentID: mesos.AgentID{Value: "a"}, Hostname: "h",
				Resources: []mesos.Resource{{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 2}}},
			}}}},
			`{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o"},"framework_id":{"value":"f"},"agent_id":{"value":"a"},"hostname":"h","resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":2.0}}]}]}}`,
		},
	} {
		got, err := Marshal(&c.ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestDouble(t *testing.T) {
	for v, want := range map[float64]string{
		15: "15.0", 0: "0.0", 0.1: "0.1", 2048: "2048.0",
		1795261326.25988: "1795261326.25988", 1.9: "1.9", 1795261619.07658: "1795261619.07658",
	} {
		if got := Double(v); got != want {
			t.Errorf("Double(%v) = %s, want %s", v, got, want)
		}
	}
}
