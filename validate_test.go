package stateful

import (
	"math"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{
		CPU: 0.5, Mem: 256, Disk: 512, Image: "redis:7", Command: "redis-server",
		Network: NetworkHost, Ports: []string{"redis", "metrics"},
		Env:    map[string]string{"REDIS_ARGS": "--appendonly yes"},
		Volume: "/data",
		Health: &HealthCheck{TCP: "redis", IntervalS: 5, GraceS: 10, TimeoutS: 2},
	}
}

func validInstance() *Instance {
	return &Instance{Name: "cache1", Type: TypeMasterSlave, Masters: 1, Slaves: 2, Spec: validSpec()}
}

func TestInstanceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Instance)
		field  string // "" means valid
		msg    string // substring of the message
	}{
		{"valid MS", func(*Instance) {}, "", ""},
		{"valid MS no slaves", func(i *Instance) { i.Slaves = 0 }, "", ""},
		{"valid S", func(i *Instance) { i.Type, i.Slaves = TypeSingle, 0 }, "", ""},
		{"valid C", func(i *Instance) { i.Type, i.Masters, i.Slaves = TypeCluster, 3, 0 }, "", ""},
		{"valid name with dashes and digits", func(i *Instance) { i.Name = "a-1-b" }, "", ""},
		{"valid 63 char name", func(i *Instance) { i.Name = strings.Repeat("a", 63) }, "", ""},
		{"valid status", func(i *Instance) { i.Status = StatusDegraded }, "", ""},
		{"valid master ordinal after failover", func(i *Instance) { i.MasterOrdinal = 2 }, "", ""},

		{"empty name", func(i *Instance) { i.Name = "" }, "name", "empty"},
		{"long name", func(i *Instance) { i.Name = strings.Repeat("a", 64) }, "name", "64 characters"},
		{"upper case name", func(i *Instance) { i.Name = "Cache" }, "name", "'C'"},
		{"dot in name", func(i *Instance) { i.Name = "a.b" }, "name", "'.'"},
		{"underscore in name", func(i *Instance) { i.Name = "a_b" }, "name", "'_'"},
		{"leading dash", func(i *Instance) { i.Name = "-a" }, "name", "start or end"},
		{"trailing dash", func(i *Instance) { i.Name = "a-" }, "name", "start or end"},
		{"non-ascii name", func(i *Instance) { i.Name = "caché" }, "name", "has 'é'; only a-z"},
		{"invalid utf-8 name", func(i *Instance) { i.Name = "ab\xffc" }, "name", "has '\ufffd'"},

		{"missing type", func(i *Instance) { i.Type = "" }, "type", "required"},
		{"unknown type", func(i *Instance) { i.Type = "M" }, "type", "unknown type"},
		{"S with 2 masters", func(i *Instance) { i.Type, i.Masters, i.Slaves = TypeSingle, 2, 0 }, "masters", "exactly 1"},
		{"S with slaves", func(i *Instance) { i.Type, i.Slaves = TypeSingle, 1 }, "slaves", "no slaves"},
		{"MS with 0 masters", func(i *Instance) { i.Masters = 0 }, "masters", "exactly 1"},
		{"MS with negative slaves", func(i *Instance) { i.Slaves = -1 }, "slaves", "between 0"},
		{"MS with too many slaves", func(i *Instance) { i.Slaves = MaxSlaves + 1 }, "slaves", "between 0"},
		{"C with 0 peers", func(i *Instance) { i.Type, i.Masters, i.Slaves = TypeCluster, 0, 0 }, "masters", "between 1"},
		{"C with too many peers", func(i *Instance) { i.Type, i.Masters, i.Slaves = TypeCluster, MaxPeers+1, 0 }, "masters", "between 1"},
		{"C with slaves", func(i *Instance) { i.Type, i.Masters = TypeCluster, 3 }, "slaves", "no slaves"},

		{"unknown status", func(i *Instance) { i.Status = "BROKEN" }, "status", "unknown"},
		{"negative generation", func(i *Instance) { i.Generation = -1 }, "generation", "negative"},
		{"valid master ordinal beyond the task count", func(i *Instance) { i.Slaves, i.MasterOrdinal = 1, 2 }, "", ""},
		{"master ordinal out of range", func(i *Instance) { i.MasterOrdinal = MaxOrdinal + 1 }, "master_ordinal", "between"},
		{"negative master ordinal", func(i *Instance) { i.MasterOrdinal = -1 }, "master_ordinal", "between"},
		{"spec error is nested", func(i *Instance) { i.Spec.CPU = 0 }, "spec.cpu", "positive"},
		{"nested health field", func(i *Instance) { i.Spec.Health.TCP = "nope" }, "spec.health.tcp", "not one of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst := validInstance()
			tc.mutate(inst)
			checkValidation(t, inst.Validate(), tc.field, tc.msg)
		})
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		field  string
		msg    string
	}{
		{"valid", func(*Spec) {}, "", ""},
		{"image only", func(s *Spec) { s.Command = "" }, "", ""},
		{"command only", func(s *Spec) { s.Image = "" }, "", ""},
		{"bridge", func(s *Spec) { s.Network = NetworkBridge }, "", ""},
		{"no ports and no health", func(s *Spec) { s.Ports, s.Health = nil, nil }, "", ""},
		{"zero disk without volume", func(s *Spec) { s.Disk, s.Volume = 0, "" }, "", ""},
		{"health command", func(s *Spec) { s.Health.TCP, s.Health.Command = "", "redis-cli ping" }, "", ""},
		{"zero grace", func(s *Spec) { s.Health.GraceS = 0 }, "", ""},
		{"limits are inclusive", func(s *Spec) { s.CPU, s.Mem, s.Disk = MaxCPU, MaxMem, MaxDisk }, "", ""},

		{"zero cpu", func(s *Spec) { s.CPU = 0 }, "cpu", "positive"},
		{"negative cpu", func(s *Spec) { s.CPU = -1 }, "cpu", "positive"},
		{"NaN cpu", func(s *Spec) { s.CPU = math.NaN() }, "cpu", "finite"},
		{"infinite cpu", func(s *Spec) { s.CPU = math.Inf(1) }, "cpu", "finite"},
		{"huge cpu", func(s *Spec) { s.CPU = MaxCPU + 1 }, "cpu", "at most"},
		{"zero mem", func(s *Spec) { s.Mem = 0 }, "mem", "positive"},
		{"huge mem", func(s *Spec) { s.Mem = MaxMem * 2 }, "mem", "at most"},
		{"negative disk", func(s *Spec) { s.Disk = -5 }, "disk", "positive"},
		{"huge disk", func(s *Spec) { s.Disk = MaxDisk + 1 }, "disk", "at most"},
		{"volume without disk", func(s *Spec) { s.Disk = 0 }, "disk", "volume"},

		{"neither image nor command", func(s *Spec) { s.Image, s.Command = "", "" }, "image", "required"},
		{"image with space", func(s *Spec) { s.Image = "redis 7" }, "image", "whitespace"},
		{"image with newline", func(s *Spec) { s.Image = "redis\n" }, "image", "whitespace"},
		{"long image", func(s *Spec) { s.Image = strings.Repeat("a", MaxImageLen+1) }, "image", "at most"},
		{"command with NUL", func(s *Spec) { s.Command = "a\x00b" }, "command", "NUL"},
		{"long command", func(s *Spec) { s.Command = strings.Repeat("a", MaxCommandLen+1) }, "command", "at most"},

		{"empty network", func(s *Spec) { s.Network = "" }, "network", "must be"},
		{"unknown network", func(s *Spec) { s.Network = "overlay" }, "network", "must be"},

		{"empty port name", func(s *Spec) { s.Ports = []string{"redis", ""} }, "ports[1]", "empty"},
		{"bad port name", func(s *Spec) { s.Ports = []string{"Redis"} }, "ports[0]", "'R'"},
		{"duplicate port", func(s *Spec) { s.Ports = []string{"redis", "metrics", "redis"} }, "ports[2]", "twice"},
		{"too many ports", func(s *Spec) {
			s.Ports = nil
			for i := range MaxPorts + 1 {
				s.Ports = append(s.Ports, "p"+strings.Repeat("x", i))
			}
		}, "ports", "at most"},

		{"bad env name", func(s *Spec) { s.Env = map[string]string{"1X": "v"} }, "env", "variable name"},
		{"env name with dash", func(s *Spec) { s.Env = map[string]string{"A-B": "v"} }, "env", "variable name"},
		{"empty env name", func(s *Spec) { s.Env = map[string]string{"": "v"} }, "env", "variable name"},
		{"env value with NUL", func(s *Spec) { s.Env = map[string]string{"A": "\x00"} }, "env.A", "NUL"},
		{"long env value", func(s *Spec) { s.Env = map[string]string{"A": strings.Repeat("v", MaxEnvValueLen+1)} }, "env.A", "at most"},
		{"too many env", func(s *Spec) {
			s.Env = map[string]string{}
			for i := range MaxEnv + 1 {
				s.Env["V"+strings.Repeat("_", i)] = "x"
			}
		}, "env", "at most"},

		{"relative volume", func(s *Spec) { s.Volume = "data" }, "volume", "absolute"},
		{"unclean volume", func(s *Spec) { s.Volume = "/data/../etc/" }, "volume", "clean"},
		{"root volume", func(s *Spec) { s.Volume = "/" }, "volume", "root"},
		{"volume with NUL", func(s *Spec) { s.Volume = "/da\x00ta" }, "volume", "NUL"},

		{"health with neither", func(s *Spec) { s.Health.TCP = "" }, "health", "required"},
		{"health with both", func(s *Spec) { s.Health.Command = "true" }, "health", "not both"},
		{"health tcp unknown port", func(s *Spec) { s.Health.TCP = "http" }, "health.tcp", "not one of"},
		{"health command NUL", func(s *Spec) { s.Health.TCP, s.Health.Command = "", "\x00" }, "health.command", "NUL"},
		{"zero interval", func(s *Spec) { s.Health.IntervalS = 0 }, "health.interval_s", "positive"},
		{"huge interval", func(s *Spec) { s.Health.IntervalS = MaxHealthS + 1 }, "health.interval_s", "at most"},
		{"negative grace", func(s *Spec) { s.Health.GraceS = -1 }, "health.grace_s", "positive"},
		{"NaN grace", func(s *Spec) { s.Health.GraceS = math.NaN() }, "health.grace_s", "finite"},
		{"zero timeout", func(s *Spec) { s.Health.TimeoutS = 0 }, "health.timeout_s", "positive"},
		{"timeout above interval", func(s *Spec) { s.Health.TimeoutS = 6 }, "health.timeout_s", "longer than"},
		{"negative consecutive failures", func(s *Spec) { n := -1; s.Health.ConsecutiveFailures = &n }, "health.consecutive_failures", "outside"},
		{"huge consecutive failures", func(s *Spec) { n := 1001; s.Health.ConsecutiveFailures = &n }, "health.consecutive_failures", "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(&s)
			checkValidation(t, s.Validate(), tc.field, tc.msg)
		})
	}
}

func TestTaskValidate(t *testing.T) {
	valid := func() *Task {
		return &Task{Instance: "cache1", Ordinal: 2, Name: "cache1-2", Role: RoleSlave,
			State: TaskRunning, TaskID: "cache1-2.3", Attempt: 3}
	}
	tests := []struct {
		name   string
		mutate func(*Task)
		field  string
		msg    string
	}{
		{"valid", func(*Task) {}, "", ""},
		{"queued never launched", func(t *Task) { t.State, t.TaskID, t.Attempt = TaskQueued, "", 0 }, "", ""},
		{"bad instance", func(t *Task) { t.Instance = "A" }, "instance", "only a-z"},
		{"negative ordinal", func(t *Task) { t.Ordinal = -1 }, "ordinal", "between"},
		{"huge ordinal", func(t *Task) { t.Ordinal = MaxOrdinal + 1 }, "ordinal", "between"},
		{"name mismatch", func(t *Task) { t.Name = "cache1-3" }, "name", "does not match"},
		{"unknown role", func(t *Task) { t.Role = "leader" }, "role", "unknown"},
		{"unknown state", func(t *Task) { t.State = "RUNNING" }, "state", "unknown"},
		{"negative attempt", func(t *Task) { t.Attempt = -1 }, "attempt", "between"},
		{"unparsable task id", func(t *Task) { t.TaskID = "cache1-2" }, "task_id", "missing"},
		{"task id of another attempt", func(t *Task) { t.TaskID = "cache1-2.4" }, "task_id", "does not match"},
		{"task id of another ordinal", func(t *Task) { t.TaskID = "cache1-1.3" }, "task_id", "does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := valid()
			tc.mutate(task)
			checkValidation(t, task.Validate(), tc.field, tc.msg)
		})
	}
}

func checkValidation(t *testing.T, err error, field, msg string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	ve, ok := AsValidationError(err)
	if !ok {
		t.Fatalf("want a ValidationError on %q, got %v", field, err)
	}
	if ve.Field != field {
		t.Errorf("field = %q, want %q (error %v)", ve.Field, field, err)
	}
	if !strings.Contains(ve.Msg, msg) {
		t.Errorf("message %q does not mention %q", ve.Msg, msg)
	}
	if !strings.HasPrefix(err.Error(), field+": ") {
		t.Errorf("Error() = %q, want it to start with the field", err.Error())
	}
}

func TestWithDefaults(t *testing.T) {
	defaults := Spec{
		CPU: 0.5, Mem: 256, Disk: 512, Image: "redis:7", Command: "redis-server",
		Ports: []string{"redis"}, Env: map[string]string{"A": "default", "B": "default"},
		Volume: "/data",
		Health: &HealthCheck{TCP: "redis", IntervalS: 3, GraceS: 7},
	}

	t.Run("empty request takes every default", func(t *testing.T) {
		got := Spec{}.WithDefaults(defaults)
		if got.CPU != 0.5 || got.Mem != 256 || got.Disk != 512 || got.Image != "redis:7" ||
			got.Command != "redis-server" || got.Volume != "/data" || got.Network != NetworkHost {
			t.Fatalf("defaults not applied: %+v", got)
		}
		if got.Health == nil || *got.Health != (HealthCheck{TCP: "redis", IntervalS: 3, GraceS: 7, TimeoutS: 3}) {
			t.Fatalf("health = %+v", got.Health)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("defaulted spec invalid: %v", err)
		}
		// The result must not share memory with defaults.
		got.Ports[0] = "x"
		got.Env["A"] = "x"
		got.Health.TCP = "x"
		if defaults.Ports[0] != "redis" || defaults.Env["A"] != "default" || defaults.Health.TCP != "redis" {
			t.Fatal("WithDefaults returned memory shared with defaults")
		}
	})

	t.Run("request wins and env merges", func(t *testing.T) {
		req := Spec{CPU: 2, Image: "redis:6", Network: NetworkBridge, Ports: []string{"a", "b"},
			Env: map[string]string{"B": "req", "C": "req"}}
		got := req.WithDefaults(defaults)
		if got.CPU != 2 || got.Mem != 256 || got.Image != "redis:6" || got.Command != "redis-server" ||
			got.Network != NetworkBridge || len(got.Ports) != 2 {
			t.Fatalf("request not kept: %+v", got)
		}
		want := map[string]string{"A": "default", "B": "req", "C": "req"}
		if len(got.Env) != len(want) {
			t.Fatalf("env = %v, want %v", got.Env, want)
		}
		for k, v := range want {
			if got.Env[k] != v {
				t.Fatalf("env = %v, want %v", got.Env, want)
			}
		}
		if len(req.Env) != 2 {
			t.Fatal("WithDefaults modified the request")
		}
	})

	t.Run("request health borrows timings", func(t *testing.T) {
		got := Spec{Health: &HealthCheck{Command: "redis-cli ping", GraceS: 1}}.WithDefaults(defaults)
		if *got.Health != (HealthCheck{Command: "redis-cli ping", IntervalS: 3, GraceS: 1, TimeoutS: 3}) {
			t.Fatalf("health = %+v", got.Health)
		}
	})

	t.Run("package defaults when the workload has none", func(t *testing.T) {
		got := Spec{Health: &HealthCheck{TCP: "p"}}.WithDefaults(Spec{})
		want := HealthCheck{TCP: "p", IntervalS: DefaultHealthIntervalS, GraceS: DefaultHealthGraceS, TimeoutS: DefaultHealthTimeoutS}
		if *got.Health != want || got.Network != DefaultNetwork {
			t.Fatalf("got %+v health %+v", got, got.Health)
		}
	})

	t.Run("empty port list in request is kept", func(t *testing.T) {
		got := Spec{Ports: []string{}}.WithDefaults(defaults)
		if len(got.Ports) != 0 {
			t.Fatalf("ports = %v, want none (the request asked for none)", got.Ports)
		}
	})
}

func TestHealthConsecutiveFailuresDefaultsAndClone(t *testing.T) {
	never, five := 0, 5
	defaults := Spec{Command: "x", Health: &HealthCheck{Command: "true", ConsecutiveFailures: &never}}
	got := Spec{Command: "y", Health: &HealthCheck{Command: "check"}}.WithDefaults(defaults)
	if got.Health.ConsecutiveFailures == nil || *got.Health.ConsecutiveFailures != 0 {
		t.Fatalf("consecutive_failures not taken from defaults: %+v", got.Health)
	}
	if got.Health.ConsecutiveFailures == defaults.Health.ConsecutiveFailures {
		t.Fatal("WithDefaults shares the defaults' consecutive_failures pointer")
	}
	own := Spec{Command: "y", Health: &HealthCheck{Command: "check", ConsecutiveFailures: &five}}.WithDefaults(defaults)
	if *own.Health.ConsecutiveFailures != 5 {
		t.Fatalf("the request's consecutive_failures was overridden: %d", *own.Health.ConsecutiveFailures)
	}
	c := own.Clone()
	*c.Health.ConsecutiveFailures = 9
	if *own.Health.ConsecutiveFailures != 5 {
		t.Fatal("Clone shares consecutive_failures")
	}
	got.CPU, got.Mem = 1, 64
	if err := got.Validate(); err != nil {
		t.Fatalf("0 (never kill) refused: %v", err)
	}
}
