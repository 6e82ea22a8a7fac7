package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestDestroyKillsDescendantsOnly: destroying a container kills a
// descendant that moved to a session of its own, and nothing that is not
// the container's, without looking at the host's other processes.
func TestDestroyKillsDescendantsOnly(t *testing.T) {
	h := newExecHarness(t, nil)
	fw := execFramework("fw-tree", false)
	bystander := exec.Command("sleep", "600")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

	h.agent.RunTask(fw, nil, h.commandTask("tree", "setsid sleep 600 & echo $! > escaped.pid; sleep 600"))
	h.expectAndAck(fw, "tree", mesos.TASK_STARTING)
	h.expectAndAck(fw, "tree", mesos.TASK_RUNNING)
	pidText := execWaitFile(t, filepath.Join(h.sandbox(fw, "tree"), "escaped.pid"), func(s string) bool { return strings.HasSuffix(s, "\n") })
	escaped, err := strconv.Atoi(strings.TrimSpace(pidText))
	if err != nil {
		t.Fatal(err)
	}
	// setsid may not have run yet when the pid file is written.
	deadline := time.Now().Add(execWait)
	for {
		if sid, err := getsid(escaped); err == nil && sid == escaped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never left its session", escaped)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := h.agent.KillExecutor(*fw.ID, mesos.ExecutorID{Value: "tree"}); err != nil {
		t.Fatal(err)
	}
	h.expectAndAck(fw, "tree", mesos.TASK_FAILED)
	execNoProcessesLeft(t, h.workDir)
	if !alive(bystander.Process.Pid) {
		t.Errorf("a process outside the container was killed")
	}
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

func alive(pid int) bool {
	st, _, ok := procStat(pid)
	return ok && st != 'Z' && st != 'X' && syscall.Kill(pid, 0) == nil && pid != os.Getpid()
}
