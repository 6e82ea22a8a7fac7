package localmesos

// Helpers for the executor-side end-to-end tests (executor_*_test.go): a
// cluster with short timers, the testexec executor binary, a plain-HTTP
// JSON scheduler (as the transcripts' curl scripts), and a recording proxy
// between executors and their agent (as the transcripts' recorder).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/framing"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// execWait bounds every wait of these tests: generous, for a loaded 2-core
// CI machine; a passing test never waits it out.
const execWait = 45 * time.Second

// execBuildTestexec builds the testexec executor into dir.
func execBuildTestexec(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "testexec")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mesos-stateful/stateful/localmesos/internal/testexec").CombinedOutput()
	if err != nil {
		t.Fatalf("building testexec: %v\n%s", err, out)
	}
	return bin
}

// execConfig is the transcripts' cluster with timers short enough for the
// executor tests.
func execConfig(t *testing.T) Config {
	cfg := transcriptConfig(t)
	cfg.AgentPingTimeout = 5 * time.Second
	cfg.ExecutorShutdownGracePeriod = 3 * time.Second
	cfg.ExecutorReregistrationTimeout = time.Second
	cfg.StatusUpdateRetryInterval = 5 * time.Second
	return cfg
}

// execProcessesIn lists live processes whose environment or working
// directory points into dir.
func execProcessesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		if bytes.Contains(env, []byte(dir)) || strings.HasPrefix(cwd, dir) {
			out = append(out, pid)
		}
	}
	return out
}

func execNoProcessesLeft(t testing.TB, dir string) {
	t.Helper()
	execEventually(t, "no process left in "+dir, func() bool { return len(execProcessesIn(dir)) == 0 })
}

// execEventually polls cond until it holds or execWait passes.
func execEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(execWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execFile waits until a file's content satisfies ok and returns it.
func execFile(t testing.TB, path string, ok func(string) bool) string {
	t.Helper()
	var content string
	execEventually(t, path, func() bool {
		b, err := os.ReadFile(path)
		content = string(b)
		return err == nil && ok(content)
	})
	return content
}

// execScheduler is a framework driven by hand over the scheduler API in
// JSON, as the transcripts' curl scripts were.
type execScheduler struct {
	t        *testing.T
	url      string // the master's
	streamID string
	fwID     string
	body     io.Closer
	events   chan scheduler.Event
	done     chan struct{}

	backlog []scheduler.Event
	log     []scheduler.Event // everything but heartbeats, in order
}

func execSubscribe(t *testing.T, c *Cluster, info mesos.FrameworkInfo) *execScheduler {
	t.Helper()
	return execSubscribeTo(t, c.MasterURL(), info)
}

// execSubscribeTo subscribes to the master at url; info.ID set makes it a
// re-subscription of that framework.
func execSubscribeTo(t *testing.T, url string, info mesos.FrameworkInfo) *execScheduler {
	t.Helper()
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	if info.ID != nil {
		id := *info.ID
		call.FrameworkID = &id
	}
	b, err := call.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("SUBSCRIBE: %v", err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("SUBSCRIBE = %d %s", resp.StatusCode, b)
	}
	s := &execScheduler{t: t, url: url, streamID: resp.Header.Get("Mesos-Stream-Id"), body: resp.Body,
		events: make(chan scheduler.Event, 1000), done: make(chan struct{})}
	rr := recordio.NewReader(resp.Body)
	dec := codecs.ByMediaType[codecs.MediaTypeJSON].NewDecoder(func() framing.Reader { return rr })
	go func() {
		defer close(s.done)
		defer close(s.events)
		for {
			var ev scheduler.Event
			if err := dec.Decode(&ev); err != nil {
				return
			}
			s.events <- ev
		}
	}()
	t.Cleanup(s.close)
	sub := s.await("SUBSCRIBED", func(e scheduler.Event) bool { return e.Type == scheduler.Event_SUBSCRIBED })
	s.fwID = sub.Subscribed.FrameworkID.Value
	return s
}

func (s *execScheduler) close() {
	s.body.Close()
	<-s.done
}

// await returns the first event (unconsumed ones first) that match
// accepts; the others stay for later.
func (s *execScheduler) await(what string, match func(scheduler.Event) bool) scheduler.Event {
	s.t.Helper()
	for i, e := range s.backlog {
		if match(e) {
			s.backlog = append(s.backlog[:i:i], s.backlog[i+1:]...)
			return e
		}
	}
	deadline := time.After(execWait)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				s.t.Fatalf("scheduler stream ended while waiting for %s", what)
			}
			if e.Type == scheduler.Event_HEARTBEAT {
				continue
			}
			s.log = append(s.log, e)
			if match(e) {
				return e
			}
			s.backlog = append(s.backlog, e)
		case <-deadline:
			s.t.Fatalf("no %s within %v; unmatched: %s", what, execWait, execDescribe(s.backlog))
		}
	}
}

// quiet checks that no event that bad accepts arrives within d.
func (s *execScheduler) quiet(d time.Duration, what string, bad func(scheduler.Event) bool) {
	s.t.Helper()
	for _, e := range s.backlog {
		if bad(e) {
			s.t.Fatalf("unexpected %s: %s", what, execDescribe([]scheduler.Event{e}))
		}
	}
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				return
			}
			if e.Type == scheduler.Event_HEARTBEAT {
				continue
			}
			s.log = append(s.log, e)
			if bad(e) {
				s.t.Fatalf("unexpected %s: %s", what, execDescribe([]scheduler.Event{e}))
			}
			s.backlog = append(s.backlog, e)
		case <-deadline:
			return
		}
	}
}

// ended waits until the master closes the stream.
func (s *execScheduler) ended() {
	s.t.Helper()
	deadline := time.After(execWait)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				return
			}
			if e.Type != scheduler.Event_HEARTBEAT {
				s.log = append(s.log, e)
				s.backlog = append(s.backlog, e)
			}
		case <-deadline:
			s.t.Fatal("scheduler stream did not end")
		}
	}
}

func execDescribe(evs []scheduler.Event) string {
	var parts []string
	for _, e := range evs {
		switch e.Type {
		case scheduler.Event_UPDATE:
			st := e.Update.Status
			parts = append(parts, fmt.Sprintf("UPDATE(%s %s %s %q)", st.TaskID.Value, st.GetState(), st.GetSource(), st.GetMessage()))
		default:
			parts = append(parts, e.Type.String())
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (s *execScheduler) update(task string, state mesos.TaskState) mesos.TaskStatus {
	s.t.Helper()
	return s.await(fmt.Sprintf("UPDATE %s %s", task, state), func(e scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == task && e.Update.Status.GetState() == state
	}).Update.Status
}

func (s *execScheduler) offer(fits func(mesos.Offer) bool) mesos.Offer {
	s.t.Helper()
	var found mesos.Offer
	s.await("a suitable offer", func(e scheduler.Event) bool {
		if e.Type != scheduler.Event_OFFERS {
			return false
		}
		for _, o := range e.Offers.Offers {
			if fits == nil || fits(o) {
				found = o
				return true
			}
		}
		return false
	})
	return found
}

// offerDeclining is offer for resources that may be split across
// outstanding offers: like the transcripts' scripts, it declines (without
// a filter) every offer that does not fit, so that the allocator can offer
// their resources again together.
func (s *execScheduler) offerDeclining(fits func(mesos.Offer) bool) mesos.Offer {
	s.t.Helper()
	var found *mesos.Offer
	var unfit []mesos.OfferID
	deadline := time.Now().Add(execWait)
	for found == nil {
		s.await("a suitable offer", func(e scheduler.Event) bool {
			if e.Type != scheduler.Event_OFFERS {
				return false
			}
			for i, o := range e.Offers.Offers {
				if found == nil && fits(o) {
					found = &e.Offers.Offers[i]
				} else {
					unfit = append(unfit, o.ID)
				}
			}
			return true
		})
		if len(unfit) > 0 {
			zero := 0.0
			s.mustCall(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{OfferIDs: unfit, Filters: &mesos.Filters{RefuseSeconds: &zero}}})
			unfit = nil
		}
		if found == nil && time.Now().After(deadline) {
			s.t.Fatalf("no suitable offer within %v", execWait)
		}
	}
	return *found
}

// call sends a call and returns the HTTP status and body.
func (s *execScheduler) call(call *scheduler.Call) (int, string) {
	s.t.Helper()
	call.FrameworkID = &mesos.FrameworkID{Value: s.fwID}
	b, err := call.MarshalJSON()
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/scheduler", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mesos-Stream-Id", s.streamID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s: %v", call.Type, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (s *execScheduler) mustCall(call *scheduler.Call) {
	s.t.Helper()
	if code, body := s.call(call); code != http.StatusAccepted {
		s.t.Fatalf("%s = %d %s", call.Type, code, body)
	}
}

// launch accepts an offer with tasks (refuse_seconds 0, as the scripts).
func (s *execScheduler) launch(o mesos.Offer, tasks ...mesos.TaskInfo) {
	s.t.Helper()
	for i := range tasks {
		tasks[i].AgentID = o.AgentID
	}
	zero := 0.0
	s.mustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{
		OfferIDs:   []mesos.OfferID{o.ID},
		Operations: []mesos.Offer_Operation{{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}},
		Filters:    &mesos.Filters{RefuseSeconds: &zero},
	}})
}

func (s *execScheduler) ack(st mesos.TaskStatus) {
	s.t.Helper()
	s.mustCall(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
		AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID,
	}})
}

// updateAck waits for an update and acknowledges it.
func (s *execScheduler) updateAck(task string, state mesos.TaskState) mesos.TaskStatus {
	s.t.Helper()
	st := s.update(task, state)
	if len(st.UUID) == 0 {
		s.t.Fatalf("UPDATE %s %s has no uuid", task, state)
	}
	s.ack(st)
	return st
}

func (s *execScheduler) kill(task string, agentID mesos.AgentID) {
	s.t.Helper()
	s.mustCall(&scheduler.Call{Type: scheduler.Call_KILL, Kill: &scheduler.Call_Kill{TaskID: mesos.TaskID{Value: task}, AgentID: &agentID}})
}

func (s *execScheduler) teardown() {
	s.t.Helper()
	s.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
}

// execFrameworkInfo is the transcripts' curl framework: user root,
// MULTI_ROLE, failover_timeout 60.
func execFrameworkInfo(name string, checkpoint bool, caps ...mesos.FrameworkInfo_Capability_Type) mesos.FrameworkInfo {
	timeout := 60.0
	fi := mesos.FrameworkInfo{User: "root", Name: name, FailoverTimeout: &timeout, Roles: []string{"*"}, Checkpoint: &checkpoint,
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}}}
	for _, c := range caps {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: c})
	}
	return fi
}

func execScalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}}
}

// execTask is a task with the transcripts' resources (cpus 0.1, mem 32).
func execTask(id string, ex *mesos.ExecutorInfo, data string) mesos.TaskInfo {
	t := mesos.TaskInfo{Name: "task " + id, TaskID: mesos.TaskID{Value: id},
		Resources: []mesos.Resource{execScalar("cpus", 0.1), execScalar("mem", 32)}, Executor: ex}
	if data != "" {
		t.Data = []byte(data)
	}
	return t
}

// execExecutorInfo is the transcripts' recexec ExecutorInfo (cpus 0.05,
// mem 32) running command.
func execExecutorInfo(id string, command mesos.CommandInfo) *mesos.ExecutorInfo {
	name := id
	return &mesos.ExecutorInfo{Type: mesos.ExecutorInfo_CUSTOM, ExecutorID: mesos.ExecutorID{Value: id}, Name: &name,
		Command: &command, Resources: []mesos.Resource{execScalar("cpus", 0.05), execScalar("mem", 32)}}
}

// execSandbox is an executor's latest run directory.
func execSandbox(c *Cluster, agent, framework, executorID string) string {
	for i, a := range c.Agents() {
		if a.ID == agent {
			return filepath.Join(c.WorkDir(), "agent-"+strconv.Itoa(i), "slaves", agent, "frameworks", framework, "executors", executorID, "runs", "latest")
		}
	}
	return ""
}

// execRecord is one record of the executor-side recording, in the
// transcripts' terms.
type execRecord struct {
	conn   int
	dir    string // req, resp, frame, end
	typ    string // call or event type
	status int
	// For UPDATE calls and ACKNOWLEDGED events.
	state   string
	hasUUID bool
	// SUBSCRIBE: how many unacknowledged updates it carries.
	replayed int
}

func (r execRecord) String() string {
	switch r.dir {
	case "req":
		s := r.typ
		if r.state != "" {
			s += " " + r.state
		}
		if r.replayed > 0 {
			s += fmt.Sprintf(" (%d unacknowledged)", r.replayed)
		}
		return s
	case "resp":
		return strconv.Itoa(r.status)
	case "frame":
		return r.typ
	}
	return r.dir
}

// execRecorder is a logging reverse proxy for the executor API, as the
// transcripts' mesos-recorder: executors are pointed at it with
// MESOS_AGENT_ENDPOINT and it forwards everything to the agent.
type execRecorder struct {
	t      *testing.T
	target string
	srv    *httptest.Server

	mu      sync.Mutex
	conns   int
	records []execRecord
}

func execNewRecorder(t *testing.T, target string) *execRecorder {
	r := &execRecorder{t: t, target: target}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// endpoint is the value for MESOS_AGENT_ENDPOINT.
func (r *execRecorder) endpoint() string { return r.srv.Listener.Addr().String() }

func (r *execRecorder) add(rec execRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
}

func (r *execRecorder) snapshot() []execRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]execRecord(nil), r.records...)
}

func (r *execRecorder) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.conns++
	conn := r.conns
	r.mu.Unlock()
	body, _ := io.ReadAll(req.Body)
	rec := execRecord{conn: conn, dir: "req"}
	var call executor.Call
	var err error
	if req.Header.Get("Content-Type") == string(codecs.MediaTypeProtobuf) {
		err = call.Unmarshal(body)
	} else {
		err = call.UnmarshalJSON(body)
	}
	if err == nil {
		rec.typ = call.Type.String()
		if call.Update != nil {
			rec.state = call.Update.Status.GetState().String()
			rec.hasUUID = len(call.Update.Status.UUID) > 0
		}
		if call.Subscribe != nil {
			rec.replayed = len(call.Subscribe.UnacknowledgedUpdates)
		}
	}
	r.add(rec)

	up, _ := http.NewRequestWithContext(req.Context(), http.MethodPost, "http://"+r.target+req.URL.Path, bytes.NewReader(body))
	up.Header = req.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(up)
	if err != nil {
		r.add(execRecord{conn: conn, dir: "resp", status: http.StatusBadGateway})
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	r.add(execRecord{conn: conn, dir: "resp", status: resp.StatusCode})
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	if resp.StatusCode != http.StatusOK || call.Type != executor.Call_SUBSCRIBE {
		_, _ = io.Copy(w, resp.Body)
		return
	}
	media := resp.Header.Get("Content-Type")
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			break
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			break
		}
		var ev executor.Event
		if media == string(codecs.MediaTypeProtobuf) {
			err = ev.Unmarshal(frame)
		} else {
			err = ev.UnmarshalJSON(frame)
		}
		fr := execRecord{conn: conn, dir: "frame", typ: ev.Type.String()}
		if err == nil && ev.Acknowledged != nil {
			fr.hasUUID = len(ev.Acknowledged.UUID) > 0
		}
		r.add(fr)
		if _, err := w.Write([]byte(line)); err != nil {
			break
		}
		if _, err := w.Write(frame); err != nil {
			break
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	r.add(execRecord{conn: conn, dir: "end"})
}
