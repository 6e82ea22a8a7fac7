package localmesos

// End-to-end tests of the executor side: real clusters, the testexec
// executor as a real process, a scheduler driven over HTTP as in the
// reference transcripts, and a recorder between executor and agent. Each
// scenario replays one transcript's script and compares what the executor
// and the scheduler saw with what a real Mesos showed them.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"

	"github.com/mesos-stateful/stateful/localmesos/internal/agent"
)

// TestExecutors runs the scenarios as subtests sharing one testexec build.
func TestExecutors(t *testing.T) {
	bin := execBuildTestexec(t, t.TempDir())
	t.Run("happy-path", func(t *testing.T) { execHappyPath(t, bin) })
	t.Run("message-kill", func(t *testing.T) { execMessageKill(t, bin) })
	t.Run("teardown", func(t *testing.T) { execTeardown(t, bin) })
	t.Run("agent-restart-recovery", func(t *testing.T) { execRestartRecovery(t, bin) })
	t.Run("executor-death", func(t *testing.T) { execDeath(t, bin) })
	t.Run("environment", func(t *testing.T) { execEnvironment(t, bin) })
}

// execRecexec is the transcripts' ExecutorInfo, running testexec (as
// recexec) behind the recorder.
func execRecexec(bin string, rec *execRecorder, args ...string) *mesos.ExecutorInfo {
	shell := false
	cmd := mesos.CommandInfo{Value: &bin, Shell: &shell, Arguments: append([]string{"recexec"}, args...)}
	if rec != nil {
		endpoint := rec.endpoint()
		cmd.Environment = &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "MESOS_AGENT_ENDPOINT", Value: &endpoint}}}
	}
	return execExecutorInfo("recexec", cmd)
}

func execEventsLog(c *Cluster, agentID, fwID string) string {
	return filepath.Join(execSandbox(c, agentID, fwID, "recexec"), "events.log")
}

// execHappyPath is executor-happy-path.jsonl: an executor fetched from a
// URI (mesos-go's example-executor there, testexec -example here) gets two
// tasks one after the other, answers RUNNING and FINISHED, and gets
// SHUTDOWN when its framework is torn down.
func execHappyPath(t *testing.T, bin string) {
	c := startCluster(t, execConfig(t))
	ag := c.Agents()[0]
	rec := execNewRecorder(t, ag.Address)
	s := execSubscribe(t, c, execFrameworkInfo("example", true))

	yes := true
	value := "./testexec -example"
	endpoint := rec.endpoint()
	ex := execExecutorInfo("default", mesos.CommandInfo{
		URIs:        []mesos.CommandInfo_URI{{Value: "file://" + bin, Executable: &yes}},
		Value:       &value,
		Environment: &mesos.Environment{Variables: []mesos.Environment_Variable{{Name: "MESOS_AGENT_ENDPOINT", Value: &endpoint}}},
	})
	s.launch(s.offer(nil), execTask("1", ex, ""))
	s.updateAck("1", mesos.TASK_RUNNING)
	s.updateAck("1", mesos.TASK_FINISHED)
	o := s.offer(func(o mesos.Offer) bool { return len(o.ExecutorIDs) == 1 && o.ExecutorIDs[0].Value == "default" })
	s.launch(o, execTask("2", ex, ""))
	s.updateAck("2", mesos.TASK_RUNNING)
	s.updateAck("2", mesos.TASK_FINISHED)
	s.teardown()
	s.ended()
	execNoProcessesLeft(t, c.WorkDir())
	execCompareExecutorSide(t, rec, loadTranscript(t, "executor-happy-path"), "executor-happy-path")
}

// execMessageKill is custom-executor-message-kill.jsonl.
func execMessageKill(t *testing.T, bin string) {
	c := startCluster(t, execConfig(t))
	ag := c.Agents()[0]
	agentID := mesos.AgentID{Value: ag.ID}
	rec := execNewRecorder(t, ag.Address)
	s := execSubscribe(t, c, execFrameworkInfo("custom-exec", false))
	ex := execRecexec(bin, rec)
	events := execEventsLog(c, ag.ID, s.fwID)

	s.launch(s.offer(nil), execTask("task-1", ex, ""))
	starting := s.update("task-1", mesos.TASK_STARTING)
	// The agent acknowledged both updates to the executor before the
	// scheduler acknowledged anything, and holds RUNNING back until then.
	execFile(t, events, func(l string) bool { return strings.Count(l, "ACKNOWLEDGED") == 2 })
	s.quiet(300*time.Millisecond, "RUNNING before the ACK of STARTING", func(e scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.GetState() == mesos.TASK_RUNNING
	})
	s.ack(starting)
	s.updateAck("task-1", mesos.TASK_RUNNING)
	if starting.GetSource() != mesos.SOURCE_EXECUTOR || starting.ContainerStatus == nil || starting.ContainerStatus.GetExecutorPID() == 0 ||
		starting.ExecutorID.GetValue() != "recexec" || starting.Timestamp == nil {
		t.Errorf("STARTING as the scheduler sees it = %+v", starting)
	}

	// The next offer lists the executor; a second task goes to it.
	o := s.offer(func(o mesos.Offer) bool { return len(o.ExecutorIDs) == 1 && o.ExecutorIDs[0].Value == "recexec" })
	s.launch(o, execTask("task-2", ex, ""))
	s.updateAck("task-2", mesos.TASK_STARTING)
	s.updateAck("task-2", mesos.TASK_RUNNING)

	// MESSAGE round trip.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_MESSAGE, Message: &scheduler.Call_Message{
		AgentID: agentID, ExecutorID: mesos.ExecutorID{Value: "recexec"}, Data: []byte("hello executor")}})
	msg := s.await("MESSAGE", func(e scheduler.Event) bool { return e.Type == scheduler.Event_MESSAGE })
	if string(msg.Message.Data) != "echo:hello executor" || msg.Message.ExecutorID.Value != "recexec" || msg.Message.AgentID.Value != ag.ID {
		t.Errorf("MESSAGE = %+v", msg.Message)
	}

	s.kill("task-1", agentID)
	killed := s.updateAck("task-1", mesos.TASK_KILLED)
	if killed.GetMessage() != "killed on KILL event" || killed.Reason != nil || killed.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Errorf("TASK_KILLED = %+v", killed)
	}
	// The last task: the executor exits 0, and FAILURE comes before the
	// scheduler acknowledges the terminal update.
	s.kill("task-2", agentID)
	last := s.update("task-2", mesos.TASK_KILLED)
	failure := s.await("FAILURE", func(e scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE })
	if failure.Failure.ExecutorID.GetValue() != "recexec" || failure.Failure.GetStatus() != 0 || failure.Failure.AgentID.GetValue() != ag.ID {
		t.Errorf("FAILURE = %+v", failure.Failure)
	}
	s.ack(last)
	// The task's and the executor's resources come back together. The
	// launch's leftovers and task-1's resources were offered while the
	// executor ran; as in the transcript's script, those offers are
	// declined, and the next offer holds the whole agent.
	s.offerDeclining(func(o mesos.Offer) bool { return len(o.ExecutorIDs) == 0 && execCPUs(o) >= 2 })
	s.teardown()
	execNoProcessesLeft(t, c.WorkDir())
	tr := loadTranscript(t, "custom-executor-message-kill")
	execCompareExecutorSide(t, rec, tr, "custom-executor-message-kill/executor")
	execCompareSchedulerSide(t, s.log, tr, "custom-executor-message-kill/scheduler", false)
}

func execCPUs(o mesos.Offer) float64 {
	var n float64
	for _, r := range o.Resources {
		if r.Name == "cpus" {
			n += r.GetScalar().GetValue()
		}
	}
	return n
}

// execTeardown is custom-executor-teardown.jsonl.
func execTeardown(t *testing.T, bin string) {
	c := startCluster(t, execConfig(t))
	ag := c.Agents()[0]
	rec := execNewRecorder(t, ag.Address)
	s := execSubscribe(t, c, execFrameworkInfo("custom-exec-teardown", false))
	ex := execRecexec(bin, rec)
	s.launch(s.offer(nil), execTask("task-1", ex, ""))
	s.updateAck("task-1", mesos.TASK_STARTING)
	s.updateAck("task-1", mesos.TASK_RUNNING)
	events := execEventsLog(c, ag.ID, s.fwID)
	s.teardown()
	s.ended()
	// SHUTDOWN reaches the executor; its TASK_KILLED is dropped (no
	// ACKNOWLEDGED), and it exits after its own 2 s wait.
	execFile(t, events, func(l string) bool { return strings.Contains(l, "SHUTDOWN") })
	execNoProcessesLeft(t, c.WorkDir())
	if l := execFile(t, events, func(string) bool { return true }); strings.Count(l, "ACKNOWLEDGED") != 2 {
		t.Errorf("executor events = %q", l)
	}
	// The next framework is offered the whole agent.
	s2 := execSubscribe(t, c, execFrameworkInfo("after-teardown", false))
	o := s2.offer(func(o mesos.Offer) bool { return execCPUs(o) >= 2 })
	if len(o.ExecutorIDs) != 0 {
		t.Errorf("offer after teardown lists executors %v", o.ExecutorIDs)
	}
	s2.teardown()
	tr := loadTranscript(t, "custom-executor-teardown")
	execCompareExecutorSide(t, rec, tr, "custom-executor-teardown/executor")
	execCompareSchedulerSide(t, s.log, tr, "custom-executor-teardown/scheduler", false)
}

// execRestartRecovery is agent-restart-recovery.jsonl: the agent restarts
// while a checkpointing framework's executor runs; the executor makes an
// update while the agent is down and hands it over when it re-subscribes;
// the scheduler gets it twice; nothing is lost.
func execRestartRecovery(t *testing.T, bin string) {
	cfg := execConfig(t)
	cfg.ExecutorReregistrationTimeout = 2 * time.Second
	c := startCluster(t, cfg)
	ag := c.Agents()[0]
	agentID := mesos.AgentID{Value: ag.ID}
	rec := execNewRecorder(t, ag.Address)
	s := execSubscribe(t, c, execFrameworkInfo("restart-recovery", true))
	ex := execRecexec(bin, rec)
	s.launch(s.offer(nil), execTask("task-1", ex, ""))
	pid := int(s.updateAck("task-1", mesos.TASK_STARTING).ContainerStatus.GetExecutorPID())
	s.updateAck("task-1", mesos.TASK_RUNNING)

	a, err := c.agent(ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	// RestartAgent, with an update made while the agent is down.
	a.Stop(agent.Restart)
	c.master.AgentDisconnected(a.ID())
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	execEventually(t, "the executor's update to fail", func() bool {
		for _, r := range rec.snapshot() {
			if r.dir == "resp" && r.status == 502 {
				for _, q := range rec.snapshot() {
					if q.conn == r.conn && q.dir == "req" && q.typ == "UPDATE" {
						return true
					}
				}
			}
		}
		return false
	})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	first := s.update("task-1", mesos.TASK_RUNNING)
	second := s.update("task-1", mesos.TASK_RUNNING)
	if first.GetMessage() != "sent on SIGUSR1" || string(first.UUID) != string(second.UUID) || *first.Timestamp != *second.Timestamp ||
		first.ContainerStatus.GetExecutorPID() != uint32(pid) {
		t.Errorf("replayed update = %+v and %+v", first, second)
	}
	s.ack(first)
	s.quiet(500*time.Millisecond, "a third copy or a lost task", func(e scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && (e.Update.Status.GetState() == mesos.TASK_RUNNING || e.Update.Status.GetState() == mesos.TASK_LOST)
	})
	o := s.offer(func(o mesos.Offer) bool { return len(o.ExecutorIDs) == 1 })
	if o.AgentID.Value != ag.ID {
		t.Errorf("offer from agent %s", o.AgentID.Value)
	}
	s.kill("task-1", agentID)
	s.updateAck("task-1", mesos.TASK_KILLED)
	if f := s.await("FAILURE", func(e scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE }); f.Failure.GetStatus() != 0 {
		t.Errorf("FAILURE = %+v", f.Failure)
	}
	s.teardown()
	execNoProcessesLeft(t, c.WorkDir())
	tr := loadTranscript(t, "agent-restart-recovery")
	execCompareExecutorSide(t, rec, tr, "agent-restart-recovery/executor")
	execCompareSchedulerSide(t, s.log, tr, "agent-restart-recovery/scheduler", false)
}

// execDeath is executor-death.jsonl: the command executor is killed; its
// task fails (from the agent, with a uuid), with no FAILURE; and unlike a
// real agent, localmesos leaves none of the task's processes behind. A
// custom executor's death gives FAILURE as well.
func execDeath(t *testing.T, bin string) {
	c := startCluster(t, execConfig(t))
	ag := c.Agents()[0]
	s := execSubscribe(t, c, execFrameworkInfo("exec-death", true, mesos.FrameworkInfo_Capability_PARTITION_AWARE))
	o := s.offer(nil)
	shell := true
	cmd := "sleep 600"
	s.launch(o, mesos.TaskInfo{Name: "sleeper", TaskID: mesos.TaskID{Value: "sleeper-1"},
		Resources: []mesos.Resource{execScalar("cpus", 0.1), execScalar("mem", 32)}, Command: &mesos.CommandInfo{Value: &cmd, Shell: &shell}})
	s.updateAck("sleeper-1", mesos.TASK_STARTING)
	running := s.updateAck("sleeper-1", mesos.TASK_RUNNING)
	sandbox, err := filepath.EvalSymlinks(execSandbox(c, ag.ID, s.fwID, "sleeper-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(execProcessesIn(sandbox)) == 0 {
		t.Fatalf("no process runs in %s", sandbox)
	}
	if err := c.KillExecutor(ag.ID, s.fwID, "sleeper-1"); err != nil {
		t.Fatal(err)
	}
	failed := s.updateAck("sleeper-1", mesos.TASK_FAILED)
	if failed.GetSource() != mesos.SOURCE_AGENT || failed.GetReason() != mesos.REASON_EXECUTOR_TERMINATED ||
		failed.GetMessage() != "Executor terminated" || failed.ExecutorID.GetValue() != "sleeper-1" {
		t.Errorf("TASK_FAILED = %+v", failed)
	}
	execNoProcessesLeft(t, sandbox)
	if running.ContainerStatus.GetExecutorPID() == 0 {
		t.Errorf("RUNNING has no executor pid")
	}
	s.quiet(300*time.Millisecond, "FAILURE for a command executor", func(e scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE })
	execCompareSchedulerSide(t, s.log, loadTranscript(t, "executor-death"), "executor-death", true)

	// A custom executor's death: TASK_FAILED and FAILURE with the raw wait
	// status of a SIGKILL.
	ex := execRecexec(bin, nil)
	s.launch(s.offer(func(o mesos.Offer) bool { return execCPUs(o) >= 0.15 }), execTask("task-1", ex, ""))
	s.updateAck("task-1", mesos.TASK_STARTING)
	s.updateAck("task-1", mesos.TASK_RUNNING)
	if err := c.KillExecutor(ag.ID, s.fwID, "recexec"); err != nil {
		t.Fatal(err)
	}
	failed = s.updateAck("task-1", mesos.TASK_FAILED)
	if failed.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || failed.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("TASK_FAILED = %+v", failed)
	}
	if f := s.await("FAILURE", func(e scheduler.Event) bool { return e.Type == scheduler.Event_FAILURE }); f.Failure.GetStatus() != int32(syscall.SIGKILL) {
		t.Errorf("FAILURE = %+v", f.Failure)
	}
	s.teardown()
	execNoProcessesLeft(t, c.WorkDir())
}

// execEnvironment is executor-environment.txt: the variables an executor
// gets.
func execEnvironment(t *testing.T, bin string) {
	c := startCluster(t, execConfig(t))
	ag := c.Agents()[0]
	s := execSubscribe(t, c, execFrameworkInfo("env", true))
	s.launch(s.offer(nil), execTask("task-1", execRecexec(bin, nil), "finish"))
	sandbox := execSandbox(c, ag.ID, s.fwID, "recexec")
	content := execFile(t, filepath.Join(sandbox, "executor.env"), func(s string) bool { return strings.Contains(s, "MESOS_") })
	env := map[string]string{}
	for _, line := range strings.Split(content, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	real, err := filepath.EvalSymlinks(sandbox)
	if err != nil {
		t.Fatal(err)
	}
	ref := execReferenceEnv(t)
	var names, refNames []string
	for k := range env {
		if strings.HasPrefix(k, "MESOS_") {
			names = append(names, k)
		}
	}
	for k := range ref {
		refNames = append(refNames, k)
	}
	sort.Strings(names)
	sort.Strings(refNames)
	if strings.Join(names, " ") != strings.Join(refNames, " ") {
		t.Errorf("MESOS_* = %v, a real agent gives %v", names, refNames)
	}
	for k, want := range map[string]string{
		"MESOS_AGENT_ENDPOINT":                 ag.Address,
		"MESOS_CHECKPOINT":                     "1",
		"MESOS_DIRECTORY":                      real,
		"MESOS_SANDBOX":                        real,
		"MESOS_EXECUTOR_ID":                    "recexec",
		"MESOS_FRAMEWORK_ID":                   s.fwID,
		"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs",
		"MESOS_HTTP_COMMAND_EXECUTOR":          ref["MESOS_HTTP_COMMAND_EXECUTOR"],
		"MESOS_RECOVERY_TIMEOUT":               ref["MESOS_RECOVERY_TIMEOUT"],
		"MESOS_SUBSCRIPTION_BACKOFF_MAX":       ref["MESOS_SUBSCRIPTION_BACKOFF_MAX"],
		"MESOS_SLAVE_ID":                       ag.ID,
		"MESOS_SLAVE_PID":                      "slave(1)@" + ag.Address,
		"LIBPROCESS_IP":                        ag.Hostname,
		"LIBPROCESS_PORT":                      "0",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if want := fmt.Sprintf("slaves/%s/frameworks/%s/executors/recexec/runs/", ag.ID, s.fwID); !strings.Contains(env["MESOS_SANDBOX"], want) {
		t.Errorf("sandbox %s is not under %s", env["MESOS_SANDBOX"], want)
	}
	s.updateAck("task-1", mesos.TASK_STARTING)
	s.updateAck("task-1", mesos.TASK_RUNNING)
	s.updateAck("task-1", mesos.TASK_FINISHED)
	s.teardown()
}

func execReferenceEnv(t *testing.T) map[string]string {
	f, err := os.Open(filepath.Join("testdata", "transcripts", "executor-environment.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

// execEnded: every executor stream the recorder saw has ended.
func execEnded(recs []execRecord) bool {
	open := map[int]bool{}
	for _, r := range recs {
		if r.dir == "frame" {
			open[r.conn] = true
		}
		if r.dir == "end" {
			delete(open, r.conn)
		}
	}
	return len(open) == 0
}

// execShape is what the comparison looks at on the executor side: the
// calls that reached the agent with its answers, and each stream's events.
type execShape struct {
	calls   []string
	streams [][]string
}

func execShapeOf(recs []execRecord) execShape {
	var sh execShape
	reqs := map[int]execRecord{}
	stream := map[int]int{}
	for _, r := range recs {
		switch r.dir {
		case "req":
			reqs[r.conn] = r
		case "resp":
			if r.status == 502 {
				continue // the agent was down: the recorder answered
			}
			sh.calls = append(sh.calls, reqs[r.conn].String()+" -> "+fmt.Sprint(r.status))
			if reqs[r.conn].typ == "SUBSCRIBE" && r.status == 200 {
				stream[r.conn] = len(sh.streams)
				sh.streams = append(sh.streams, nil)
			}
		case "frame":
			if i, ok := stream[r.conn]; ok {
				sh.streams[i] = append(sh.streams[i], r.typ)
			}
		case "end":
			if i, ok := stream[r.conn]; ok {
				sh.streams[i] = append(sh.streams[i], "end")
			}
		}
	}
	return sh
}

// execTranscriptShape reads the same from a transcript.
func execTranscriptShape(t *testing.T, tr transcript) execShape {
	var recs []execRecord
	for _, r := range tr {
		er := execRecord{conn: r.Conn, dir: r.Dir, status: r.Status}
		if r.Dir == "req" || r.Dir == "frame" {
			var v struct {
				Subscribe struct {
					Updates []any `json:"unacknowledged_updates"`
				} `json:"subscribe"`
			}
			body := r.Decoded
			if len(body) == 0 {
				body = r.Body
			}
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatalf("transcript record %+v: %v", r, err)
			}
			er.typ, er.replayed = r.eventType(), len(v.Subscribe.Updates)
			er.state, _, _, _, _ = r.updateStatus()
		}
		if r.Dir == "note" {
			continue
		}
		recs = append(recs, er)
	}
	return execShapeOf(recs)
}

// execCompareExecutorSide compares, once every executor stream has ended,
// what the recorder saw with the transcript.
func execCompareExecutorSide(t *testing.T, rec *execRecorder, tr transcript, scenario string) {
	t.Helper()
	execEventually(t, "the executor's streams to end", func() bool { return execEnded(rec.snapshot()) })
	got := rec.snapshot()
	want := execTranscriptShape(t, tr.scenario(scenario))
	if len(want.calls) == 0 || len(want.streams) == 0 {
		t.Fatalf("transcript %s has no executor calls or streams", scenario)
	}
	have := execShapeOf(got)
	if strings.Join(have.calls, "\n") != strings.Join(want.calls, "\n") {
		t.Errorf("executor calls differ from %s:\n got: %s\nwant: %s", scenario, strings.Join(have.calls, "; "), strings.Join(want.calls, "; "))
	}
	if fmt.Sprint(have.streams) != fmt.Sprint(want.streams) {
		t.Errorf("executor streams differ from %s:\n got: %v\nwant: %v", scenario, have.streams, want.streams)
	}
}

// execSchedulerSummary lists a scheduler's UPDATEs with a uuid (those the
// agent sends; master-made ones are the master's business), FAILUREs of
// executors and MESSAGEs, in order.
func execSchedulerSummary(evs []scheduler.Event, dedupe bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range evs {
		switch e.Type {
		case scheduler.Event_UPDATE:
			st := e.Update.Status
			if len(st.UUID) == 0 {
				continue
			}
			if dedupe && seen[string(st.UUID)] {
				continue
			}
			seen[string(st.UUID)] = true
			reason := ""
			if st.Reason != nil {
				reason = " " + st.Reason.String()
			}
			out = append(out, fmt.Sprintf("UPDATE %s %s %s%s %q", st.TaskID.Value, st.GetState(), st.GetSource(), reason, st.GetMessage()))
		case scheduler.Event_FAILURE:
			if e.Failure.ExecutorID != nil {
				out = append(out, fmt.Sprintf("FAILURE %s %d", e.Failure.ExecutorID.Value, e.Failure.GetStatus()))
			}
		case scheduler.Event_MESSAGE:
			out = append(out, "MESSAGE "+string(e.Message.Data))
		}
	}
	return out
}

func execCompareSchedulerSide(t *testing.T, got []scheduler.Event, tr transcript, scenario string, dedupe bool) {
	t.Helper()
	// The first framework's stream: the first SUBSCRIBE's.
	side := tr.scenario(scenario)
	stream := 0
	for _, r := range side.dir("req") {
		if r.eventType() == "SUBSCRIBE" {
			stream = r.Conn
			break
		}
	}
	var want []scheduler.Event
	for _, r := range side.conn(stream).dir("frame") {
		var ev scheduler.Event
		if err := ev.UnmarshalJSON(execStripUnknownEnums(r.Body)); err != nil {
			t.Fatalf("transcript frame %s: %v", r.Body, err)
		}
		want = append(want, ev)
	}
	g, w := execSchedulerSummary(got, dedupe), execSchedulerSummary(want, dedupe)
	if len(w) == 0 {
		t.Fatalf("transcript %s has no updates", scenario)
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("scheduler saw differently from %s:\n got: %s\nwant: %s", scenario, strings.Join(g, "; "), strings.Join(w, "; "))
	}
}

// execStripUnknownEnums drops Mesos 1.12's QUOTA_V2 capability, which
// mesos-go v0.0.11 cannot decode.
func execStripUnknownEnums(b []byte) []byte {
	return []byte(strings.ReplaceAll(string(b), `,{"type":"QUOTA_V2"}`, ""))
}
