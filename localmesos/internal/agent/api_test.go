package agent

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// The tests here play the executor by hand over HTTP: the executor's
// process is a sleep that never subscribes, and the test makes its calls.

func execStatus(task string, state mesos.TaskState, uuid []byte) mesos.TaskStatus {
	src := mesos.SOURCE_EXECUTOR
	return mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, State: &state, Source: &src, UUID: uuid}
}

func execCall(fw mesos.FrameworkInfo, executorID string, t executor.Call_Type) *executor.Call {
	return &executor.Call{FrameworkID: *fw.ID, ExecutorID: mesos.ExecutorID{Value: executorID}, Type: t}
}

func execBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// execSleeper is an executor that never subscribes; its process writes
// "up" to its sandbox once started.
func (h *execHarness) runSleeper(fw mesos.FrameworkInfo, task string) mesos.ExecutorInfo {
	h.t.Helper()
	ex := execCustomExecutor("sleeper", execShell("echo up > up; exec sleep 600"))
	h.agent.RunTask(fw, &ex, h.task(task, ""))
	execWaitFile(h.t, filepath.Join(h.sandbox(fw, "sleeper"), "up"), func(s string) bool { return s == "up\n" })
	return ex
}

func TestExecutorAPIAnswers(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-api", false)
	h.runSleeper(fw, "t1")
	c := execClient{t: t, addr: h.agent.Address()}

	uuid := newUUID()
	update := execCall(fw, "sleeper", executor.Call_UPDATE)
	update.Update = &executor.Call_Update{Status: execStatus("t1", mesos.TASK_RUNNING, uuid)}
	subscribe := execCall(fw, "sleeper", executor.Call_SUBSCRIBE)
	subscribe.Subscribe = &executor.Call_Subscribe{}

	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		accept      string
		body        string
		call        *executor.Call
		code        int
		text        string
	}{
		{name: "GET", method: http.MethodGet, code: 405, text: "405 Method Not Allowed. Expecting one of { 'POST' }, but received 'GET'."},
		{name: "no content type", body: "{}", code: 400, text: "Expecting 'Content-Type' to be present"},
		{name: "text content type", contentType: "text/plain", body: "{}", code: 415, text: "Expecting 'Content-Type' of application/json or application/x-protobuf"},
		{name: "malformed JSON", contentType: mediaJSON, body: "{", code: 400, text: "Failed to parse body into JSON"},
		{name: "malformed protobuf", contentType: mediaProtobuf, body: "\xff\xff", code: 400, text: "Failed to parse body into Call protobuf"},
		{name: "no type", contentType: mediaJSON, body: `{"framework_id":{"value":"fw-api"},"executor_id":{"value":"sleeper"}}`, code: 400, text: "Failed to validate Executor::Call: Expecting 'type' to be present"},
		{name: "no executor id", contentType: mediaJSON, body: `{"type":"MESSAGE","framework_id":{"value":"fw-api"},"message":{"data":""}}`, code: 400, text: "Expecting 'executor_id' to be present"},
		{name: "subscribe without subscribe", contentType: mediaJSON, body: `{"type":"SUBSCRIBE","framework_id":{"value":"fw-api"},"executor_id":{"value":"sleeper"}}`, code: 400, text: "Expecting 'subscribe' to be present"},
		{name: "unknown framework", contentType: mediaJSON, body: `{"type":"SUBSCRIBE","framework_id":{"value":"nope"},"executor_id":{"value":"sleeper"},"subscribe":{}}`, code: 400, text: "Framework cannot be found"},
		{name: "unknown executor", contentType: mediaJSON, body: `{"type":"SUBSCRIBE","framework_id":{"value":"fw-api"},"executor_id":{"value":"nope"},"subscribe":{}}`, code: 400, text: "Executor cannot be found"},
		{name: "update before subscribe", call: update, code: 403, text: "Executor is not subscribed"},
		{name: "heartbeat of anyone", contentType: mediaJSON, body: `{"type":"HEARTBEAT","framework_id":{"value":"x"},"executor_id":{"value":"y"}}`, code: 202},
		{name: "subscribe not acceptable", contentType: mediaJSON, accept: "text/plain", body: `{"type":"SUBSCRIBE","framework_id":{"value":"fw-api"},"executor_id":{"value":"sleeper"},"subscribe":{}}`, code: 406, text: "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			switch {
			case tc.method == http.MethodGet:
				r, err := http.Get("http://" + h.agent.Address() + "/api/v1/executor")
				if err != nil {
					t.Fatal(err)
				}
				resp = r
			case tc.call != nil:
				resp = c.call(tc.call, mediaProtobuf)
			default:
				resp = c.post(tc.contentType, tc.accept, []byte(tc.body))
			}
			body := execBody(t, resp)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.text) {
				t.Fatalf("answer = %d %q, want %d containing %q", resp.StatusCode, body, tc.code, tc.text)
			}
			if tc.code >= 400 {
				if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
					t.Errorf("error Content-Type = %q", ct)
				}
				if strings.HasSuffix(body, "\n") {
					t.Errorf("error body ends with a newline: %q", body)
				}
			}
			if tc.code == 202 && resp.Header.Get("Content-Type") != "" {
				t.Errorf("202 with Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestExecutorAPISubscribeAndUpdates drives a whole executor life over
// JSON: SUBSCRIBED then LAUNCH, invalid updates answered 400, an update
// acknowledged by the agent before the scheduler sees it, duplicates
// ignored, one update at a time to the master.
func TestExecutorAPISubscribeAndUpdates(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-json", false)
	ex := h.runSleeper(fw, "t1")
	c := execClient{t: t, addr: h.agent.Address()}

	sub := execCall(fw, "sleeper", executor.Call_SUBSCRIBE)
	sub.Subscribe = &executor.Call_Subscribe{}
	resp := c.call(sub, mediaJSON)
	if resp.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE = %d %s", resp.StatusCode, execBody(t, resp))
	}
	if ct := resp.Header.Get("Content-Type"); ct != mediaJSON {
		t.Errorf("Content-Type = %q, want exactly %q", ct, mediaJSON)
	}
	if resp.ContentLength != -1 || resp.Header.Get("Mesos-Stream-Id") != "" {
		t.Errorf("stream has Content-Length %d / Mesos-Stream-Id %q", resp.ContentLength, resp.Header.Get("Mesos-Stream-Id"))
	}
	events := execReadEvents(t, resp, mediaJSON)
	ev := events.next(t)
	if ev.Type != executor.Event_SUBSCRIBED {
		t.Fatalf("first event = %s", ev.Type)
	}
	s := ev.Subscribed
	if s.ExecutorInfo.FrameworkID.GetValue() != "fw-json" || s.ExecutorInfo.Resources[0].AllocationInfo.GetRole() != "*" ||
		s.FrameworkInfo.ID.GetValue() != "fw-json" || s.AgentInfo.GetID().GetValue() != h.agent.ID().Value ||
		s.ContainerID == nil || s.ContainerID.Value == "" {
		t.Errorf("SUBSCRIBED = %+v", s)
	}
	ev = events.next(t)
	if ev.Type != executor.Event_LAUNCH || ev.Launch.Task.TaskID.Value != "t1" ||
		ev.Launch.Task.Resources[0].AllocationInfo.GetRole() != "*" || ev.Launch.Task.Executor == nil {
		t.Fatalf("second event = %+v", ev)
	}

	post := func(status mesos.TaskStatus) (int, string) {
		u := execCall(fw, "sleeper", executor.Call_UPDATE)
		u.Update = &executor.Call_Update{Status: status}
		resp := c.call(u, mediaJSON)
		return resp.StatusCode, execBody(t, resp)
	}
	// Invalid updates.
	staging := execStatus("t1", mesos.TASK_STAGING, newUUID())
	if code, body := post(staging); code != 400 || !strings.Contains(body, "TASK_STAGING") {
		t.Errorf("STAGING update = %d %q", code, body)
	}
	short := execStatus("t1", mesos.TASK_RUNNING, []byte("0123"))
	if code, body := post(short); code != 400 || !strings.Contains(body, "Not a valid UUID") {
		t.Errorf("short uuid = %d %q", code, body)
	}
	agentSource := execStatus("t1", mesos.TASK_RUNNING, newUUID())
	src := mesos.SOURCE_AGENT
	agentSource.Source = &src
	if code, body := post(agentSource); code != 400 || !strings.Contains(body, "expecting 'SOURCE_EXECUTOR'") {
		t.Errorf("wrong source = %d %q", code, body)
	}
	other := execStatus("t1", mesos.TASK_RUNNING, newUUID())
	other.ExecutorID = &mesos.ExecutorID{Value: "other"}
	if code, body := post(other); code != 400 || !strings.Contains(body, "does not match ExecutorID") {
		t.Errorf("other executor = %d %q", code, body)
	}

	starting := execStatus("t1", mesos.TASK_STARTING, newUUID())
	running := execStatus("t1", mesos.TASK_RUNNING, newUUID())
	for _, st := range []mesos.TaskStatus{starting, running, starting} {
		if code, body := post(st); code != 202 {
			t.Fatalf("update %s = %d %q", st.GetState(), code, body)
		}
	}
	// The agent acknowledges each update (the duplicate too), before any
	// scheduler acknowledgement.
	for _, want := range [][]byte{starting.UUID, running.UUID, starting.UUID} {
		ev := events.next(t)
		if ev.Type != executor.Event_ACKNOWLEDGED || string(ev.Acknowledged.UUID) != string(want) || ev.Acknowledged.TaskID.Value != "t1" {
			t.Fatalf("event = %+v, want ACKNOWLEDGED", ev)
		}
	}
	u := h.expectUpdate("t1", mesos.TASK_STARTING)
	if u.Status.GetSource() != mesos.SOURCE_EXECUTOR || u.Status.ExecutorID.GetValue() != "sleeper" ||
		u.Status.ContainerStatus == nil || u.Status.ContainerStatus.ContainerID.GetValue() != s.ContainerID.Value ||
		u.Status.ContainerStatus.GetExecutorPID() == 0 ||
		len(u.Status.ContainerStatus.NetworkInfos) != 1 || u.Status.ContainerStatus.NetworkInfos[0].IPAddresses[0].GetIPAddress() != "127.0.0.3" {
		t.Errorf("forwarded STARTING = %+v", u.Status)
	}
	// RUNNING waits for the scheduler's ACK of STARTING.
	h.noMoreUpdates(300 * time.Millisecond)
	h.ack(fw, u)
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)

	// MESSAGE both ways.
	msg := execCall(fw, "sleeper", executor.Call_MESSAGE)
	msg.Message = &executor.Call_Message{Data: []byte("from executor")}
	if resp := c.call(msg, mediaJSON); resp.StatusCode != 202 {
		t.Errorf("MESSAGE = %d", resp.StatusCode)
	}
	if m := h.master.nextMessage(t); m.executor != "sleeper" || string(m.data) != "from executor" {
		t.Errorf("message to master = %+v", m)
	}
	h.agent.FrameworkMessage(*fw.ID, ex.ExecutorID, []byte("to executor"))
	if ev := events.next(t); ev.Type != executor.Event_MESSAGE || string(ev.Message.Data) != "to executor" {
		t.Errorf("event = %+v, want MESSAGE", ev)
	}

	// KILL goes to the executor, with the policy.
	grace := mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(time.Second)}}
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "t1"}, &grace)
	ev = events.next(t)
	if ev.Type != executor.Event_KILL || ev.Kill.TaskID.Value != "t1" || ev.Kill.KillPolicy.GracePeriod.Nanoseconds != int64(time.Second) {
		t.Fatalf("event = %+v, want KILL", ev)
	}
	killed := execStatus("t1", mesos.TASK_KILLED, newUUID())
	if code, _ := post(killed); code != 202 {
		t.Fatalf("KILLED update = %d", code)
	}
	if ev := events.next(t); ev.Type != executor.Event_ACKNOWLEDGED {
		t.Fatalf("event = %+v", ev)
	}
	u = h.expectUpdate("t1", mesos.TASK_KILLED)
	if u.LatestState != mesos.TASK_KILLED {
		t.Errorf("latest state %s", u.LatestState)
	}
	// An update after the terminal one is dropped, but acknowledged.
	late := execStatus("t1", mesos.TASK_RUNNING, newUUID())
	if code, _ := post(late); code != 202 {
		t.Fatalf("late update = %d", code)
	}
	if ev := events.next(t); ev.Type != executor.Event_ACKNOWLEDGED || string(ev.Acknowledged.UUID) != string(late.UUID) {
		t.Fatalf("event = %+v", ev)
	}
	h.ack(fw, u)
	h.noMoreUpdates(200 * time.Millisecond)

	// A second subscription replaces the first, which ends.
	resp2 := c.call(sub, mediaProtobuf)
	if resp2.StatusCode != 200 || resp2.Header.Get("Content-Type") != mediaProtobuf {
		t.Fatalf("second SUBSCRIBE = %d %q", resp2.StatusCode, resp2.Header.Get("Content-Type"))
	}
	events2 := execReadEvents(t, resp2, mediaProtobuf)
	events.ended(t)
	if ev := events2.next(t); ev.Type != executor.Event_SUBSCRIBED {
		t.Fatalf("event = %s", ev.Type)
	}
	// The executor shuts down: SHUTDOWN on the stream, and SIGKILL after
	// the grace period since "sleep" ignores it.
	h.agent.ShutdownExecutor(*fw.ID, ex.ExecutorID)
	if ev := events2.next(t); ev.Type != executor.Event_SHUTDOWN {
		t.Fatalf("event = %s, want SHUTDOWN", ev.Type)
	}
	if e := h.master.nextExit(t); e.executor != "sleeper" || e.status != 9 {
		t.Errorf("exit = %+v, want status 9 (SIGKILL)", e)
	}
	events2.ended(t)
}
