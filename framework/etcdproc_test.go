package framework_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdProcess is a real etcd server (Debian's etcd-server) run as a child
// process on loopback, which a test stops, restarts and freezes as an
// outage would.
type etcdProcess struct {
	t        *testing.T
	bin, dir string
	client   string // client URL
	peer     string
	logPath  string
	cmd      *exec.Cmd
	exited   <-chan struct{}
	frozen   bool
	stopped  bool
}

// startEtcdProcess starts etcd with its data in a fresh directory, or
// skips the test naming what is missing. It is killed when the test ends.
func startEtcdProcess(t *testing.T) *etcdProcess {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("needs the etcd binary (Debian package etcd-server; .ci/run installs it)")
	}
	dir := t.TempDir()
	e := &etcdProcess{
		t: t, bin: bin, dir: dir,
		client:  "http://" + freeAddr(t),
		peer:    "http://" + freeAddr(t),
		logPath: filepath.Join(dir, "etcd.log"),
	}
	t.Cleanup(func() {
		if e.frozen {
			e.thaw()
		}
		if !e.stopped {
			_ = e.cmd.Process.Kill()
			<-e.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(e.logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("etcd log (end):\n%s", strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	})
	e.start()
	return e
}

func (e *etcdProcess) start() {
	e.t.Helper()
	e.cmd = exec.Command(e.bin,
		"--name=outage", "--data-dir="+filepath.Join(e.dir, "data"),
		"--listen-client-urls="+e.client, "--advertise-client-urls="+e.client,
		"--listen-peer-urls="+e.peer, "--initial-advertise-peer-urls="+e.peer,
		"--initial-cluster=outage="+e.peer,
	)
	e.exited = startLogged(e.t, e.cmd, e.logPath)
	e.stopped = false
	eventually(e.t, "etcd answers", func() (bool, string) {
		select {
		case <-e.exited:
			e.t.Fatalf("etcd exited: %s (log %s)", e.cmd.ProcessState, e.logPath)
		default:
		}
		err := e.ping()
		return err == nil, fmt.Sprint(err)
	})
}

// ping asks etcd for a linearizable read.
func (e *etcdProcess) ping() error {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.client}, DialTimeout: time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = c.Get(ctx, "ping")
	return err
}

// stop ends etcd (SIGTERM), as an operator's restart or a crash would.
func (e *etcdProcess) stop() {
	e.t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		e.t.Fatal(err)
	}
	select {
	case <-e.exited:
	case <-time.After(stepTimeout):
		e.t.Fatal("etcd did not stop after SIGTERM")
	}
	e.stopped = true
}

// freeze stops etcd's process (SIGSTOP): connections stay open, nothing
// answers.
func (e *etcdProcess) freeze() {
	e.t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		e.t.Fatal(err)
	}
	e.frozen = true
}

func (e *etcdProcess) thaw() {
	if err := e.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		e.t.Errorf("SIGCONT etcd: %v", err)
	}
	e.frozen = false
}
