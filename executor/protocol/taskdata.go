// Package protocol is the contract between the scheduler and the stateful
// executor: the task spec that travels in Mesos' TaskInfo.data, the status
// detail in TaskStatus.data, and the framework messages exchanged over
// Mesos MESSAGE calls. Everything is versioned JSON, decoded strictly, so a
// scheduler and an executor built from different releases fail clearly
// instead of guessing.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// TaskDataVersion is the only TaskData version this package reads and writes.
const TaskDataVersion = 1

// Runtimes a task can ask for.
const (
	// RuntimeAuto lets the executor choose: docker when an engine answers
	// and the task names an image, otherwise process.
	RuntimeAuto    = "auto"
	RuntimeDocker  = "docker"
	RuntimeProcess = "process"
)

// Networks a task can ask for.
const (
	NetworkHost   = "host"
	NetworkBridge = "bridge"
)

// Roles of a task within its instance.
const (
	RoleMaster = "master"
	RoleSlave  = "slave"
	RolePeer   = "peer"
)

// maxTaskData bounds what Decode accepts; Mesos carries TaskInfo.data in
// every LAUNCH, and a spec is a few KB at most.
const maxTaskData = 1 << 20

// TaskData is what one task runs and how it is watched. The scheduler
// encodes it into TaskInfo.data; the executor decodes it on LAUNCH.
type TaskData struct {
	Version   int    `json:"version"`
	Framework string `json:"framework,omitempty"`
	Instance  string `json:"instance,omitempty"`
	Ordinal   int    `json:"ordinal"`
	Role      string `json:"role,omitempty"`

	// Runtime is "docker", "process", or "auto"/empty (the executor picks).
	Runtime string `json:"runtime,omitempty"`
	// Image is the Docker image (docker runtime).
	Image string `json:"image,omitempty"`
	// Command is a shell command line, run with /bin/sh -c.
	Command string `json:"command,omitempty"`
	// Args is an argv run without a shell. Set Command or Args, not both;
	// with neither, the docker runtime runs the image's default command.
	Args []string          `json:"args,omitempty"`
	Env  map[string]string `json:"env,omitempty"`

	// Network is "host" (default) or "bridge" (docker only).
	Network string `json:"network,omitempty"`
	// Ports maps a port name to the host port taken from the offer.
	Ports map[string]uint32 `json:"ports,omitempty"`
	// Volume is the task's durable data directory.
	Volume *Volume `json:"volume,omitempty"`
	// Master is where the instance's master was when this task (a slave)
	// was launched, for the workload to seed a fresh volume from; nil for
	// a master or peer, or when the master was not placed.
	Master *Peer `json:"master,omitempty"`
	// Health is how the executor decides the task is healthy; nil means
	// the task is RUNNING as soon as it has started.
	Health *Health `json:"health,omitempty"`

	CPU    float64           `json:"cpu,omitempty"`
	MemMB  float64           `json:"mem_mb,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Peer is another task of the instance: its name, host and named ports.
type Peer struct {
	Name  string            `json:"name"`
	Host  string            `json:"host"`
	Ports map[string]uint32 `json:"ports,omitempty"`
}

// Volume is a stable host directory for one instance ordinal, chosen by the
// scheduler so that a relaunch on the same agent finds its data again.
type Volume struct {
	// HostPath is an absolute path on the agent.
	HostPath string `json:"host_path"`
	// ContainerPath is where the docker runtime mounts HostPath. The
	// process runtime uses HostPath directly.
	ContainerPath string `json:"container_path,omitempty"`
}

// Health describes a health check: a command run inside the task (exit 0
// = healthy) or a TCP connect to one of the task's named ports. Set exactly
// one of Command, Args and TCPPort.
type Health struct {
	// Command is a shell command line, run with /bin/sh -c.
	Command string `json:"command,omitempty"`
	// Args is an argv run without a shell, for images that have none.
	Args    []string `json:"args,omitempty"`
	TCPPort string   `json:"tcp_port,omitempty"`
	// Interval between checks once healthy; 0 means DefaultHealthInterval.
	Interval Duration `json:"interval,omitempty"`
	// Grace is how long after start the task may take to pass its first
	// check before it is killed; 0 means DefaultHealthGrace.
	Grace Duration `json:"grace,omitempty"`
	// Timeout bounds one check; 0 means DefaultHealthTimeout.
	Timeout Duration `json:"timeout,omitempty"`
	// ConsecutiveFailures is how many checks in a row a task that was
	// healthy may fail before the executor kills it and reports
	// TASK_FAILED, so that the scheduler replaces it. Nil means
	// DefaultHealthConsecutiveFailures; 0 means never kill (the failures
	// are only reported).
	ConsecutiveFailures *int `json:"consecutive_failures,omitempty"`
}

// Health check defaults.
const (
	DefaultHealthInterval = 10 * time.Second
	DefaultHealthGrace    = 60 * time.Second
	DefaultHealthTimeout  = 5 * time.Second
	// DefaultHealthConsecutiveFailures is Mesos' default for its own
	// health checks' consecutive_failures.
	DefaultHealthConsecutiveFailures = 3
)

// IntervalOrDefault returns Interval, or the default when unset.
func (h Health) IntervalOrDefault() time.Duration {
	return orDefault(h.Interval, DefaultHealthInterval)
}

// GraceOrDefault returns Grace, or the default when unset.
func (h Health) GraceOrDefault() time.Duration { return orDefault(h.Grace, DefaultHealthGrace) }

// TimeoutOrDefault returns Timeout, or the default when unset.
func (h Health) TimeoutOrDefault() time.Duration {
	return orDefault(h.Timeout, DefaultHealthTimeout)
}

// ConsecutiveFailuresOrDefault returns ConsecutiveFailures, or the
// default when unset; 0 means never kill.
func (h Health) ConsecutiveFailuresOrDefault() int {
	if h.ConsecutiveFailures == nil {
		return DefaultHealthConsecutiveFailures
	}
	return *h.ConsecutiveFailures
}

func orDefault(d Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("1.5s", "250ms"), which reads better than nanoseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"2s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// ErrUnsupportedVersion is wrapped by Decode when the data names a version
// this package does not know.
var ErrUnsupportedVersion = errors.New("unsupported task data version")

// EncodeTaskData validates d and encodes it for TaskInfo.data. A zero
// Version is filled in with TaskDataVersion.
func EncodeTaskData(d TaskData) ([]byte, error) {
	if d.Version == 0 {
		d.Version = TaskDataVersion
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// DecodeTaskData decodes and validates TaskInfo.data. Unknown fields, an
// unknown version, trailing data and invalid values are errors.
func DecodeTaskData(b []byte) (*TaskData, error) {
	if len(b) == 0 {
		return nil, errors.New("task data is empty: the task was not launched by a stateful scheduler")
	}
	if len(b) > maxTaskData {
		return nil, fmt.Errorf("task data is %d bytes, more than the %d allowed", len(b), maxTaskData)
	}
	// Read the version alone first, so that data from a newer scheduler is
	// reported as a version mismatch rather than as an unknown field.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("task data is not a JSON object: %w", err)
	}
	if v.Version == nil {
		return nil, errors.New("task data has no version")
	}
	if *v.Version != TaskDataVersion {
		return nil, fmt.Errorf("%w %d (this executor understands version %d)", ErrUnsupportedVersion, *v.Version, TaskDataVersion)
	}
	var d TaskData
	if err := decodeStrict(b, &d); err != nil {
		return nil, fmt.Errorf("task data: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	d.normalise()
	return &d, nil
}

// normalise drops empty collections, so that a decoded spec compares equal
// to the same spec written without them.
func (d *TaskData) normalise() {
	if len(d.Args) == 0 {
		d.Args = nil
	}
	if len(d.Env) == 0 {
		d.Env = nil
	}
	if len(d.Ports) == 0 {
		d.Ports = nil
	}
	if len(d.Labels) == 0 {
		d.Labels = nil
	}
	if d.Health != nil && len(d.Health.Args) == 0 {
		d.Health.Args = nil
	}
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields,
// keys that match a field only case-insensitively (encoding/json would
// accept "COMMAND" for "command"), and trailing data.
func decodeStrict(b []byte, v any) error {
	if err := exactKeys(b, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

var (
	portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62})$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// FieldError names the field an invalid value is in.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "task data: " + e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate explains the first value that cannot work.
func (d *TaskData) Validate() error {
	if d.Version != TaskDataVersion {
		return fmt.Errorf("%w %d (this executor understands version %d)", ErrUnsupportedVersion, d.Version, TaskDataVersion)
	}
	if d.Ordinal < 0 {
		return fieldErr("ordinal", "must not be negative, got %d", d.Ordinal)
	}
	switch d.Role {
	case "", RoleMaster, RoleSlave, RolePeer:
	default:
		return fieldErr("role", "must be %q, %q or %q, got %q", RoleMaster, RoleSlave, RolePeer, d.Role)
	}
	hasCmd := d.Command != "" || len(d.Args) > 0
	switch d.Runtime {
	case "", RuntimeAuto:
		if d.Image == "" && !hasCmd {
			return fieldErr("image", "an image or a command is required")
		}
	case RuntimeDocker:
		if d.Image == "" {
			return fieldErr("image", "required by the docker runtime")
		}
	case RuntimeProcess:
		if !hasCmd {
			return fieldErr("command", "a command or args are required by the process runtime")
		}
		if d.Network == NetworkBridge {
			return fieldErr("network", "bridge needs the docker runtime; a process shares the host network")
		}
	default:
		return fieldErr("runtime", "must be %q, %q or %q, got %q", RuntimeDocker, RuntimeProcess, RuntimeAuto, d.Runtime)
	}
	if d.Command != "" && len(d.Args) > 0 {
		return fieldErr("args", "set either command (a shell line) or args, not both")
	}
	if strings.ContainsRune(d.Command, 0) {
		return fieldErr("command", "contains a NUL byte")
	}
	for i, a := range d.Args {
		if strings.ContainsRune(a, 0) {
			return fieldErr(fmt.Sprintf("args[%d]", i), "contains a NUL byte")
		}
	}
	if len(d.Args) > 0 && d.Args[0] == "" {
		return fieldErr("args[0]", "the program must not be empty")
	}
	switch d.Network {
	case "", NetworkHost, NetworkBridge:
	default:
		return fieldErr("network", "must be %q or %q, got %q", NetworkHost, NetworkBridge, d.Network)
	}
	for name, port := range d.Ports {
		if !portNameRE.MatchString(name) {
			return fieldErr("ports", "name %q must be 1-63 characters of [a-z0-9_-] starting with a letter or digit", name)
		}
		if port == 0 || port > 65535 {
			return fieldErr("ports."+name, "port %d is not in 1-65535", port)
		}
	}
	for k, v := range d.Env {
		if !envNameRE.MatchString(k) {
			return fieldErr("env", "variable name %q is not a valid name", k)
		}
		// The value is never echoed: env values may hold secrets.
		if strings.ContainsRune(v, 0) {
			return fieldErr("env."+k, "value contains a NUL byte")
		}
	}
	if d.Volume != nil {
		if err := d.Volume.validate(d.Runtime); err != nil {
			return err
		}
	}
	if d.Health != nil {
		if err := d.Health.validate(d.Ports); err != nil {
			return err
		}
	}
	if d.CPU < 0 {
		return fieldErr("cpu", "must not be negative")
	}
	if d.MemMB < 0 {
		return fieldErr("mem_mb", "must not be negative")
	}
	for k, v := range d.Labels {
		if k == "" || strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return fieldErr("labels", "label %q: keys must be non-empty and free of NUL bytes", k)
		}
	}
	return nil
}

func (v *Volume) validate(runtime string) error {
	if !cleanAbs(v.HostPath) {
		return fieldErr("volume.host_path", "must be a clean absolute path, got %q", v.HostPath)
	}
	if v.HostPath == "/" {
		return fieldErr("volume.host_path", "must not be /")
	}
	if v.ContainerPath != "" && !cleanAbs(v.ContainerPath) {
		return fieldErr("volume.container_path", "must be a clean absolute path, got %q", v.ContainerPath)
	}
	if runtime == RuntimeDocker && v.ContainerPath == "" {
		return fieldErr("volume.container_path", "required by the docker runtime")
	}
	return nil
}

func cleanAbs(p string) bool {
	return p != "" && filepath.IsAbs(p) && filepath.Clean(p) == p && !strings.ContainsRune(p, 0)
}

func (h *Health) validate(ports map[string]uint32) error {
	set := 0
	for _, ok := range []bool{h.Command != "", len(h.Args) > 0, h.TCPPort != ""} {
		if ok {
			set++
		}
	}
	switch {
	case set == 0:
		return fieldErr("health", "set a command, args or a tcp_port")
	case set > 1:
		return fieldErr("health", "set only one of command, args and tcp_port")
	case strings.ContainsRune(h.Command, 0):
		return fieldErr("health.command", "contains a NUL byte")
	case len(h.Args) > 0 && h.Args[0] == "":
		return fieldErr("health.args[0]", "the program must not be empty")
	}
	for i, a := range h.Args {
		if strings.ContainsRune(a, 0) {
			return fieldErr(fmt.Sprintf("health.args[%d]", i), "contains a NUL byte")
		}
	}
	if h.TCPPort != "" {
		if _, ok := ports[h.TCPPort]; !ok {
			return fieldErr("health.tcp_port", "%q is not one of the task's ports", h.TCPPort)
		}
	}
	for name, d := range map[string]Duration{"interval": h.Interval, "grace": h.Grace, "timeout": h.Timeout} {
		if d < 0 {
			return fieldErr("health."+name, "must not be negative")
		}
	}
	if n := h.ConsecutiveFailures; n != nil && *n < 0 {
		return fieldErr("health.consecutive_failures", "must not be negative (0 means never kill), got %d", *n)
	}
	return nil
}

// exactKeys checks that every key of the JSON object b names a field of
// struct type t by its exact json tag, recursively. Values that are not
// objects are left to encoding/json to judge.
func exactKeys(b []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return nil // not an object: the real decode reports it
	}
	for key, raw := range fields {
		f, ok := fieldByTag(t, key)
		if !ok {
			return fmt.Errorf("unknown field %q", path+key)
		}
		if err := exactKeys(raw, f.Type, path+key+"."); err != nil {
			return err
		}
	}
	return nil
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == key && name != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
