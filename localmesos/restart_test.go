package localmesos

// The restart of the process that runs localmesos, on the same work dir:
// the test runs the cluster in a child process (this test binary, started
// again as restartChild), kills it with SIGKILL (or stops it with
// KeepTasksOnClose), and starts it again, while a scheduler speaks to it
// over HTTP as the transcripts' curl scripts do.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// restartChildEnv makes this test binary run a cluster (its Config in
// JSON) until SIGTERM, printing "master <url>" once it serves.
const restartChildEnv = "LOCALMESOS_RESTART_TEST_CLUSTER"

func init() {
	if js := os.Getenv(restartChildEnv); js != "" {
		os.Exit(restartChild(js))
	}
}

func restartChild(js string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		return 2
	}
	_ = flag.Set("logtostderr", "true")
	_ = flag.Set("v", "1")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	c, err := Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	fmt.Printf("master %s\n", c.MasterURL())
	<-c.Done()
	return 0
}

// restartProc is one run of the cluster process.
type restartProc struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

// restartStart runs the cluster process; its log goes to dir/cluster.log.
// The test's cleanup kills it and whatever it left in the work dir.
func restartStart(t *testing.T, cfg Config, dir string) *restartProc {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "cluster.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), restartChildEnv+"="+string(js))
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &restartProc{cmd: cmd, exited: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "master "); ok {
				urls <- u
			}
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		for _, pid := range execProcessesIn(cfg.WorkDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "cluster.log"))
		if strings.Contains(string(b), "WARNING: DATA RACE") {
			t.Error("the race detector reported a race in the cluster process")
		}
		if t.Failed() {
			t.Logf("cluster log:\n%s", b)
		}
	})
	select {
	case p.url = <-urls:
	case <-p.exited:
		b, _ := os.ReadFile(filepath.Join(dir, "cluster.log"))
		t.Fatalf("the cluster process exited before serving:\n%s", b)
	case <-time.After(execWait):
		t.Fatal("the cluster process never printed the master's address")
	}
	return p
}

// stop ends the process with sig and waits for it.
func (p *restartProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(execWait):
		t.Fatalf("the cluster process still runs %v after %v", execWait, sig)
	}
}

func restartAgentIDs(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Slaves []struct {
			ID string `json:"id"`
		} `json:"slaves"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range st.Slaves {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	return ids
}

func restartConfig(dir string, keep bool) Config {
	cfg := NewConfig()
	cfg.Port = 0
	cfg.Agents = 2
	cfg.Resources = "cpus:2;mem:2048;disk:4096;ports:[41000-41099]"
	cfg.WorkDir = filepath.Join(dir, "work")
	cfg.AllocationInterval = 100 * time.Millisecond
	cfg.ExecutorShutdownGracePeriod = 3 * time.Second
	// Long enough for the test to reconcile before the agents are back.
	cfg.ExecutorReregistrationTimeout = 3 * time.Second
	cfg.KeepTasksOnClose = keep
	return cfg
}

func restartPort(t *testing.T, url string) int {
	t.Helper()
	var port int
	if _, err := fmt.Sscanf(url[strings.LastIndexByte(url, ':')+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	return port
}

// restartRuns counts an executor's runs (containers) on every agent.
func restartRuns(t *testing.T, workDir, fwID, executorID string) int {
	t.Helper()
	runs, _ := filepath.Glob(filepath.Join(workDir, "agent-*", "slaves", "*", "frameworks", fwID, "executors", executorID, "runs", "*"))
	n := 0
	for _, r := range runs {
		if filepath.Base(r) != "latest" {
			n++
		}
	}
	return n
}

func restartSandbox(t *testing.T, workDir, fwID, executorID string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(workDir, "agent-*", "slaves", "*", "frameworks", fwID, "executors", executorID, "runs", "latest"))
	if len(m) != 1 {
		t.Fatalf("%d sandboxes of executor %s", len(m), executorID)
	}
	return m[0]
}

func restartAlive(t *testing.T, what string, pid uint32) {
	t.Helper()
	if pid == 0 {
		t.Fatalf("%s: no pid", what)
	}
	if err := syscall.Kill(int(pid), 0); err != nil {
		t.Fatalf("%s (pid %d) did not survive: %v", what, pid, err)
	}
}

// restartLaunch launches a command task on the first agent and a testexec
// task on the second, acknowledges their updates, and returns their
// process IDs as the updates give them.
func restartLaunch(t *testing.T, s *execScheduler, agents []string, bin string) (cmdPID, exPID uint32) {
	t.Helper()
	offers := map[string]mesos.Offer{}
	for len(offers) < 2 {
		e := s.await("offers", func(e scheduler.Event) bool { return e.Type == scheduler.Event_OFFERS })
		for _, o := range e.Offers.Offers {
			offers[o.AgentID.Value] = o
		}
	}
	cmd := "sleep 600"
	s.launch(offers[agents[0]], mesos.TaskInfo{Name: "cmd-1", TaskID: mesos.TaskID{Value: "cmd-1"},
		Resources: []mesos.Resource{execScalar("cpus", 0.1), execScalar("mem", 32)},
		Command:   &mesos.CommandInfo{Value: &cmd}})
	shell := false
	ex := execExecutorInfo("exec-1", mesos.CommandInfo{Value: &bin, Shell: &shell, Arguments: []string{"testexec"}})
	s.launch(offers[agents[1]], execTask("task-1", ex, ""))
	cmdPID = s.updateAck("cmd-1", mesos.TASK_STARTING).ContainerStatus.GetExecutorPID()
	s.updateAck("cmd-1", mesos.TASK_RUNNING)
	exPID = s.updateAck("task-1", mesos.TASK_STARTING).ContainerStatus.GetExecutorPID()
	s.updateAck("task-1", mesos.TASK_RUNNING)
	return cmdPID, exPID
}

// TestRestartKeepsTasks: a command task and a custom executor's task run;
// the process running localmesos dies (SIGKILL), or stops with
// KeepTasksOnClose; started again on the same work dir, the agents have
// their IDs, the tasks run on in the same processes, nothing is launched
// again, and the scheduler sees what it would with a Mesos master
// (in-memory registry) and agents restarted: reconciliation answers
// "unknown" until the agents are back, the update it had not acknowledged
// is sent again, the update the executor made meanwhile arrives, and then
// reconciliation says RUNNING.
func TestRestartKeepsTasks(t *testing.T) {
	bin := execBuildTestexec(t, t.TempDir())
	t.Run("kill-9", func(t *testing.T) { restartKeepsTasks(t, bin, false) })
	t.Run("close-keeping-tasks", func(t *testing.T) { restartKeepsTasks(t, bin, true) })
	t.Run("executors-gone", func(t *testing.T) { restartExecutorsGone(t, bin) })
}

func restartKeepsTasks(t *testing.T, bin string, keep bool) {
	dir := t.TempDir()
	cfg := restartConfig(dir, keep)
	p1 := restartStart(t, cfg, dir)
	agents := restartAgentIDs(t, p1.url)
	if len(agents) != 2 {
		t.Fatalf("agents %v", agents)
	}
	info := execFrameworkInfo("restart", true)
	s := execSubscribeTo(t, p1.url, info)
	cmdPID, exPID := restartLaunch(t, s, agents, bin)

	// An update the scheduler has not acknowledged when the process dies.
	if err := syscall.Kill(int(exPID), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	unacked := s.update("task-1", mesos.TASK_RUNNING)
	if unacked.GetMessage() != "sent on SIGUSR1" {
		t.Fatalf("update = %+v", unacked)
	}
	if keep {
		p1.stop(t, syscall.SIGTERM)
	} else {
		p1.stop(t, syscall.SIGKILL)
	}
	s.ended()
	restartAlive(t, "command task", cmdPID)
	restartAlive(t, "executor", exPID)

	// An update the executor makes while no agent is there: it keeps it
	// until it has re-subscribed.
	stderr := filepath.Join(restartSandbox(t, cfg.WorkDir, s.fwID, "exec-1"), "stderr")
	if err := syscall.Kill(int(exPID), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	execFile(t, stderr, func(s string) bool { return strings.Contains(s, "UPDATE call failed") })

	cfg.Port = restartPort(t, p1.url)
	p2 := restartStart(t, cfg, dir)
	restartUpdateDuringRecovery(t, p2.url, agents[1], s.fwID)
	id := mesos.FrameworkID{Value: s.fwID}
	info.ID = &id
	s2 := execSubscribeTo(t, p2.url, info)
	if s2.fwID != s.fwID {
		t.Fatalf("re-subscribed as %s, want %s", s2.fwID, s.fwID)
	}
	// The agents are not back yet: the new master knows nothing of the task.
	s2.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{
		Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: "cmd-1"}}}}})
	lost := s2.update("cmd-1", mesos.TASK_LOST)
	if lost.GetMessage() != "Reconciliation: Task is unknown" || lost.GetReason() != mesos.REASON_RECONCILIATION || len(lost.UUID) != 0 {
		t.Errorf("reconciliation before the agents are back = %+v", lost)
	}

	// The pending update again: same uuid, timestamp and executor pid.
	again := s2.await("the unacknowledged update again", func(e scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && string(e.Update.Status.UUID) == string(unacked.UUID)
	}).Update.Status
	if again.GetTimestamp() != unacked.GetTimestamp() || again.ContainerStatus.GetExecutorPID() != exPID || again.AgentID.Value != unacked.AgentID.Value {
		t.Errorf("re-sent update = %+v, want %+v", again, unacked)
	}
	s2.ack(again)
	meanwhile := s2.await("the update made while localmesos was down", func(e scheduler.Event) bool {
		st := e.Update.GetStatus()
		return e.Type == scheduler.Event_UPDATE && st.TaskID.Value == "task-1" && len(st.UUID) > 0 && string(st.UUID) != string(unacked.UUID)
	}).Update.Status
	if meanwhile.GetState() != mesos.TASK_RUNNING || meanwhile.GetMessage() != "sent on SIGUSR1" {
		t.Errorf("update made while down = %+v", meanwhile)
	}
	s2.ack(meanwhile)

	if got := restartAgentIDs(t, p2.url); strings.Join(got, ",") != strings.Join(agents, ",") {
		t.Errorf("agents after the restart %v, want %v", got, agents)
	}
	s2.mustCall(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{
		Tasks: []scheduler.Call_Reconcile_Task{{TaskID: mesos.TaskID{Value: "cmd-1"}}, {TaskID: mesos.TaskID{Value: "task-1"}}}}})
	for _, task := range []string{"cmd-1", "task-1"} {
		st := s2.await("reconciliation of "+task, func(e scheduler.Event) bool {
			st := e.Update.GetStatus()
			return e.Type == scheduler.Event_UPDATE && st.TaskID.Value == task && st.GetReason() == mesos.REASON_RECONCILIATION
		}).Update.Status
		if st.GetState() != mesos.TASK_RUNNING || st.GetMessage() != "Reconciliation: Latest task state" {
			t.Errorf("reconciliation of %s = %+v", task, st)
		}
	}
	restartAlive(t, "command task", cmdPID)
	restartAlive(t, "executor", exPID)
	for _, ex := range []string{"cmd-1", "exec-1"} {
		if n := restartRuns(t, cfg.WorkDir, s.fwID, ex); n != 1 {
			t.Errorf("executor %s ran %d times", ex, n)
		}
	}
	events, _ := os.ReadFile(filepath.Join(restartSandbox(t, cfg.WorkDir, s.fwID, "exec-1"), "events.log"))
	if n := strings.Count(string(events), "LAUNCH"); n != 1 {
		t.Errorf("the executor got %d LAUNCHes:\n%s", n, events)
	}
	if n := strings.Count(string(events), "SUBSCRIBED"); n != 2 {
		t.Errorf("the executor subscribed %d times, want 2:\n%s", n, events)
	}

	// The recovered tasks are the scheduler's as before.
	s2.kill("cmd-1", mesos.AgentID{Value: agents[0]})
	s2.updateAck("cmd-1", mesos.TASK_KILLED)
	s2.kill("task-1", mesos.AgentID{Value: agents[1]})
	s2.updateAck("task-1", mesos.TASK_KILLED)
	s2.teardown()
	p2.stop(t, syscall.SIGTERM)
	execNoProcessesLeft(t, cfg.WorkDir)
}

// restartUpdateDuringRecovery: while the agent waits for its executors,
// an UPDATE call gets 503 (Http::executor).
func restartUpdateDuringRecovery(t *testing.T, url, agentID, fwID string) {
	t.Helper()
	resp, err := http.Get(url + "/admin/agents")
	if err != nil {
		t.Fatal(err)
	}
	var agents []AgentInfo
	err = json.NewDecoder(resp.Body).Decode(&agents)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	addr := ""
	for _, a := range agents {
		if a.ID == agentID {
			addr = a.Address
		}
	}
	body := fmt.Sprintf(`{"type":"UPDATE","framework_id":{"value":%q},"executor_id":{"value":"exec-1"},`+
		`"update":{"status":{"task_id":{"value":"task-1"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","uuid":"6vPt8bSuRZGnUGUzS5LrHA=="}}}`, fwID)
	resp, err = http.Post("http://"+addr+"/api/v1/executor", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "Agent has not finished recovery" {
		t.Errorf("UPDATE during recovery = %d %q, want 503 \"Agent has not finished recovery\"", resp.StatusCode, b)
	}
}

// restartExecutorsGone: executors that do not come back end as on Mesos.
// One was killed while localmesos was down (its tasks fail,
// REASON_EXECUTOR_TERMINATED, as does the command task whose command was
// killed), one is alive but does not re-subscribe (its task is lost,
// REASON_EXECUTOR_REREGISTRATION_TIMEOUT).
func restartExecutorsGone(t *testing.T, bin string) {
	dir := t.TempDir()
	cfg := restartConfig(dir, false)
	p1 := restartStart(t, cfg, dir)
	agents := restartAgentIDs(t, p1.url)
	info := execFrameworkInfo("restart", true)
	s := execSubscribeTo(t, p1.url, info)
	cmdPID, exPID := restartLaunch(t, s, agents, bin)
	o := s.offer(func(o mesos.Offer) bool { return o.AgentID.Value == agents[1] })
	shell := false
	frozen := execExecutorInfo("exec-2", mesos.CommandInfo{Value: &bin, Shell: &shell, Arguments: []string{"testexec"}})
	s.launch(o, execTask("task-2", frozen, ""))
	frozenPID := s.updateAck("task-2", mesos.TASK_STARTING).ContainerStatus.GetExecutorPID()
	s.updateAck("task-2", mesos.TASK_RUNNING)

	p1.stop(t, syscall.SIGKILL)
	s.ended()
	for _, pid := range []uint32{cmdPID, exPID} {
		if err := syscall.Kill(-int(pid), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(int(frozenPID), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	cfg.Port = restartPort(t, p1.url)
	p2 := restartStart(t, cfg, dir)
	id := mesos.FrameworkID{Value: s.fwID}
	info.ID = &id
	s2 := execSubscribeTo(t, p2.url, info)
	type ending struct {
		state  mesos.TaskState
		reason mesos.TaskStatus_Reason
		msg    string
	}
	want := map[string]ending{
		"cmd-1":  {mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated"},
		"task-1": {mesos.TASK_FAILED, mesos.REASON_EXECUTOR_TERMINATED, "Executor terminated"},
		"task-2": {mesos.TASK_LOST, mesos.REASON_EXECUTOR_REREGISTRATION_TIMEOUT, "Executor did not reregister within 3secs"},
	}
	got := map[string]ending{}
	for len(got) < len(want) {
		// Updates whose acknowledgement the killed process had not
		// recorded come again first; each is acknowledged.
		st := s2.await("the tasks' last updates", func(e scheduler.Event) bool {
			return e.Type == scheduler.Event_UPDATE && len(e.Update.Status.UUID) > 0
		}).Update.Status
		s2.ack(st)
		if isTerminalState(st.GetState()) {
			if st.GetSource() != mesos.SOURCE_AGENT {
				t.Errorf("%s ended from %s", st.TaskID.Value, st.GetSource())
			}
			got[st.TaskID.Value] = ending{st.GetState(), st.GetReason(), st.GetMessage()}
		}
	}
	for task, w := range want {
		if got[task] != w {
			t.Errorf("%s ended with %+v, want %+v", task, got[task], w)
		}
	}
	if got := restartAgentIDs(t, p2.url); strings.Join(got, ",") != strings.Join(agents, ",") {
		t.Errorf("agents after the restart %v, want %v", got, agents)
	}
	s2.teardown()
	p2.stop(t, syscall.SIGTERM)
	execNoProcessesLeft(t, cfg.WorkDir)
}

func isTerminalState(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// TestRestartAgentIdentity: a cluster started again on its work dir has
// the same agents (IDs, executor API addresses); started with other
// resources it refuses, as a Mesos agent with an incompatible SlaveInfo
// does, and names what changed.
func TestRestartAgentIdentity(t *testing.T) {
	cfg := restartConfig(t.TempDir(), false)
	first, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := first.Agents()
	first.Close()
	second, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	after := second.Agents()
	second.Close()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("agents after a restart %v, want %v", after, before)
	}
	cfg.Resources = "cpus:3;mem:2048;disk:4096;ports:[41000-41099]"
	if c, err := Start(context.Background(), cfg); err == nil {
		c.Close()
		t.Fatal("started with other resources on the same work dir")
	} else if !strings.Contains(err.Error(), "incompatible agent info detected") || !strings.Contains(err.Error(), "cpus:3") {
		t.Errorf("error = %v", err)
	}
}

// TestRestartAfterClose: the default Close stops every task; the next
// start on the work dir delivers the updates the scheduler could not get
// (the master had stopped first), as restarted Mesos agents would.
func TestRestartAfterClose(t *testing.T) {
	cfg := restartConfig(t.TempDir(), false)
	cfg.Agents = 1
	cfg.ExecutorReregistrationTimeout = time.Second
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	info := execFrameworkInfo("after-close", true)
	s := execSubscribe(t, c, info)
	cmd := "sleep 600"
	s.launch(s.offer(nil), mesos.TaskInfo{Name: "cmd-1", TaskID: mesos.TaskID{Value: "cmd-1"},
		Resources: []mesos.Resource{execScalar("cpus", 0.1), execScalar("mem", 32)},
		Command:   &mesos.CommandInfo{Value: &cmd}})
	s.updateAck("cmd-1", mesos.TASK_STARTING)
	pid := s.updateAck("cmd-1", mesos.TASK_RUNNING).ContainerStatus.GetExecutorPID()
	c.Close()
	s.ended()
	if err := syscall.Kill(int(pid), 0); err == nil {
		t.Fatalf("task (pid %d) still runs after Close", pid)
	}

	c = startCluster(t, cfg)
	id := mesos.FrameworkID{Value: s.fwID}
	info.ID = &id
	s2 := execSubscribe(t, c, info)
	killed := s2.await("the agent's TASK_KILLED", func(e scheduler.Event) bool {
		st := e.Update.GetStatus()
		return e.Type == scheduler.Event_UPDATE && st.TaskID.Value == "cmd-1" && st.GetState() == mesos.TASK_KILLED && len(st.UUID) > 0
	}).Update.Status
	s2.ack(killed)
	if killed.GetSource() != mesos.SOURCE_EXECUTOR || !strings.HasPrefix(killed.GetMessage(), "Command terminated with signal") {
		t.Errorf("TASK_KILLED = %+v", killed)
	}
	// Everything is acknowledged: the agent offers all it has again (an
	// offer made before the task's resources came back is declined so that
	// they can be offered together).
	s2.offerDeclining(func(o mesos.Offer) bool { return execCPUs(o) >= 2 })
	s2.teardown()
}
