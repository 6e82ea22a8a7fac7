package agent

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/framing"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// TestSubscribeWaitsForPIDCheckpoint: a checkpointing framework's executor
// gets nothing, not even SUBSCRIBED, before its pid is checkpointed. An
// agent SIGKILLed after giving it a task then always finds its pid, and
// does not take the live executor for dead when it comes back (the
// TestRestartKeepsTasks/kill-9 flake). The pid write is held up by making
// its temporary file a FIFO that the test reads only later; the executor's
// process is held before it starts by a fetch that the test releases once
// the FIFO is in place.
func TestSubscribeWaitsForPIDCheckpoint(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			fmt.Fprint(w, "blob")
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	h := newExecHarness(t, nil)
	fw := execFramework("fw-pid", true)
	cmd := execShell("echo up > up; exec sleep 600")
	cmd.URIs = []mesos.CommandInfo_URI{{Value: srv.URL + "/blob"}}
	ex := execCustomExecutor("sleeper", cmd)
	h.agent.RunTask(fw, &ex, h.task("t1", ""))

	// The run's checkpoint directory is made at launch, before the fetch.
	pattern := filepath.Join(h.workDir, "meta", "slaves", h.agent.ID().Value, "frameworks", "fw-pid", "executors", "sleeper", "runs", "*", "pids")
	var pids []string
	deadline := time.Now().Add(execWait)
	for len(pids) != 1 {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("no checkpointed run: %v", pids)
		}
		time.Sleep(10 * time.Millisecond)
		pids, _ = filepath.Glob(pattern)
	}
	fifo := filepath.Join(pids[0], "forked.pid.tmp")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		close(release)
		t.Fatal(err)
	}
	// Whatever happens, the agent's write must not stay blocked, or Close
	// would wait for it forever.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	close(release)
	execWaitFile(t, filepath.Join(h.sandbox(fw, "sleeper"), "up"), func(s string) bool { return s == "up\n" })
	sandbox, err := filepath.EvalSymlinks(h.sandbox(fw, "sleeper"))
	if err != nil {
		t.Fatal(err)
	}

	// The process runs and its pid is being written: it subscribes.
	type result struct {
		ev  executor.Event
		err error
	}
	subscribed := make(chan result, 1)
	go func() {
		var r result
		defer func() { subscribed <- r }()
		sub := execCall(fw, "sleeper", executor.Call_SUBSCRIBE)
		sub.Subscribe = &executor.Call_Subscribe{}
		b, err := sub.Marshal()
		if err != nil {
			r.err = err
			return
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+h.agent.Address()+"/api/v1/executor", bytes.NewReader(b))
		if err != nil {
			r.err = err
			return
		}
		req.Header.Set("Content-Type", mediaProtobuf)
		req.Header.Set("Accept", mediaProtobuf)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			r.err = err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.err = fmt.Errorf("SUBSCRIBE: %s", resp.Status)
			return
		}
		rr := recordio.NewReader(resp.Body)
		dec := codecs.ByMediaType[encoding.MediaType(mediaProtobuf)].NewDecoder(func() framing.Reader { return rr })
		r.err = dec.Decode(&r.ev)
	}()
	// Without the wait, SUBSCRIBED comes within milliseconds; this bound
	// can only let a broken agent pass on a very slow machine, never fail
	// a correct one.
	select {
	case r := <-subscribed:
		t.Fatalf("the executor got %v (err %v) before its pid was checkpointed", r.ev.Type, r.err)
	case <-time.After(time.Second):
	}

	// Meet the agent's write: the pid of the running executor.
	f, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	procs := execProcessesIn(sandbox)
	if fields := strings.Fields(string(b)); len(fields) != 2 || len(procs) != 1 || fields[0] != strconv.Itoa(procs[0]) {
		t.Errorf("checkpointed %q, executor processes %v", b, procs)
	}
	select {
	case r := <-subscribed:
		if r.err != nil || r.ev.Type != executor.Event_SUBSCRIBED {
			t.Errorf("after the pid checkpoint: %v (err %v), want SUBSCRIBED", r.ev.Type, r.err)
		}
	case <-time.After(execWait):
		t.Fatal("no SUBSCRIBED after the pid was checkpointed")
	}
}
