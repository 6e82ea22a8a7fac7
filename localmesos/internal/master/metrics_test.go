package master

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestAllocationPassesDoNotPileUp: while the master is busy (here: held
// on purpose), allocation ticks do not queue one pass each; otherwise
// every scheduler call would wait behind all of them.
func TestAllocationPassesDoNotPileUp(t *testing.T) {
	cfg := testConfig()
	cfg.AllocationInterval = time.Millisecond
	c := newTestCluster(t, cfg)
	release := make(chan struct{})
	c.m.post(func() { <-release })
	// Let the ticker fire many times while the actor is held.
	time.Sleep(200 * time.Millisecond)
	queued := c.m.mb.Len()
	close(release)
	if queued > 2 {
		t.Errorf("%d functions queued behind a busy master after 200 ticks, want at most 2", queued)
	}
}

// TestMasterMetricsShape: /metrics/snapshot is one flat object of
// numbers, with the metrics dashboards read.
func TestMasterMetricsShape(t *testing.T) {
	c := newTestCluster(t, testConfig())
	c.addAgent(0)
	res, err := http.Get(c.srv.URL + "/metrics/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a flat object of numbers: %v: %s", err, b)
	}
	for _, k := range []string{"master/elected", "master/uptime_secs", "master/tasks_running", "master/tasks_staging",
		"master/tasks_finished", "master/tasks_failed", "master/tasks_killed", "master/tasks_lost",
		"master/frameworks_active", "master/frameworks_connected", "master/slaves_active", "master/slaves_connected",
		"master/cpus_total", "master/cpus_used", "master/mem_total", "master/mem_used", "master/disk_total",
		"master/event_queue_dispatches", "system/cpus_total", "system/load_1min", "system/mem_total_bytes"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s in %s", k, b)
		}
	}
	if m["master/elected"] != 1 || m["master/slaves_active"] != 1 {
		t.Errorf("metrics %s", b)
	}
}
