package framework_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// SIGTERM ends a scheduler that is stuck in its startup: here its embedded
// etcd, on a data directory whose member never becomes ready (and is not
// provably empty, so it is not repaired). Before, the start waited a
// minute, then blocked for good stopping the half-started etcd, and
// SIGTERM was ignored.
func TestSIGTERMEndsAStartStuckOnEtcd(t *testing.T) {
	bin := buildTestFramework(t)
	dataDir := t.TempDir()
	etcdDir := filepath.Join(dataDir, "etcd")
	statemgrtest.UnelectableDir(t, etcdDir)

	logPath := filepath.Join(dataDir, "scheduler.log")
	cmd := exec.Command(bin, "--http=127.0.0.1:0", "--master=http://127.0.0.1:9", "--etcd=embedded",
		"--data-dir="+dataDir, "--runtime=process", "--name=stuck", "-v=1")
	exited := startLogged(t, cmd, logPath)
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}

	// Stuck: etcd has started (it opened its log) and the process lives.
	eventually(t, "the embedded etcd starting", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("the scheduler exited before SIGTERM: %s\n%s", cmd.ProcessState, logTail())
		default:
		}
		_, err := os.Stat(filepath.Join(etcdDir, "etcd.log"))
		return err == nil, "no etcd.log yet"
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	select {
	case <-exited:
		t.Logf("exited %v after SIGTERM: %s", time.Since(sent).Round(time.Millisecond), cmd.ProcessState)
	case <-time.After(15 * time.Second):
		t.Fatalf("the scheduler did not exit within 15 s of SIGTERM\n%s", logTail())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0 (a clean stop)\n%s", code, logTail())
	}
	if strings.Contains(logTail(), "did not stop") {
		t.Errorf("the half-started etcd did not stop\n%s", logTail())
	}
}

// Issue 10's case as an operator meets it: the scheduler was killed during
// its very first start, leaving an embedded etcd that never committed
// anything. The next start repairs it (the old member is kept aside) and
// serves; creating an instance works.
func TestStartAfterACrashDuringTheFirstEtcdStart(t *testing.T) {
	cluster := startCluster(t, 1)
	dataDir := t.TempDir()
	statemgrtest.NeverCommittedDir(t, filepath.Join(dataDir, "etcd"))

	p := startSubprocess(t, cluster, dataDir) // fails the test unless healthy
	if aside, _ := filepath.Glob(filepath.Join(dataDir, "etcd", "member.never-committed-*")); len(aside) != 1 {
		t.Errorf("moved-aside members %v, want one", aside)
	}
	if !strings.Contains(p.logTail(), "never committed anything") {
		t.Errorf("the repair is not logged:\n%s", p.logTail())
	}
	call(t, "POST", p.api+"/v1/instances", map[string]any{"name": "after", "type": "S"}, 202)
	if _, code := get(t, p.api, "after"); code != 200 {
		t.Errorf("GET after create: %d", code)
	}
}
