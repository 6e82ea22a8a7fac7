package framework_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/localmesos"
)

// The crash tests run the scheduler as a subprocess (the test framework
// binary, built once), against a localmesos cluster in the test process that
// outlives it, with embedded etcd in a fixed data directory. They kill it
// with SIGKILL in the middle of an operation, start it again on the same
// data, and check that the operation completes with no task lost and none
// launched twice.

var testBinary struct {
	once sync.Once
	path string
	err  error
}

// buildTestFramework builds ./internal/testframework once per test run.
func buildTestFramework(t *testing.T) string {
	t.Helper()
	testBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "stateful-testframework-")
		if err != nil {
			testBinary.err = err
			return
		}
		path := filepath.Join(dir, "testframework")
		out, err := exec.Command("go", "build", "-o", path, "./internal/testframework").CombinedOutput()
		if err != nil {
			testBinary.err = fmt.Errorf("go build: %v: %s", err, out)
			return
		}
		testBinary.path = path
	})
	if testBinary.err != nil {
		t.Fatalf("build the test framework: %v", testBinary.err)
	}
	return testBinary.path
}

// subprocess is a scheduler run as a separate process.
type subprocess struct {
	t       *testing.T
	bin     string
	args    []string
	api     string // the REST API's URL, new with every start
	apiFile string // where the process writes its API's address
	logPath string
	calls   string
	env     []string // added to this process's environment
	cmd     *exec.Cmd
	exited  <-chan struct{}
}

// startSubprocess runs the test framework on cluster with its data in
// dataDir and waits until it is healthy.
func startSubprocess(t *testing.T, cluster *localmesos.Cluster, dataDir string) *subprocess {
	t.Helper()
	p := newSubprocess(t, dataDir, "--master="+cluster.MasterURL(), "--etcd=embedded")
	p.start()
	return p
}

// newSubprocess prepares the test framework with its data in dataDir and
// the given --master and --etcd (and other) flags; start runs it.
func newSubprocess(t *testing.T, dataDir string, args ...string) *subprocess {
	t.Helper()
	p := &subprocess{
		t:       t,
		bin:     buildTestFramework(t),
		apiFile: filepath.Join(dataDir, "api-addr"),
		logPath: filepath.Join(dataDir, "scheduler.log"),
		calls:   filepath.Join(dataDir, "callbacks.jsonl"),
		args: append([]string{
			"--http=127.0.0.1:0", "--data-dir=" + dataDir,
			"--runtime=process", "--name=crash", "--executor-mode=path", "--volume-root=" + filepath.Join(dataDir, "volumes"), "-v=1",
		}, args...),
	}
	t.Cleanup(p.stop)
	return p
}

func (p *subprocess) start() {
	p.t.Helper()
	if err := os.Remove(p.apiFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		p.t.Fatal(err)
	}
	p.api = ""
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Env = append(os.Environ(), testworkload.LogEnv+"="+p.calls, testworkload.APIAddrFileEnv+"="+p.apiFile)
	p.cmd.Env = append(p.cmd.Env, p.env...)
	p.exited = startLogged(p.t, p.cmd, p.logPath)
	eventually(p.t, "scheduler subprocess healthy", func() (bool, string) {
		select {
		case <-p.exited:
			p.t.Fatalf("scheduler exited: %s\n%s", p.cmd.ProcessState, p.logTail())
		default:
		}
		if p.api == "" {
			addr, err := os.ReadFile(p.apiFile)
			if err != nil {
				return false, "the REST API does not listen yet: " + err.Error()
			}
			p.api = "http://" + string(addr)
		}
		code, body, err := do(http.MethodGet, p.api+"/v1/health", nil)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

// crash kills the scheduler with SIGKILL: no cleanup of any kind runs.
func (p *subprocess) crash() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatal(err)
	}
	<-p.exited
}

// stop ends the scheduler cleanly (SIGTERM), as an operator would.
func (p *subprocess) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			p.t.Errorf("scheduler exited with %d after SIGTERM, want 0 (a clean stop)\n%s", code, p.logTail())
		}
	case <-time.After(20 * time.Second):
		p.t.Errorf("scheduler did not stop within 20 s of SIGTERM; killing it\n%s", p.logTail())
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *subprocess) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.Contains(l, "fatal error") || strings.HasPrefix(l, "panic") || strings.HasPrefix(l, "F1") {
			return strings.Join(lines[i:min(len(lines), i+25)], "\n")
		}
	}
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// checkNoDuplicates checks that the master runs, for each ordinal of the
// instance, exactly the one attempt GET reports.
func checkNoDuplicates(t *testing.T, cluster *localmesos.Cluster, inst *stateful.Instance) {
	t.Helper()
	live := liveMasterTasks(t, cluster.MasterURL(), inst.Name)
	byOrdinal := map[int][]string{}
	for _, mt := range live {
		id, _ := stateful.ParseTaskID(mt.ID)
		byOrdinal[id.Ordinal] = append(byOrdinal[id.Ordinal], mt.ID+" "+mt.State)
	}
	if len(live) != inst.TaskCount() {
		t.Errorf("the master runs %d tasks of %s, want %d: %v", len(live), inst.Name, inst.TaskCount(), byOrdinal)
	}
	for _, task := range inst.Tasks {
		got := byOrdinal[task.Ordinal]
		if len(got) != 1 || !strings.HasPrefix(got[0], task.TaskID+" ") {
			t.Errorf("ordinal %d of %s: the master has %v, the scheduler says %s", task.Ordinal, inst.Name, got, task.TaskID)
		}
	}
}

// TestCrashWhileCreating kills the scheduler while an instance's tasks are
// being launched and restarts it on the same data: the creation completes,
// every attempt that was launched before the crash is still the one that
// runs (nothing lost), and no ordinal runs twice.
//
// The launcher records an attempt as TASK_STAGING before its ACCEPT is
// sent, so a crash between the two leaves an attempt that the master never
// launched (nor did it if the ACCEPT came too late for its offers). The
// restarted scheduler reconciles it, Mesos answers TASK_GONE (TASK_LOST
// to a framework that is not partition-aware), and the attempt is lost
// and its ordinal relaunched: that is correct, and the only loss allowed.
// An attempt the master ever had, running or completed, must not be lost.
func TestCrashWhileCreating(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	cluster := startCluster(t, 3)
	dataDir := t.TempDir()
	p := startSubprocess(t, cluster, dataDir)

	call(t, http.MethodPost, p.api+"/v1/instances", createBody("big", stateful.TypeCluster, 3, 0), http.StatusAccepted)
	call(t, http.MethodPost, p.api+"/v1/instances", createBody("pair", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	// Crash as soon as some task is launched and "big" is not complete.
	var launched *stateful.Instance
	eventuallyWithin(t, stepTimeout, "a launch in progress", func() (bool, string) {
		inst, _ := get(t, p.api, "big")
		if inst == nil {
			return false, "no instance"
		}
		n := 0
		for _, task := range inst.Tasks {
			if task.State.IsLaunched() {
				n++
			}
		}
		launched = inst
		return n > 0, describe(inst)
	})
	p.crash()
	t.Logf("crashed with big at: %s", describe(launched))
	runningAtCrash := map[string]bool{}
	for _, mt := range liveMasterTasks(t, cluster.MasterURL(), "big") {
		runningAtCrash[mt.ID] = true
	}

	p.start()
	for _, name := range []string{"big", "pair"} {
		inst := waitRunning(t, p.api, name)
		checkNoDuplicates(t, cluster, inst)
	}
	big, _ := get(t, p.api, "big")
	for _, task := range big.Tasks {
		delete(runningAtCrash, task.TaskID)
	}
	if len(runningAtCrash) > 0 {
		t.Errorf("attempts launched before the crash were replaced: %v; now %s", runningAtCrash, describe(big))
	}
	calls, err := testworkload.ReadLog(p.calls)
	if err != nil {
		t.Fatal(err)
	}
	everLaunched := map[string]bool{}
	for _, mt := range masterTasksOf(t, cluster.MasterURL(), true) {
		everLaunched[mt.ID] = true
	}
	for _, c := range calls {
		if c.Callback != "MasterLost" && c.Callback != "SlaveLost" {
			continue
		}
		instance, ordinal, err := stateful.ParseTaskName(c.Task)
		if err != nil {
			t.Fatalf("callback log: %+v: %v", c, err)
		}
		if id := stateful.FormatTaskID(instance, ordinal, c.Attempt); everLaunched[id] {
			t.Errorf("a crash of the scheduler lost %s, which the master had launched: %+v", id, c)
		} else {
			t.Logf("%s was recorded but its ACCEPT never reached the master; lost and relaunched, as it should be: %+v", id, c)
		}
	}
}

// TestCrashWhileDestroying kills the scheduler right after a destroy was
// accepted and restarts it: the destroy completes (404), the master has no
// task of the instance left and no process of it remains, while another
// instance is untouched.
func TestCrashWhileDestroying(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the scheduler as a subprocess")
	}
	cluster := startCluster(t, 3)
	dataDir := t.TempDir()
	p := startSubprocess(t, cluster, dataDir)

	call(t, http.MethodPost, p.api+"/v1/instances", createBody("doomed", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	call(t, http.MethodPost, p.api+"/v1/instances", createBody("keeper", stateful.TypeSingle, 1, 0), http.StatusAccepted)
	waitRunning(t, p.api, "doomed")
	keeper := waitRunning(t, p.api, "keeper")

	call(t, http.MethodDelete, p.api+"/v1/instances/doomed", nil, http.StatusAccepted)
	p.crash()

	p.start()
	eventually(t, "doomed gone", func() (bool, string) {
		_, code := get(t, p.api, "doomed")
		return code == http.StatusNotFound, fmt.Sprint(code)
	})
	if live := liveMasterTasks(t, cluster.MasterURL(), "doomed"); len(live) != 0 {
		t.Errorf("the master still runs %v", live)
	}
	eventually(t, "no process of doomed left", func() (bool, string) {
		pids := processesOf("doomed")
		return len(pids) == 0, fmt.Sprint(pids)
	})
	after := waitRunning(t, p.api, "keeper")
	if after.Tasks[0].TaskID != keeper.Tasks[0].TaskID {
		t.Errorf("keeper was relaunched (%s → %s)", keeper.Tasks[0].TaskID, after.Tasks[0].TaskID)
	}
	checkNoDuplicates(t, cluster, after)
}
