package localmesos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawStream is a JSON scheduler subscription read frame by frame, as
// bytes: what a JSON client gets on the wire.
type rawStream struct {
	t        *testing.T
	url      string
	streamID string
	fid      string
	frames   chan []byte
}

func rawSubscribe(t *testing.T, url string) *rawStream {
	t.Helper()
	body := `{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"raw","roles":["*"],"capabilities":[{"type":"MULTI_ROLE"}]}}}`
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawStream{t: t, url: url, streamID: res.Header.Get("Mesos-Stream-Id"), frames: make(chan []byte, 1000)}
	t.Cleanup(func() { res.Body.Close() })
	go func() {
		defer close(s.frames)
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			s.frames <- buf
		}
	}()
	return s
}

// subscribed subscribes and returns the stream once SUBSCRIBED arrived.
func subscribed(t *testing.T, url string) (*rawStream, []byte) {
	s := rawSubscribe(t, url)
	sub := s.next("SUBSCRIBED")
	var ev struct {
		Subscribed struct {
			FrameworkID struct{ Value string } `json:"framework_id"`
		}
	}
	if err := json.Unmarshal(sub, &ev); err != nil {
		t.Fatal(err)
	}
	s.fid = ev.Subscribed.FrameworkID.Value
	return s, sub
}

// offer waits for OFFERS and returns the first offer's id and agent id
// (as JSON) and the whole event.
func (s *rawStream) offer() (id, agentID string, event []byte) {
	s.t.Helper()
	event = s.next("OFFERS")
	var ev struct {
		Offers struct {
			Offers []struct {
				ID      json.RawMessage `json:"id"`
				AgentID json.RawMessage `json:"agent_id"`
			}
		}
	}
	if err := json.Unmarshal(event, &ev); err != nil || len(ev.Offers.Offers) == 0 {
		s.t.Fatalf("OFFERS %s: %v", event, err)
	}
	o := ev.Offers.Offers[0]
	return string(o.ID), string(o.AgentID), event
}

// launch accepts an offer with command tasks of 0.1 cpus and 32 MB each.
func (s *rawStream) launch(offerID, agentID string, cmd string, ids ...string) {
	s.t.Helper()
	var tasks []string
	for _, id := range ids {
		tasks = append(tasks, `{"name":"`+id+`","task_id":{"value":"`+id+`"},"agent_id":`+agentID+`,"command":{"value":"`+cmd+`"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}]}`)
	}
	s.call(`{"framework_id":{"value":"` + s.fid + `"},"type":"ACCEPT","accept":{"offer_ids":[` + offerID + `],"operations":[{"type":"LAUNCH","launch":{"task_infos":[` + strings.Join(tasks, ",") + `]}}],"filters":{"refuse_seconds":0}}}`)
}

// next returns the next frame of type typ (others are skipped).
func (s *rawStream) next(typ string) []byte {
	s.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatalf("stream ended waiting for %s", typ)
			}
			if bytes.HasPrefix(f, []byte(`{"type":"`+typ+`"`)) {
				return f
			}
		case <-timeout:
			s.t.Fatalf("no %s event", typ)
		}
	}
}

func (s *rawStream) call(body string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/scheduler", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mesos-Stream-Id", s.streamID)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		s.t.Fatalf("call %s: %d %s", body, res.StatusCode, b)
	}
}

// update waits for the next update, checks its state and acknowledges it.
func (s *rawStream) update(state string) []byte {
	s.t.Helper()
	f := s.next("UPDATE")
	var ev struct {
		Update struct {
			Status struct {
				State   string          `json:"state"`
				TaskID  json.RawMessage `json:"task_id"`
				AgentID json.RawMessage `json:"agent_id"`
				UUID    string          `json:"uuid"`
			} `json:"status"`
		} `json:"update"`
	}
	if err := json.Unmarshal(f, &ev); err != nil {
		s.t.Fatal(err)
	}
	st := ev.Update.Status
	if state != "" && st.State != state {
		s.t.Fatalf("update %s, want %s", f, state)
	}
	if st.UUID != "" {
		s.call(`{"framework_id":{"value":"` + s.fid + `"},"type":"ACKNOWLEDGE","acknowledge":{"agent_id":` + string(st.AgentID) + `,"task_id":` + string(st.TaskID) + `,"uuid":"` + st.UUID + `"}}`)
	}
	return f
}

func getJSON(t *testing.T, url string) (map[string]any, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s %s", url, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return v, string(b)
}

// wantMetrics polls a /metrics/snapshot until every wanted value is
// there (each written as Mesos writes a double).
func wantMetrics(t *testing.T, url string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := getJSON(t, url)
		missing := ""
		for k, v := range want {
			if !strings.Contains(body, `"`+k+`":`+v) {
				missing = k + "=" + v
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s in %s", url, missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndpointsAndJSON drives a cluster over HTTP with a JSON scheduler
// and reads what dashboards and JSON clients read: events as Mesos writes
// them, /master/state, the agent's /state and both /metrics/snapshot.
func TestEndpointsAndJSON(t *testing.T) {
	cfg := transcriptConfig(t)
	c := startCluster(t, cfg)
	agent := c.Agents()[0]
	master := c.MasterURL()
	agentURL := "http://" + agent.Address

	wantMetrics(t, master+"/metrics/snapshot", map[string]string{
		"master/elected": "1.0", "master/slaves_active": "1.0", "master/slaves_connected": "1.0",
		"master/cpus_total": "2.0", "master/mem_total": "2048.0", "master/disk_total": "4096.0",
		"master/frameworks_active": "0.0", "master/tasks_running": "0.0",
	})
	wantMetrics(t, agentURL+"/metrics/snapshot", map[string]string{"slave/registered": "1.0", "slave/cpus_total": "2.0", "slave/tasks_running": "0.0"})

	s, sub := subscribed(t, master)
	if !bytes.Contains(sub, []byte(`"heartbeat_interval_seconds":15.0`)) {
		t.Errorf("SUBSCRIBED = %s", sub)
	}
	offerID, agentID, offers := s.offer()
	for _, bad := range []string{"null", `"attributes"`, `"reservations"`, "[]", `"value":2}`} {
		if bytes.Contains(offers, []byte(bad)) {
			t.Errorf("OFFERS has %s: %s", bad, offers)
		}
	}
	if !bytes.Contains(offers, []byte(`"scalar":{"value":2.0}`)) {
		t.Errorf("OFFERS = %s", offers)
	}
	s.call(`{"framework_id":{"value":"` + s.fid + `"},"type":"ACCEPT","accept":{"offer_ids":[` + offerID + `],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"sleeper","task_id":{"value":"sleeper"},"agent_id":` + agentID + `,"command":{"value":"sleep 600"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.5}},{"name":"mem","type":"SCALAR","scalar":{"value":64}}]}]}}],"filters":{"refuse_seconds":0}}}`)
	s.update("TASK_STARTING")
	running := s.update("TASK_RUNNING")
	ip := `{"protocol":"IPv4","ip_address":"` + agent.Hostname + `"}`
	if !bytes.Contains(running, []byte(`"ip_addresses":[`+ip+`]`)) {
		t.Errorf("UPDATE = %s, want ip_addresses [%s]", running, ip)
	}

	wantMetrics(t, master+"/metrics/snapshot", map[string]string{
		"master/tasks_running": "1.0", "master/tasks_staging": "0.0", "master/frameworks_active": "1.0",
		"master/frameworks_connected": "1.0", "master/cpus_used": "0.5", "master/mem_used": "64.0", "master/cpus_percent": "0.25",
	})
	wantMetrics(t, agentURL+"/metrics/snapshot", map[string]string{
		"slave/tasks_running": "1.0", "slave/executors_running": "1.0", "slave/frameworks_active": "1.0",
		"slave/cpus_used": "0.5", "slave/mem_used": "64.0",
	})
	_, state := getJSON(t, master+"/master/state")
	if !strings.Contains(state, ip) || !strings.Contains(state, `"cpus":2.0`) || strings.Contains(state, "null") {
		t.Errorf("/master/state = %s", state)
	}
	for _, path := range []string{"/state", "/slave(1)/state"} {
		doc, body := getJSON(t, agentURL+path)
		if doc["id"] != agent.ID || doc["pid"] != "slave(1)@"+agent.Address {
			t.Errorf("%s: id %v pid %v", path, doc["id"], doc["pid"])
		}
		fws, _ := doc["frameworks"].([]any)
		if len(fws) != 1 {
			t.Fatalf("%s: frameworks %s", path, body)
		}
		fw := fws[0].(map[string]any)
		execs, _ := fw["executors"].([]any)
		if fw["id"] != s.fid || len(execs) != 1 {
			t.Fatalf("%s: framework %v", path, fw)
		}
		tasks, _ := execs[0].(map[string]any)["tasks"].([]any)
		if len(tasks) != 1 || tasks[0].(map[string]any)["state"] != "TASK_RUNNING" || tasks[0].(map[string]any)["id"] != "sleeper" {
			t.Errorf("%s: tasks %v", path, tasks)
		}
		if !strings.Contains(body, `"resources":{"cpus":2.0,"disk":4096.0,"gpus":0.0,"mem":2048.0,"ports":"[31000-31099]"}`) {
			t.Errorf("%s: %s", path, body)
		}
	}

	s.call(`{"framework_id":{"value":"` + s.fid + `"},"type":"KILL","kill":{"task_id":{"value":"sleeper"}}}`)
	s.update("TASK_KILLED")
	wantMetrics(t, master+"/metrics/snapshot", map[string]string{"master/tasks_running": "0.0", "master/tasks_killed": "1.0"})
	wantMetrics(t, agentURL+"/metrics/snapshot", map[string]string{"slave/tasks_running": "0.0", "slave/tasks_killed": "1.0"})
}

// TestRemoveAgentCost: removing an agent (host loss) costs what its own
// tasks cost, however many other processes the host runs. Killing each
// container used to read the environment of every process on the host:
// 12 s here for 40 tasks beside 1,000 other processes.
func TestRemoveAgentCost(t *testing.T) {
	var others []*exec.Cmd
	t.Cleanup(func() {
		for _, c := range others {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	for i := 0; i < 1000; i++ {
		c := exec.Command("sleep", "600")
		if err := c.Start(); err != nil {
			t.Skipf("cannot start 1000 processes: %v", err)
		}
		others = append(others, c)
	}
	cfg := transcriptConfig(t)
	cfg.Resources = "cpus:8;mem:8192;disk:4096;ports:[31000-31099]"
	c := startCluster(t, cfg)
	s, _ := subscribed(t, c.MasterURL())
	offerID, agentID, _ := s.offer()
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, "t"+strconv.Itoa(i))
	}
	s.launch(offerID, agentID, "sleep 600", ids...)
	for range 2 * len(ids) { // STARTING and RUNNING of each
		s.update("")
	}
	start := time.Now()
	res, err := http.Post(c.MasterURL()+"/admin/agents/"+c.Agents()[0].ID+"/remove", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	took := time.Since(start)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("remove: %d", res.StatusCode)
	}
	// Generous for a loaded machine: the removal takes tens of ms here.
	if took > 3*time.Second {
		t.Errorf("removing an agent with 40 tasks took %v", took)
	}
	execNoProcessesLeft(t, cfg.WorkDir)
	for _, o := range others[:10] {
		// Killed, it would be a zombie until the cleanup reaps it.
		b, err := os.ReadFile("/proc/" + strconv.Itoa(o.Process.Pid) + "/stat")
		if i := bytes.LastIndexByte(b, ')'); err != nil || i < 0 || len(b) < i+3 || b[i+2] != 'S' && b[i+2] != 'R' {
			t.Errorf("a process outside the cluster was killed: %q %v", b, err)
		}
	}
}
