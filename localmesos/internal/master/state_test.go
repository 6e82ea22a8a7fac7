package master

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestStateShape compares /master/state with the real master's
// (testdata/transcripts/master-state.json): the same fields at every
// level that clients read, with one running task.
func TestStateShape(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/transcripts/master-state.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}

	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"msh","roles":["*"],"capabilities":[{"type":"MULTI_ROLE"},{"type":"RESERVATION_REFINEMENT"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	s.expectStatus(202, c.callOn(s, "ACCEPT", launchBody(offerID(o), "t1", a.id)))
	a.waitFor(t, "RunTask t1")
	c.sendUpdate(a.id, s.fid, "t1", mesos.TASK_RUNNING, mesos.TASK_RUNNING, "t1")
	s.next("UPDATE")

	for _, endpoint := range []string{"/master/state", "/state"} {
		res, err := http.Get(c.srv.URL + endpoint)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %v %v", endpoint, res.StatusCode, res.Header, err)
		}
		// Build facts of a real Mesos that localmesos does not have.
		skip := map[string]bool{"git_sha": true, "git_branch": true, "build_date": true, "build_time": true, "build_user": true, "log_dir": true}
		compareKeys(t, "state", want, got, skip)
		compareKeys(t, "slaves[0]", first(want["slaves"]), first(got["slaves"]), nil)
		compareKeys(t, "frameworks[0]", first(want["frameworks"]), first(got["frameworks"]), map[string]bool{"role": true})
		wt := first(path2(want, "frameworks", "tasks"))
		gt := first(path2(got, "frameworks", "tasks"))
		compareKeys(t, "tasks[0]", wt, gt, nil)
		if gt["state"] != "TASK_RUNNING" || gt["slave_id"] != a.id || gt["role"] != "*" {
			t.Errorf("task %v", gt)
		}
		res2 := path(got, "slaves")
		used := path(first(res2), "used_resources").(map[string]any)
		if used["cpus"] != 0.1 || used["mem"] != 32.0 {
			t.Errorf("used_resources %v", used)
		}
		if got["id"] != c.m.ID() || got["activated_slaves"] != 1.0 {
			t.Errorf("id %v activated %v", got["id"], got["activated_slaves"])
		}
	}
}

func first(v any) map[string]any {
	l, _ := v.([]any)
	if len(l) == 0 {
		return nil
	}
	m, _ := l[0].(map[string]any)
	return m
}

func path2(v any, list, key string) any {
	return first(path(v, list))[key]
}

func compareKeys(t *testing.T, what string, want, got map[string]any, skip map[string]bool) {
	t.Helper()
	if want == nil || got == nil {
		t.Fatalf("%s: missing (want %v, got %v)", what, want != nil, got != nil)
	}
	var missing []string
	for _, k := range keysOf(want) {
		if _, ok := got[k]; !ok && !skip[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s lacks %v (has %v)", what, missing, keysOf(got))
	}
}

// TestHeartbeats: SUBSCRIBED says the interval, HEARTBEAT follows at once
// and then every interval.
func TestHeartbeats(t *testing.T) {
	cfg := testConfig()
	cfg.HeartbeatInterval = 100 * time.Millisecond
	c := newTestCluster(t, cfg)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"hb"}}}`)
	sub := <-s.frames
	if fmt.Sprint(path(sub, "subscribed", "heartbeat_interval_seconds")) != "0.1" {
		t.Fatalf("SUBSCRIBED %v", sub)
	}
	start := time.Now()
	n := 0
	for n < 4 {
		select {
		case f := <-s.frames:
			if f["type"] != "HEARTBEAT" {
				t.Fatalf("frame %v", f)
			}
			n++
		case <-time.After(time.Second):
			t.Fatalf("only %d heartbeats", n)
		}
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("4 heartbeats within %v: not every 100ms", d)
	}
}

// TestOffersSplit: many offers are split over several OFFERS events, each
// well under mesos-go's 4 MiB frame limit.
func TestOffersSplit(t *testing.T) {
	c := newTestCluster(t, testConfig())
	big := strings.Repeat("x", 20000)
	for i := 0; i < 80; i++ {
		id := fmt.Sprintf("%s-S%d", c.m.ID(), i)
		a := newRecAgent(id)
		c.m.RegisterAgent(wire.Registration{
			Agent:   a,
			Address: "127.0.0.1:5051",
			Info: mesos.AgentInfo{ID: &mesos.AgentID{Value: id}, Hostname: "127.0.0.1", Resources: testAgentResources(),
				Attributes: []mesos.Attribute{{Name: "pad", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: big}}}},
		})
	}
	var n, events int
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"big"}}}`)
	s.next("SUBSCRIBED")
	for n < 80 {
		f := s.next("OFFERS")
		b, _ := json.Marshal(f)
		if len(b) > 3<<20 {
			t.Fatalf("OFFERS event of %d bytes", len(b))
		}
		n += len(path(f, "offers", "offers").([]any))
		events++
	}
	if events < 2 {
		t.Fatalf("80 offers of 20 KB each came in %d event", events)
	}
}

// TestCloseLeavesNoGoroutines: Close ends streams and the master's own
// goroutines.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	m, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, m: m}
	srvDone := make(chan struct{})
	srv := &http.Server{Handler: m.Handler()}
	ln, err := netListen()
	if err != nil {
		t.Fatal(err)
	}
	c.url = "http://" + ln.Addr().String() + "/api/v1/scheduler"
	go func() { _ = srv.Serve(ln); close(srvDone) }()
	a := newRecAgent(m.ID() + "-S0")
	m.RegisterAgent(wire.Registration{Agent: a, Address: "127.0.0.1:5051", Info: mesos.AgentInfo{ID: &mesos.AgentID{Value: a.id}, Hostname: "h", Resources: testAgentResources()}})
	s := c.subscribeFramework("leak", "")
	s.offers()
	m.Close()
	s.ended()
	_ = srv.Close()
	<-srvDone
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A closed master refuses politely.
	m.RegisterAgent(wire.Registration{Agent: a, Info: mesos.AgentInfo{ID: &mesos.AgentID{Value: "x"}, Port: proto.Int32(1)}})
}

// TestUpdateFrameworkRoles: leaving a role rescinds its offers.
func TestUpdateFrameworkRoles(t *testing.T) {
	c := newTestCluster(t, testConfig())
	c.addAgent(0)
	s := c.subscribe(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"roles","roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`)
	s.fid = str(s.next("SUBSCRIBED"), "subscribed", "framework_id", "value")
	o := s.offers()[0]
	r := c.callOn(s, "UPDATE_FRAMEWORK", `"update_framework":{"framework_info":{"user":"root","name":"roles","id":{"value":"`+s.fid+`"},"roles":["other"],"capabilities":[{"type":"MULTI_ROLE"}]}}`)
	if r.status != 200 {
		t.Fatalf("UPDATE_FRAMEWORK %d %q", r.status, r.body)
	}
	if got := str(s.next("RESCIND"), "rescind", "offer_id", "value"); got != offerID(o) {
		t.Fatalf("RESCIND of %s, want %s", got, offerID(o))
	}
	// Unreserved resources are offered to the new role.
	if role := str(s.offers()[0], "allocation_info", "role"); role != "other" {
		t.Fatalf("offer for role %q", role)
	}
}
