package agent

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// execEnvFile reads the executor.env testexec writes.
func execEnvFile(t *testing.T, sandbox string) map[string]string {
	t.Helper()
	content := execWaitFile(t, filepath.Join(sandbox, "executor.env"), func(s string) bool { return strings.Contains(s, "MESOS_") })
	env := map[string]string{}
	for _, line := range strings.Split(content, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestCustomExecutorLifecycle(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-custom", false)
	ex := execCustomExecutor("testexec", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))

	u := h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	cs := u.Status.ContainerStatus
	if cs == nil || cs.GetExecutorPID() == 0 || cs.ContainerID == nil {
		t.Fatalf("container status = %+v", cs)
	}
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)

	// A second task for the live executor goes to the same process.
	h.agent.RunTask(fw, &ex, h.task("t2", "finish"))
	u = h.expectUpdate("t2", mesos.TASK_STARTING)
	// Let the agent take all three updates of t2 (five acknowledged in
	// all) before the scheduler acknowledges the first.
	execWaitFile(t, filepath.Join(h.sandbox(fw, "testexec"), "events.log"), func(s string) bool { return strings.Count(s, "ACKNOWLEDGED") == 5 })
	h.ack(fw, u)
	if u.Status.ContainerStatus.GetExecutorPID() != cs.GetExecutorPID() {
		t.Errorf("second task runs in executor pid %d, want %d", u.Status.ContainerStatus.GetExecutorPID(), cs.GetExecutorPID())
	}
	u = h.expectAndAck(fw, "t2", mesos.TASK_RUNNING)
	// The agent already knows the task finished: the master can free its
	// resources before the scheduler sees TASK_FINISHED.
	if u.LatestState != mesos.TASK_FINISHED {
		t.Errorf("latest state with RUNNING at the head = %s, want TASK_FINISHED", u.LatestState)
	}
	h.expectAndAck(fw, "t2", mesos.TASK_FINISHED)

	h.agent.FrameworkMessage(*fw.ID, ex.ExecutorID, []byte("hello executor"))
	if m := h.master.nextMessage(t); m.executor != "testexec" || string(m.data) != "echo:hello executor" {
		t.Errorf("executor message = %+v", m)
	}

	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "t1"}, nil)
	u = h.expectUpdate("t1", mesos.TASK_KILLED)
	if u.Status.GetMessage() != "killed on KILL event" || u.Status.Reason != nil || u.Status.GetSource() != mesos.SOURCE_EXECUTOR {
		t.Errorf("TASK_KILLED = %+v", u.Status)
	}
	// The executor has no task left and exits 0 once acknowledged by the
	// agent, before the scheduler's ACK.
	if e := h.master.nextExit(t); e != (execExit{"fw-custom", "testexec", 0}) {
		t.Errorf("exit = %+v", e)
	}
	h.ack(fw, u)
	execNoProcessesLeft(t, h.workDir)
	h.noMoreUpdates(200 * time.Millisecond)
}

func TestExecutorEnvironment(t *testing.T) {
	h := newExecHarness(t, nil)
	for _, checkpoint := range []bool{true, false} {
		fwID := "fw-env-nocheckpoint"
		if checkpoint {
			fwID = "fw-env-checkpoint"
		}
		fw := execFramework(fwID, checkpoint)
		cmd := execTestexecCommand()
		cmd.Environment = &mesos.Environment{Variables: []mesos.Environment_Variable{
			{Name: "FOO", Value: stringPtr("bar")},
			{Name: "MESOS_SLAVE_PID", Value: stringPtr("overridden")},
		}}
		ex := execCustomExecutor("envexec", cmd)
		h.agent.RunTask(fw, &ex, h.task("t-"+fwID, "finish"))
		env := execEnvFile(t, h.sandbox(fw, "envexec"))
		sandbox, err := filepath.EvalSymlinks(h.sandbox(fw, "envexec"))
		if err != nil {
			t.Fatal(err)
		}
		addr := h.agent.Address()
		want := map[string]string{
			"MESOS_AGENT_ENDPOINT":                 addr,
			"MESOS_DIRECTORY":                      sandbox,
			"MESOS_SANDBOX":                        sandbox,
			"MESOS_EXECUTOR_ID":                    "envexec",
			"MESOS_FRAMEWORK_ID":                   fwID,
			"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "3secs",
			"MESOS_HTTP_COMMAND_EXECUTOR":          "0",
			"MESOS_SLAVE_ID":                       h.agent.ID().Value,
			"MESOS_SLAVE_PID":                      "overridden",
			"LIBPROCESS_IP":                        "127.0.0.3",
			"LIBPROCESS_PORT":                      "0",
			"PWD":                                  sandbox,
			"FOO":                                  "bar",
		}
		if checkpoint {
			want["MESOS_CHECKPOINT"] = "1"
			want["MESOS_RECOVERY_TIMEOUT"] = "20secs"
			want["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = "400ms"
		} else {
			want["MESOS_CHECKPOINT"] = "0"
		}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("checkpoint %v: %s = %q, want %q", checkpoint, k, env[k], v)
			}
		}
		if !checkpoint {
			for _, k := range []string{"MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX"} {
				if _, ok := env[k]; ok {
					t.Errorf("without checkpointing %s is set", k)
				}
			}
		}
		// The same MESOS_* variables as a real agent's executor (the
		// reference transcript was taken with checkpointing on).
		if checkpoint {
			var got []string
			for k := range env {
				if strings.HasPrefix(k, "MESOS_") {
					got = append(got, k)
				}
			}
			sort.Strings(got)
			if ref := execReferenceEnvNames(t); strings.Join(got, " ") != strings.Join(ref, " ") {
				t.Errorf("MESOS_* variables = %v, real agent = %v", got, ref)
			}
		}
		h.expectAndAck(fw, "t-"+fwID, mesos.TASK_STARTING)
		h.expectAndAck(fw, "t-"+fwID, mesos.TASK_RUNNING)
		h.expectAndAck(fw, "t-"+fwID, mesos.TASK_FINISHED)
		if e := h.master.nextExit(t); e.status != 0 {
			t.Errorf("exit = %+v", e)
		}
	}
}

func execReferenceEnvNames(t *testing.T) []string {
	f, err := os.Open("../../testdata/transcripts/executor-environment.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, _, ok := strings.Cut(sc.Text(), "="); ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func stringPtr(s string) *string { return &s }

func TestCommandTask(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-cmd", false)
	h.agent.RunTask(fw, nil, h.commandTask("hi", `echo hi; echo "$MESOS_ALLOCATION_ROLE"`))
	u := h.expectAndAck(fw, "hi", mesos.TASK_STARTING)
	if u.Status.ExecutorID.GetValue() != "hi" || u.Status.GetSource() != mesos.SOURCE_EXECUTOR || u.Status.ContainerStatus == nil {
		t.Errorf("command STARTING = %+v", u.Status)
	}
	h.expectAndAck(fw, "hi", mesos.TASK_RUNNING)
	u = h.expectAndAck(fw, "hi", mesos.TASK_FINISHED)
	if u.Status.GetMessage() != "Command exited with status 0" {
		t.Errorf("message = %q", u.Status.GetMessage())
	}
	if out := execWaitFile(t, filepath.Join(h.sandbox(fw, "hi"), "stdout"), func(string) bool { return true }); out != "hi\n*\n" {
		t.Errorf("stdout = %q", out)
	}

	h.agent.RunTask(fw, nil, h.commandTask("three", "exit 3"))
	h.expectAndAck(fw, "three", mesos.TASK_STARTING)
	h.expectAndAck(fw, "three", mesos.TASK_RUNNING)
	u = h.expectAndAck(fw, "three", mesos.TASK_FAILED)
	if u.Status.GetMessage() != "Command exited with status 3" {
		t.Errorf("message = %q", u.Status.GetMessage())
	}

	// Not shell: value is executed with arguments, argv[0] included.
	shell := false
	task := h.commandTask("noshell", "")
	task.Command = &mesos.CommandInfo{Shell: &shell, Value: stringPtr("/bin/sh"), Arguments: []string{"sh", "-c", "exit 0"}}
	h.agent.RunTask(fw, nil, task)
	h.expectAndAck(fw, "noshell", mesos.TASK_STARTING)
	h.expectAndAck(fw, "noshell", mesos.TASK_RUNNING)
	h.expectAndAck(fw, "noshell", mesos.TASK_FINISHED)

	// The built-in executors exit 0 once their task's terminal update is
	// acknowledged; the master is told (it sends no FAILURE for them).
	for _, id := range []string{"hi", "three", "noshell"} {
		if e := h.master.nextExit(t); e.executor != id || e.status != 0 {
			t.Errorf("exit = %+v, want %s with status 0", e, id)
		}
	}
}

func TestCommandTaskKill(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-kill", false)
	h.agent.RunTask(fw, nil, h.commandTask("sleeper", "sleep 600"))
	h.expectAndAck(fw, "sleeper", mesos.TASK_STARTING)
	h.expectAndAck(fw, "sleeper", mesos.TASK_RUNNING)
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "sleeper"}, nil)
	u := h.expectAndAck(fw, "sleeper", mesos.TASK_KILLED)
	if u.Status.GetMessage() != "Command terminated with signal Terminated" {
		t.Errorf("message = %q", u.Status.GetMessage())
	}

	// With TASK_KILLING_STATE, TASK_KILLING first; a command ignoring
	// SIGTERM gets SIGKILL after the kill policy's grace period.
	fw2 := execFramework("fw-killing", false, mesos.FrameworkInfo_Capability_TASK_KILLING_STATE)
	h.agent.RunTask(fw2, nil, h.commandTask("stubborn", "trap '' TERM; echo ready > ready; sleep 600"))
	h.expectAndAck(fw2, "stubborn", mesos.TASK_STARTING)
	h.expectAndAck(fw2, "stubborn", mesos.TASK_RUNNING)
	execWaitFile(t, filepath.Join(h.sandbox(fw2, "stubborn"), "ready"), func(s string) bool { return s == "ready\n" })
	policy := mesos.KillPolicy{GracePeriod: &mesos.DurationInfo{Nanoseconds: int64(200 * time.Millisecond)}}
	h.agent.KillTask(*fw2.ID, mesos.TaskID{Value: "stubborn"}, &policy)
	h.expectAndAck(fw2, "stubborn", mesos.TASK_KILLING)
	u = h.expectAndAck(fw2, "stubborn", mesos.TASK_KILLED)
	if u.Status.GetMessage() != "Command terminated with signal Killed" {
		t.Errorf("message = %q", u.Status.GetMessage())
	}
	execNoProcessesLeft(t, h.workDir)
}

func TestStatusUpdateRetries(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.StatusUpdateRetryInterval = 100 * time.Millisecond })
	fw := execFramework("fw-retry", false)
	h.agent.RunTask(fw, nil, h.commandTask("sleeper", "sleep 600"))
	first := h.expectUpdate("sleeper", mesos.TASK_STARTING)
	start := time.Now()
	// Unacknowledged: the same update again after 100 ms, then 200 ms.
	for i := 0; i < 2; i++ {
		again := h.expectUpdate("sleeper", mesos.TASK_STARTING)
		if string(again.Status.UUID) != string(first.Status.UUID) || *again.Status.Timestamp != *first.Status.Timestamp {
			t.Fatalf("resent update differs: %+v vs %+v", again.Status, first.Status)
		}
	}
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		t.Errorf("two retries after %v, want at least 100 ms + 200 ms", elapsed)
	}
	h.ack(fw, first)
	h.expectUpdate("sleeper", mesos.TASK_RUNNING)
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "sleeper"}, nil)
}

func TestUpdateFrameworkResends(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.StatusUpdateRetryInterval = time.Minute })
	fw := execFramework("fw-resend", false)
	h.agent.RunTask(fw, nil, h.commandTask("sleeper", "sleep 600"))
	first := h.expectUpdate("sleeper", mesos.TASK_STARTING)
	// A (re-)subscribed framework gets its pending update at once.
	h.agent.UpdateFramework(fw)
	again := h.expectUpdate("sleeper", mesos.TASK_STARTING)
	if string(again.Status.UUID) != string(first.Status.UUID) {
		t.Errorf("resent a different update")
	}
	// A wrong uuid does not pop the stream; the right one does.
	h.agent.Acknowledge(*fw.ID, first.Status.TaskID, newUUID())
	h.noMoreUpdates(200 * time.Millisecond)
	h.ack(fw, first)
	h.expectUpdate("sleeper", mesos.TASK_RUNNING)
}

func TestRegistrationTimeout(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.ExecutorRegistrationTimeout = 300 * time.Millisecond })
	fw := execFramework("fw-regtimeout", false)
	ex := execCustomExecutor("silent", execShell("sleep 600"))
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	u := h.expectAndAck(fw, "t1", mesos.TASK_FAILED)
	if u.Status.GetReason() != mesos.REASON_EXECUTOR_REGISTRATION_TIMEOUT || u.Status.GetSource() != mesos.SOURCE_AGENT ||
		u.Status.GetMessage() != "Executor did not register within 300ms" || u.Status.ExecutorID.GetValue() != "silent" {
		t.Errorf("update = %+v", u.Status)
	}
	if e := h.master.nextExit(t); e.executor != "silent" || e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}
	execNoProcessesLeft(t, h.workDir)
}

func TestKillBeforeDelivery(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.ExecutorShutdownGracePeriod = 300 * time.Millisecond })
	fw := execFramework("fw-early", false)
	h.runSleeper(fw, "t1")
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "t1"}, nil)
	u := h.expectAndAck(fw, "t1", mesos.TASK_KILLED)
	if u.Status.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH || u.Status.GetSource() != mesos.SOURCE_AGENT ||
		u.Status.GetMessage() != "Killed before delivery to the executor" || u.Status.ContainerStatus != nil {
		t.Errorf("update = %+v", u.Status)
	}
	// The executor, when it subscribes, is shut down: it never had a task.
	c := execClient{t: t, addr: h.agent.Address()}
	sub := execCall(fw, "sleeper", executor.Call_SUBSCRIBE)
	sub.Subscribe = &executor.Call_Subscribe{}
	events := execReadEvents(t, c.call(sub, mediaProtobuf), mediaProtobuf)
	if ev := events.next(t); ev.Type != executor.Event_SHUTDOWN {
		t.Errorf("first event = %s, want SHUTDOWN", ev.Type)
	}
	if e := h.master.nextExit(t); e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}

	// Killing a task no executor has: TASK_LOST, or TASK_DROPPED for a
	// partition-aware framework.
	h.agent.RunTask(fw, nil, h.commandTask("known", "sleep 600"))
	h.expectAndAck(fw, "known", mesos.TASK_STARTING)
	h.expectAndAck(fw, "known", mesos.TASK_RUNNING)
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "nope"}, nil)
	u = h.expectAndAck(fw, "nope", mesos.TASK_LOST)
	if u.Status.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || u.Status.GetMessage() != "Cannot find executor" {
		t.Errorf("update = %+v", u.Status)
	}
	pa := execFramework("fw-partition-aware", false, mesos.FrameworkInfo_Capability_PARTITION_AWARE)
	h.agent.RunTask(pa, nil, h.commandTask("pa-known", "sleep 600"))
	h.expectAndAck(pa, "pa-known", mesos.TASK_STARTING)
	h.expectAndAck(pa, "pa-known", mesos.TASK_RUNNING)
	h.agent.KillTask(*pa.ID, mesos.TaskID{Value: "nope"}, nil)
	h.expectAndAck(pa, "nope", mesos.TASK_DROPPED)
}

func TestKillExecutor(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-death", false)
	ex := execCustomExecutor("victim", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)
	if err := h.agent.KillExecutor(*fw.ID, ex.ExecutorID); err != nil {
		t.Fatal(err)
	}
	u := h.expectAndAck(fw, "t1", mesos.TASK_FAILED)
	if u.Status.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || u.Status.GetSource() != mesos.SOURCE_AGENT ||
		u.Status.GetMessage() != "Executor terminated" || u.Status.ContainerStatus != nil {
		t.Errorf("update = %+v", u.Status)
	}
	if e := h.master.nextExit(t); e.executor != "victim" || e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}
	if err := h.agent.KillExecutor(*fw.ID, ex.ExecutorID); err == nil {
		t.Errorf("killing a dead executor succeeded")
	}

	// The built-in command executor dies with its command: no leak.
	h.agent.RunTask(fw, nil, h.commandTask("cmd", "sleep 600"))
	h.expectAndAck(fw, "cmd", mesos.TASK_STARTING)
	h.expectAndAck(fw, "cmd", mesos.TASK_RUNNING)
	if err := h.agent.KillExecutor(*fw.ID, mesos.ExecutorID{Value: "cmd"}); err != nil {
		t.Fatal(err)
	}
	u = h.expectAndAck(fw, "cmd", mesos.TASK_FAILED)
	if u.Status.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || u.Status.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("update = %+v", u.Status)
	}
	if e := h.master.nextExit(t); e.executor != "cmd" || e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}
	execNoProcessesLeft(t, h.workDir)
}

func TestShutdownFramework(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.ExecutorShutdownGracePeriod = 5 * time.Second })
	fw := execFramework("fw-teardown", false)
	ex := execCustomExecutor("testexec", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)
	h.agent.ShutdownFramework(*fw.ID)
	// The executor answers SHUTDOWN with TASK_KILLED, which the agent
	// drops; it waits for an ACKNOWLEDGED that never comes, then exits.
	if e := h.master.nextExit(t); e != (execExit{"fw-teardown", "testexec", 0}) {
		t.Errorf("exit = %+v", e)
	}
	log := execWaitFile(t, filepath.Join(h.sandbox(fw, "testexec"), "events.log"), func(s string) bool { return strings.Contains(s, "SHUTDOWN") })
	if strings.Count(log, "ACKNOWLEDGED") != 2 {
		t.Errorf("events = %q, want the two ACKNOWLEDGED before SHUTDOWN only", log)
	}
	h.noMoreUpdates(200 * time.Millisecond)
}

// TestShutdownIgnored: an executor that ignores SHUTDOWN is killed after
// the grace period.
func TestShutdownIgnored(t *testing.T) {
	h2 := newExecHarness(t, func(c *Config) { c.ExecutorShutdownGracePeriod = 300 * time.Millisecond })
	fw2 := execFramework("fw-teardown2", false)
	h2.runSleeper(fw2, "t1")
	h2.agent.ShutdownFramework(*fw2.ID)
	if e := h2.master.nextExit(t); e.status != int32(syscall.SIGKILL) {
		t.Errorf("exit = %+v", e)
	}
	h2.noMoreUpdates(100 * time.Millisecond)
}

func TestFetcher(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-fetch", false)
	srv := execFileServer(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "local.txt")
	if err := os.WriteFile(local, []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	task := h.commandTask("fetch", `set -e
test -x run.sh
test "$(cat local.txt)" = local
test "$(cat renamed/file.txt)" = local
test "$(cat tarred/inner.txt)" = tar
test "$(cat zipped/inner.txt)" = zip
test "$(cat plain.txt)" = plain
test -f archive.tgz
./run.sh`)
	task.Command.URIs = []mesos.CommandInfo_URI{
		{Value: srv + "/run.sh", Executable: &yes},
		{Value: local},
		{Value: "file://" + local, OutputFile: stringPtr("renamed/file.txt")},
		{Value: srv + "/archive.tgz"},
		{Value: srv + "/archive.zip"},
		{Value: srv + "/plain.txt.gz", Extract: &yes},
		{Value: srv + "/data.tar", Extract: &no, OutputFile: stringPtr("not-extracted.tar")},
	}
	h.agent.RunTask(fw, nil, task)
	h.expectAndAck(fw, "fetch", mesos.TASK_STARTING)
	h.expectAndAck(fw, "fetch", mesos.TASK_RUNNING)
	if u := h.expectAndAck(fw, "fetch", mesos.TASK_FINISHED); u.Status.GetMessage() != "Command exited with status 0" {
		t.Fatalf("fetch checks failed: %s; stderr: %s", u.Status.GetMessage(), execReadFile(filepath.Join(h.sandbox(fw, "fetch"), "stderr")))
	}
	if out := execReadFile(filepath.Join(h.sandbox(fw, "fetch"), "stdout")); out != "run\n" {
		t.Errorf("stdout = %q", out)
	}
	if e := h.master.nextExit(t); e.executor != "fetch" || e.status != 0 {
		t.Errorf("exit = %+v", e)
	}

	// A custom executor fetched from a URI.
	ex := execCustomExecutor("fetched", mesos.CommandInfo{Value: stringPtr("./testexec"), URIs: []mesos.CommandInfo_URI{{Value: "file://" + execTestexec, Executable: &yes}}})
	h.agent.RunTask(fw, &ex, h.task("t1", "finish"))
	h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)
	h.expectAndAck(fw, "t1", mesos.TASK_FINISHED)
	if e := h.master.nextExit(t); e.executor != "fetched" || e.status != 0 {
		t.Errorf("exit = %+v", e)
	}

	// A failed fetch fails the launch.
	broken := execCustomExecutor("broken", mesos.CommandInfo{Value: stringPtr("./testexec"), URIs: []mesos.CommandInfo_URI{{Value: srv + "/missing"}}})
	h.agent.RunTask(fw, &broken, h.task("t2", ""))
	u := h.expectAndAck(fw, "t2", mesos.TASK_FAILED)
	if u.Status.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || u.Status.GetSource() != mesos.SOURCE_AGENT ||
		!strings.HasPrefix(u.Status.GetMessage(), "Failed to launch container: Failed to fetch all URIs for container") ||
		!strings.Contains(u.Status.GetMessage(), "404") {
		t.Errorf("update = %+v", u.Status)
	}
	if e := h.master.nextExit(t); e.executor != "broken" || e.status != -1 {
		t.Errorf("exit = %+v", e)
	}
}

func execReadFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestExecutorExitsWithLiveTasks: an executor that exits on its own leaves
// its tasks TASK_FAILED by the agent, and the master learns its raw wait
// status.
func TestExecutorExitsWithLiveTasks(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-exit", false)
	ex := execCustomExecutor("quitter", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	h.expectAndAck(fw, "t1", mesos.TASK_STARTING)
	h.expectAndAck(fw, "t1", mesos.TASK_RUNNING)
	h.agent.RunTask(fw, &ex, h.task("t2", "exit:3"))
	// t2's STARTING and RUNNING were sent before the exit; t1 has no more.
	h.expectAndAck(fw, "t2", mesos.TASK_STARTING)
	h.expectAndAck(fw, "t2", mesos.TASK_RUNNING)
	got := map[string]mesos.TaskStatus{}
	for i := 0; i < 2; i++ {
		u := h.master.nextUpdate(t)
		got[u.Status.TaskID.Value] = u.Status
		h.ack(fw, u)
	}
	for _, id := range []string{"t1", "t2"} {
		st := got[id]
		if st.GetState() != mesos.TASK_FAILED || st.GetReason() != mesos.REASON_EXECUTOR_TERMINATED || st.GetSource() != mesos.SOURCE_AGENT {
			t.Errorf("%s: %+v", id, st)
		}
	}
	if e := h.master.nextExit(t); e.executor != "quitter" || e.status != 3<<8 {
		t.Errorf("exit = %+v, want status %d", e, 3<<8)
	}
}

func TestTaskGroup(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-group", false)
	ex := execCustomExecutor("grouper", execTestexecCommand())
	group := mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{h.task("g1", ""), h.task("g2", "finish")}}
	h.agent.RunTaskGroup(fw, ex, group)
	seen := map[string][]mesos.TaskState{}
	for i := 0; i < 5; i++ {
		u := h.master.nextUpdate(t)
		seen[u.Status.TaskID.Value] = append(seen[u.Status.TaskID.Value], u.Status.GetState())
		h.ack(fw, u)
	}
	if fmt.Sprint(seen["g1"]) != "[TASK_STARTING TASK_RUNNING]" || fmt.Sprint(seen["g2"]) != "[TASK_STARTING TASK_RUNNING TASK_FINISHED]" {
		t.Errorf("updates = %v", seen)
	}
	log := execWaitFile(t, filepath.Join(h.sandbox(fw, "grouper"), "events.log"), func(s string) bool { return strings.Contains(s, "LAUNCH_GROUP") })
	if strings.Contains(log, "LAUNCH\n") {
		t.Errorf("events = %q, want one LAUNCH_GROUP", log)
	}

	// Killing one task of a group not yet delivered kills the whole group.
	sleeper := execCustomExecutor("sleeper", execShell("sleep 600"))
	h.agent.RunTaskGroup(fw, sleeper, mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{h.task("q1", ""), h.task("q2", "")}})
	h.agent.KillTask(*fw.ID, mesos.TaskID{Value: "q2"}, nil)
	for _, id := range []string{"q1", "q2"} {
		u := h.expectAndAck(fw, id, mesos.TASK_KILLED)
		if u.Status.GetReason() != mesos.REASON_TASK_KILLED_DURING_LAUNCH ||
			u.Status.GetMessage() != "A task within the task group was killed before delivery to the executor" {
			t.Errorf("%s: %+v", id, u.Status)
		}
	}
}

func TestReregisterAfterMasterFailover(t *testing.T) {
	h := newExecHarness(t, func(c *Config) { c.StatusUpdateRetryInterval = time.Minute })
	fw := execFramework("fw-failover", false)
	ex := execCustomExecutor("testexec", execTestexecCommand())
	h.agent.RunTask(fw, &ex, h.task("t1", ""))
	starting := h.expectUpdate("t1", mesos.TASK_STARTING)
	execWaitFile(t, filepath.Join(h.sandbox(fw, "testexec"), "events.log"), func(s string) bool { return strings.Count(s, "ACKNOWLEDGED") == 2 })
	h.agent.Reregister()
	reg := h.master.nextRegistration(t)
	if !reg.Reregistration || len(reg.Frameworks) != 1 || len(reg.Executors) != 1 || len(reg.Tasks) != 1 ||
		reg.Executors[0].FrameworkID.GetValue() != "fw-failover" || reg.Tasks[0].GetState() != mesos.TASK_RUNNING ||
		reg.Tasks[0].GetStatusUpdateState() != mesos.TASK_STARTING {
		t.Errorf("re-registration = %+v", reg)
	}
	// Pending updates go to the new master at once.
	again := h.expectUpdate("t1", mesos.TASK_STARTING)
	if string(again.Status.UUID) != string(starting.Status.UUID) {
		t.Errorf("a different update was resent")
	}
}

func TestDefaultExecutorUnavailable(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-default", false)
	ex := mesos.ExecutorInfo{Type: mesos.ExecutorInfo_DEFAULT, ExecutorID: mesos.ExecutorID{Value: "default"}, Resources: execResources(0.1, 32)}
	h.agent.RunTaskGroup(fw, ex, mesos.TaskGroupInfo{Tasks: []mesos.TaskInfo{h.task("d1", "")}})
	u := h.expectAndAck(fw, "d1", mesos.TASK_FAILED)
	if u.Status.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || !strings.Contains(u.Status.GetMessage(), "DEFAULT executor") {
		t.Errorf("update = %+v", u.Status)
	}
	if e := h.master.nextExit(t); e.status != -1 {
		t.Errorf("exit = %+v", e)
	}
}
