package localmesos

// Reading the reference transcripts of a real Mesos 1.12 master and agent
// (testdata/transcripts, copied from shared/mesos-transcripts; its README
// explains the record format). Conformance tests replay their calls against
// localmesos and compare status codes, error texts, event types and order.

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// record is one line of a transcript.
type record struct {
	T        string              `json:"t"`
	Scenario string              `json:"scenario"`
	Dir      string              `json:"dir"` // req, resp, frame, end, note
	Conn     int                 `json:"conn"`
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	Status   int                 `json:"status"`
	Headers  map[string][]string `json:"headers"`
	Body     json.RawMessage     `json:"body"`
	Text     string              `json:"text"`
	B64      string              `json:"b64"`
	Decoded  json.RawMessage     `json:"decoded"`
}

// transcript is a whole file, in order.
type transcript []record

// loadTranscript reads testdata/transcripts/<name>.jsonl.
func loadTranscript(t testing.TB, name string) transcript {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "transcripts", name+".jsonl"))
	if err != nil {
		t.Fatalf("open transcript: %v", err)
	}
	defer f.Close()
	var out transcript
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("transcript %s line %d: %v", name, len(out)+1, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read transcript %s: %v", name, err)
	}
	return out
}

// scenario keeps the records whose scenario starts with prefix (the
// custom-executor files hold "<name>/scheduler" and "<name>/executor").
func (tr transcript) scenario(prefix string) transcript {
	var out transcript
	for _, r := range tr {
		if strings.HasPrefix(r.Scenario, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// conn keeps the records of one HTTP request (and its stream).
func (tr transcript) conn(n int) transcript {
	var out transcript
	for _, r := range tr {
		if r.Conn == n && r.Dir != "note" {
			out = append(out, r)
		}
	}
	return out
}

// dir keeps the records of one direction (req, resp, frame, end, note).
func (tr transcript) dir(d string) transcript {
	var out transcript
	for _, r := range tr {
		if r.Dir == d {
			out = append(out, r)
		}
	}
	return out
}

// eventType is the "type" of a frame or call body ("" if none).
func (r record) eventType() string {
	var v struct {
		Type string `json:"type"`
	}
	body := r.Body
	if len(body) == 0 {
		body = r.Decoded
	}
	_ = json.Unmarshal(body, &v)
	return v.Type
}

// updateStatus is the status of an UPDATE frame, in the JSON form.
func (r record) updateStatus() (state, reason, message, source string, hasUUID bool) {
	var v struct {
		Update struct {
			Status struct {
				State   string `json:"state"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
				Source  string `json:"source"`
				UUID    string `json:"uuid"`
			} `json:"status"`
		} `json:"update"`
	}
	body := r.Body
	if len(body) == 0 {
		body = r.Decoded
	}
	_ = json.Unmarshal(body, &v)
	s := v.Update.Status
	return s.State, s.Reason, s.Message, s.Source, s.UUID != ""
}

func TestTranscriptsLoad(t *testing.T) {
	for _, name := range []string{
		"scheduler-errors", "scheduler-failover", "scheduler-happy-path",
		"executor-happy-path", "agent-loss", "agent-restart-recovery",
		"command-task-msh", "custom-executor-message-kill",
		"custom-executor-teardown", "executor-death", "scheduler-json-unknown-enum",
	} {
		tr := loadTranscript(t, name)
		if len(tr.dir("req")) == 0 {
			t.Errorf("%s: no requests", name)
		}
	}
}

// transcriptConfig is a one-agent cluster with the agent resources the
// transcripts were recorded with (cpus:2;mem:2048;disk:4096;ports:[31000-31099])
// and a fast allocator; tests set the timers their scenario needs.
func transcriptConfig(t *testing.T) Config {
	cfg := NewConfig()
	cfg.Port = 0
	cfg.Agents = 1
	cfg.Resources = "cpus:2;mem:2048;disk:4096;ports:[31000-31099]"
	cfg.WorkDir = t.TempDir()
	cfg.AllocationInterval = 100 * time.Millisecond
	cfg.ExecutorRegistrationTimeout = 10 * time.Second
	return cfg
}

// startCluster starts a cluster; the test's cleanup closes it and checks
// that no process it started is left.
func startCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		execNoProcessesLeft(t, cfg.WorkDir)
	})
	return c
}
