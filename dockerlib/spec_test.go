package dockerlib

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"
)

func TestContainerSpecValidation(t *testing.T) {
	valid := ContainerSpec{Image: "redis:7"}
	tests := []struct {
		name   string
		modify func(*ContainerSpec)
		want   string // substring of the error; "" means valid
	}{
		{"minimal", func(*ContainerSpec) {}, ""},
		{"full", func(s *ContainerSpec) {
			*s = ContainerSpec{
				Name: "cache1-0.1", Image: "redis:7", Cmd: []string{"--port", "6379"},
				Env: map[string]string{"A": "1"}, Labels: map[string]string{LabelInstance: "cache1"},
				CPUs: 0.5, MemoryMB: 256, Network: NetworkBridge,
				Ports:      []PortBinding{{ContainerPort: 6379, HostIP: "127.0.0.1", HostPort: 31001}},
				Mounts:     []Mount{{HostPath: "/var/lib/x", ContainerPath: "/data"}},
				WorkingDir: "/data", User: "999:999", StopSignal: "SIGINT", StopTimeout: 5 * time.Second,
			}
		}, ""},
		{"no image", func(s *ContainerSpec) { s.Image = " " }, "image is required"},
		{"bad name", func(s *ContainerSpec) { s.Name = "-x" }, `name "-x"`},
		{"env with =", func(s *ContainerSpec) { s.Env = map[string]string{"A=B": "c"} }, `env name "A=B"`},
		{"empty env name", func(s *ContainerSpec) { s.Env = map[string]string{"": "c"} }, `env name ""`},
		{"empty label", func(s *ContainerSpec) { s.Labels = map[string]string{"": "c"} }, "label name"},
		{"negative cpus", func(s *ContainerSpec) { s.CPUs = -1 }, "cpus -1"},
		{"NaN cpus", func(s *ContainerSpec) { s.CPUs = math.NaN() }, "cpus NaN"},
		{"tiny cpus", func(s *ContainerSpec) { s.CPUs = 0.001 }, "at least 0.01"},
		{"tiny memory", func(s *ContainerSpec) { s.MemoryMB = 5 }, "at least 6 MB"},
		{"negative memory", func(s *ContainerSpec) { s.MemoryMB = -1 }, "memory -1"},
		{"huge memory", func(s *ContainerSpec) { s.MemoryMB = math.MaxInt64 }, "too large"},
		{"unknown network", func(s *ContainerSpec) { s.Network = "overlay" }, `network "overlay"`},
		{"ports on host network", func(s *ContainerSpec) {
			s.Network = NetworkHost
			s.Ports = []PortBinding{{ContainerPort: 1}}
		}, "host-network"},
		{"port 0", func(s *ContainerSpec) { s.Ports = []PortBinding{{ContainerPort: 0}} }, "container port must be"},
		{"port twice", func(s *ContainerSpec) { s.Ports = []PortBinding{{ContainerPort: 1}, {ContainerPort: 1}} }, "published twice"},
		{"bad host IP", func(s *ContainerSpec) { s.Ports = []PortBinding{{ContainerPort: 1, HostIP: "localhost"}} }, `host IP "localhost"`},
		{"relative host path", func(s *ContainerSpec) { s.Mounts = []Mount{{HostPath: "data", ContainerPath: "/data"}} }, "host path must be absolute"},
		{"unclean host path", func(s *ContainerSpec) { s.Mounts = []Mount{{HostPath: "/a/../b", ContainerPath: "/data"}} }, "host path must be absolute, clean"},
		{"root container path", func(s *ContainerSpec) { s.Mounts = []Mount{{HostPath: "/a", ContainerPath: "/"}} }, "container path"},
		{"mount target twice", func(s *ContainerSpec) {
			s.Mounts = []Mount{{HostPath: "/a", ContainerPath: "/d"}, {HostPath: "/b", ContainerPath: "/d"}}
		}, "mounted twice"},
		{"relative working dir", func(s *ContainerSpec) { s.WorkingDir = "data" }, "working dir"},
		{"bad stop signal", func(s *ContainerSpec) { s.StopSignal = "TERM" }, "stop signal"},
		{"numeric stop signal", func(s *ContainerSpec) { s.StopSignal = "15" }, ""},
		{"negative stop timeout", func(s *ContainerSpec) { s.StopTimeout = -time.Second }, "stop timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			tt.modify(&s)
			err := s.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	s := ContainerSpec{CPUs: -1, Network: "x"}
	err := s.validate()
	for _, want := range []string{"image is required", "cpus -1", `network "x"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate = %v, want it to mention %q", err, want)
		}
	}
}

func TestRunRejectsAnInvalidSpecBeforeCallingTheEngine(t *testing.T) {
	// No engine at this address: an invalid spec must be refused first.
	c, err := New(context.Background(), Options{Host: "unix:///nonexistent/docker.sock", PingTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(context.Background(), ContainerSpec{}); err == nil || !strings.Contains(err.Error(), "invalid container spec") {
		t.Fatalf("Run = %v, want a validation error", err)
	}
	if _, err := New(context.Background(), Options{PingTimeout: -time.Second}); err == nil {
		t.Error("New with a negative ping timeout succeeded")
	}
}

func TestContainerSpecConfigs(t *testing.T) {
	s := ContainerSpec{
		Image: "redis:7", Entrypoint: []string{"redis-server"}, Cmd: []string{"--port", "6379"},
		Env:    map[string]string{"B": "2", "A": "1"},
		Labels: map[string]string{LabelInstance: "cache1"},
		CPUs:   1.5, MemoryMB: 256,
		Ports: []PortBinding{
			{ContainerPort: 6379, HostIP: "127.0.0.1", HostPort: 31001},
			{ContainerPort: 16379},
		},
		Mounts:     []Mount{{HostPath: "/srv/cache1-0", ContainerPath: "/data"}, {HostPath: "/etc/conf", ContainerPath: "/conf", ReadOnly: true}},
		WorkingDir: "/data", User: "999", StopSignal: "SIGINT", StopTimeout: 1500 * time.Millisecond,
	}
	cfg, host := s.configs()
	two := 2
	wantCfg := &container.Config{
		Image: "redis:7", Entrypoint: []string{"redis-server"}, Cmd: []string{"--port", "6379"},
		Env:          []string{"A=1", "B=2"},
		Labels:       map[string]string{LabelInstance: "cache1"},
		WorkingDir:   "/data",
		User:         "999",
		StopSignal:   "SIGINT",
		StopTimeout:  &two,
		ExposedPorts: nat.PortSet{"6379/tcp": {}, "16379/tcp": {}},
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("config:\n got %+v\nwant %+v", cfg, wantCfg)
	}
	if host.NetworkMode != "bridge" || host.NanoCPUs != 1_500_000_000 || host.Memory != 256<<20 || host.MemorySwap != 256<<20 {
		t.Errorf("host config: network %q nanocpus %d memory %d swap %d", host.NetworkMode, host.NanoCPUs, host.Memory, host.MemorySwap)
	}
	wantPorts := nat.PortMap{
		"6379/tcp":  {{HostIP: "127.0.0.1", HostPort: "31001"}},
		"16379/tcp": {{HostIP: "", HostPort: ""}},
	}
	if !reflect.DeepEqual(host.PortBindings, wantPorts) {
		t.Errorf("port bindings = %v, want %v", host.PortBindings, wantPorts)
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeBind, Source: "/srv/cache1-0", Target: "/data"},
		{Type: mount.TypeBind, Source: "/etc/conf", Target: "/conf", ReadOnly: true},
	}
	if !reflect.DeepEqual(host.Mounts, wantMounts) {
		t.Errorf("mounts = %+v", host.Mounts)
	}

	hostNet := ContainerSpec{Image: "x", Network: NetworkHost}
	cfg, host = hostNet.configs()
	if host.NetworkMode != "host" || host.NanoCPUs != 0 || host.Memory != 0 || cfg.StopTimeout != nil || cfg.Env != nil {
		t.Errorf("unlimited host-network spec: %+v %+v", cfg, host)
	}
}

func TestTaskLabelsMap(t *testing.T) {
	got := TaskLabels{Framework: "redis", FrameworkID: "f-0001", Instance: "cache1", Ordinal: 0, TaskID: "cache1-0.2", ExecutorID: "e1"}.Map()
	want := map[string]string{
		"io.stateful.framework": "redis", "io.stateful.framework-id": "f-0001", "io.stateful.instance": "cache1", "io.stateful.ordinal": "0",
		"io.stateful.task-id": "cache1-0.2", "io.stateful.executor-id": "e1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Map = %v, want %v", got, want)
	}
	if got := (TaskLabels{ExecutorID: "e1"}).Map(); !reflect.DeepEqual(got, map[string]string{LabelExecutorID: "e1"}) {
		t.Errorf("executor-only Map = %v", got)
	}
}

func TestStatsFrom(t *testing.T) {
	tests := []struct {
		name            string
		json            string
		wantCPU         float64
		wantSecs        float64
		wantMem, wantLm uint64
	}{
		{
			name: "cgroup v1, half a core on a 2-CPU host",
			// 0.5e9 ns of container CPU while the host's 2 CPUs spent 2e9 ns:
			// a quarter of the machine, half of one core.
			json: `{"read":"2026-01-01T00:00:01Z",
				"cpu_stats":{"cpu_usage":{"total_usage":1500000000},"system_cpu_usage":12000000000,"online_cpus":2},
				"precpu_stats":{"cpu_usage":{"total_usage":1000000000},"system_cpu_usage":10000000000,"online_cpus":2},
				"memory_stats":{"usage":10485760,"limit":67108864,"stats":{"total_inactive_file":2097152,"cache":4194304}}}`,
			wantCPU: 50, wantSecs: 1.5, wantMem: 8 << 20, wantLm: 64 << 20,
		},
		{
			name: "cgroup v2 with per-cpu fallback",
			json: `{"read":"2026-01-01T00:00:01Z",
				"cpu_stats":{"cpu_usage":{"total_usage":3000000000,"percpu_usage":[1,1,1,1]},"system_cpu_usage":8000000000},
				"precpu_stats":{"cpu_usage":{"total_usage":1000000000},"system_cpu_usage":4000000000},
				"memory_stats":{"usage":5242880,"limit":1073741824,"stats":{"inactive_file":1048576}}}`,
			wantCPU: 200, wantSecs: 3, wantMem: 4 << 20, wantLm: 1 << 30,
		},
		{
			name: "first sample: no previous reading",
			json: `{"read":"2026-01-01T00:00:01Z",
				"cpu_stats":{"cpu_usage":{"total_usage":3000000000},"system_cpu_usage":8000000000,"online_cpus":2},
				"precpu_stats":{"cpu_usage":{"total_usage":0},"system_cpu_usage":0},
				"memory_stats":{"usage":1000,"limit":2000,"stats":{"total_inactive_file":5000}}}`,
			wantCPU: 3e9 / 8e9 * 2 * 100, wantSecs: 3, wantMem: 1000, wantLm: 2000,
		},
		{
			name: "counter reset gives no CPU figure",
			json: `{"read":"2026-01-01T00:00:01Z",
				"cpu_stats":{"cpu_usage":{"total_usage":10},"system_cpu_usage":8000000000,"online_cpus":2},
				"precpu_stats":{"cpu_usage":{"total_usage":500},"system_cpu_usage":4000000000},
				"memory_stats":{"usage":1000,"limit":2000}}`,
			wantCPU: 0, wantSecs: 1e-8, wantMem: 1000, wantLm: 2000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw container.StatsResponse
			if err := json.Unmarshal([]byte(tt.json), &raw); err != nil {
				t.Fatal(err)
			}
			got := statsFrom(&raw)
			if math.Abs(got.CPUPercent-tt.wantCPU) > 1e-9 || math.Abs(got.CPUSeconds-tt.wantSecs) > 1e-12 || got.MemoryBytes != tt.wantMem || got.MemoryLimitBytes != tt.wantLm {
				t.Errorf("statsFrom = %+v, want cpu %v%% %vs mem %d limit %d", got, tt.wantCPU, tt.wantSecs, tt.wantMem, tt.wantLm)
			}
		})
	}
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{limit: 5}
	for _, s := range []string{"abc", "defg", "hi"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if string(b.buf) != "abcde" || b.dropped != 4 {
		t.Errorf("kept %q dropped %d, want \"abcde\" and 4", b.buf, b.dropped)
	}
}

func TestReadProgress(t *testing.T) {
	stream := `{"stream":"Step 1/3 : FROM scratch\n"}
{"stream":"\n"}
{"status":"Pulling fs layer"}
{"stream":"Step 2/3 : COPY rootfs/ /\n"}
{"errorDetail":{"message":"COPY failed: no source files"},"error":"COPY failed"}
{"stream":"never read\n"}`
	tail, err := readProgress(strings.NewReader(stream), 2)
	if err == nil || err.Error() != "COPY failed: no source files" {
		t.Fatalf("err = %v, want the engine's detailed error", err)
	}
	if !reflect.DeepEqual(tail, []string{"Pulling fs layer", "Step 2/3 : COPY rootfs/ /"}) {
		t.Errorf("tail = %q", tail)
	}
	if _, err := readProgress(strings.NewReader(`{"stream":"ok"}`+"\n"+`{"stream":`), 0); err == nil {
		t.Error("a truncated stream was accepted")
	}
	if _, err := readProgress(strings.NewReader(`{"stream":"ok"}`), 0); err != nil {
		t.Errorf("a clean stream: %v", err)
	}
}
