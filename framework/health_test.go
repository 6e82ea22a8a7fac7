package framework_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
)

// TestWorkloadHealthGatesRunning runs the workload's CheckHealth in the
// executor: a task whose check fails until a marker file exists stays
// TASK_STARTING, and its instance CREATING, until the file appears.
func TestWorkloadHealthGatesRunning(t *testing.T) {
	gate := t.TempDir()
	t.Setenv(testworkload.HealthGateEnv, gate) // before the agents start executors
	cluster := startCluster(t, 1)
	s := runScheduler(t, testConfig(t, cluster.MasterURL(), t.TempDir()), testworkload.New())
	call(t, http.MethodPost, s.api+"/v1/instances", createBody("gated", stateful.TypeSingle, 1, 0), http.StatusAccepted)

	marker := filepath.Join(gate, "gated")
	// The executor's TASK_STARTING reaches the scheduler on its own time
	// (through the agent and the master): wait for it as well as for the
	// failed checks.
	eventually(t, "the executor runs CheckHealth, it fails 3 times, and the task is TASK_STARTING", func() (bool, string) {
		b, err := os.ReadFile(marker + ".failed")
		n := bytes.Count(b, []byte("\n"))
		inst, code := get(t, s.api, "gated")
		if inst == nil || len(inst.Tasks) != 1 {
			return false, fmt.Sprintf("%d failed checks (%v); GET status %d", n, err, code)
		}
		if inst.Tasks[0].State == stateful.TaskRunning {
			t.Fatalf("the task is RUNNING while its health check fails: %s", describe(inst))
		}
		return n >= 3 && inst.Tasks[0].State == stateful.TaskStarting, fmt.Sprintf("%d failed checks (%v); %s", n, err, describe(inst))
	})
	inst, code := get(t, s.api, "gated")
	if inst == nil {
		t.Fatalf("GET gated: status %d", code)
	}
	if inst.Status != stateful.StatusCreating || len(inst.Tasks) != 1 || inst.Tasks[0].State != stateful.TaskStarting {
		t.Fatalf("while its health check fails the instance should be CREATING with its task TASK_STARTING: %s", describe(inst))
	}

	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, s.api, "gated")
}

// TestHealthSaysHowTasksRun: with --runtime auto, /v1/health says what it
// came to on this host, Docker exactly when an engine answers here.
func TestHealthSaysHowTasksRun(t *testing.T) {
	cfg := testConfig(t, "local", t.TempDir())
	cfg.LocalAgents = 1
	cfg.Runtime = "auto"
	s := runScheduler(t, cfg, testworkload.New())
	var health struct {
		Status  string `json:"status"`
		Runtime struct {
			Configured, Chosen, Reason string
		} `json:"runtime"`
	}
	if err := json.Unmarshal(call(t, http.MethodGet, s.api+"/v1/health", nil, http.StatusOK), &health); err != nil {
		t.Fatal(err)
	}
	want := "process"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := dockerlib.New(ctx, dockerlib.Options{}); err == nil {
		if c.Available(ctx) == nil {
			want = "docker"
		}
		c.Close()
	}
	rt := health.Runtime
	if rt.Configured != "auto" || rt.Chosen != want || rt.Reason == "" {
		t.Errorf("health says runtime %+v, want auto → %s with a reason", rt, want)
	}
}
