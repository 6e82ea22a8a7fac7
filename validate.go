package stateful

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strings"
)

// Limits enforced by validation. They bound what one request can ask for so
// that a typo ("slaves": 10000) is refused instead of flooding the cluster.
const (
	MaxNameLen     = 63
	MaxPeers       = 64 // masters of a C instance
	MaxSlaves      = 64
	MaxCPU         = 1024     // cores
	MaxMem         = 4 << 20  // MB (4 TB)
	MaxDisk        = 64 << 20 // MB (64 TB)
	MaxPorts       = 32
	MaxEnv         = 256
	MaxEnvValueLen = 32 << 10
	MaxImageLen    = 512
	MaxCommandLen  = 16 << 10
	MaxPathLen     = 4096
	MaxHealthS     = 86400 // seconds, for interval, grace and timeout
	// MaxConsecutiveFailures bounds HealthCheck.ConsecutiveFailures.
	MaxConsecutiveFailures = 1000
)

// ValidationError says which field of a request is wrong and why. Field is
// the JSON path of the field ("spec.health.tcp", "spec.ports[1]"), so the
// REST API can answer {"error": ..., "field": ...}.
type ValidationError struct {
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// AsValidationError returns the ValidationError in err's chain, if any.
func AsValidationError(err error) (*ValidationError, bool) {
	var ve *ValidationError
	ok := errors.As(err, &ve)
	return ve, ok
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// prefixed returns err with its field nested under prefix.
func prefixed(prefix string, err error) error {
	if ve, ok := AsValidationError(err); ok {
		f := prefix
		if ve.Field != "" {
			f += "." + ve.Field
		}
		return &ValidationError{Field: f, Msg: ve.Msg}
	}
	return err
}

// ValidateName checks an instance name: a DNS label of 1-63 characters of
// [a-z0-9-] that neither starts nor ends with '-'. The error is a
// *ValidationError with an empty Field; callers set it.
func ValidateName(name string) error {
	return validateLabel(name)
}

// validateLabel checks a DNS label; the error has an empty Field.
func validateLabel(s string) error {
	switch {
	case s == "":
		return &ValidationError{Msg: "must not be empty"}
	case len(s) > MaxNameLen:
		return &ValidationError{Msg: fmt.Sprintf("is %d characters long, at most %d allowed", len(s), MaxNameLen)}
	case s[0] == '-' || s[len(s)-1] == '-':
		return &ValidationError{Msg: fmt.Sprintf("%q must not start or end with '-'", s)}
	}
	// By rune, so that "cafè" is reported as having 'è', not the first
	// byte of its UTF-8 encoding; invalid UTF-8 shows as U+FFFD.
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return &ValidationError{Msg: fmt.Sprintf("%q has %q; only a-z, 0-9 and '-' are allowed", s, c)}
		}
	}
	return nil
}

// Validate checks a complete instance (a create request after
// Spec.WithDefaults, or a stored document) and returns a *ValidationError
// naming the first wrong field. Tasks are not checked; see Task.Validate.
func (inst *Instance) Validate() error {
	if err := ValidateName(inst.Name); err != nil {
		return prefixed("name", err)
	}
	if err := inst.validateCounts(); err != nil {
		return err
	}
	if inst.Status != "" && !inst.Status.Valid() {
		return invalid("status", "unknown status %q", inst.Status)
	}
	if inst.Generation < 0 {
		return invalid("generation", "must not be negative, got %d", inst.Generation)
	}
	// Ordinals are not dense after a failover and a scale-down (the master
	// may hold ordinal 2 of tasks {0, 2}), so only the range is checked.
	if inst.MasterOrdinal < 0 || inst.MasterOrdinal > MaxOrdinal {
		return invalid("master_ordinal", "must be between 0 and %d, got %d", MaxOrdinal, inst.MasterOrdinal)
	}
	if err := inst.Spec.Validate(); err != nil {
		return prefixed("spec", err)
	}
	return nil
}

func (inst *Instance) validateCounts() error {
	switch inst.Type {
	case TypeSingle:
		if inst.Masters != 1 {
			return invalid("masters", "type S has exactly 1 master, got %d", inst.Masters)
		}
		if inst.Slaves != 0 {
			return invalid("slaves", "type S has no slaves, got %d", inst.Slaves)
		}
	case TypeMasterSlave:
		if inst.Masters != 1 {
			return invalid("masters", "type MS has exactly 1 master, got %d", inst.Masters)
		}
		if inst.Slaves < 0 || inst.Slaves > MaxSlaves {
			return invalid("slaves", "must be between 0 and %d, got %d", MaxSlaves, inst.Slaves)
		}
	case TypeCluster:
		if inst.Masters < 1 || inst.Masters > MaxPeers {
			return invalid("masters", "type C has between 1 and %d peers, got %d", MaxPeers, inst.Masters)
		}
		if inst.Slaves != 0 {
			return invalid("slaves", "type C has no slaves, got %d", inst.Slaves)
		}
	case "":
		return invalid("type", "is required (S, MS or C)")
	default:
		return invalid("type", "unknown type %q (want S, MS or C)", inst.Type)
	}
	return nil
}

// Validate checks a complete spec (after WithDefaults) and returns a
// *ValidationError naming the first wrong field, relative to the spec
// ("cpu", "health.tcp").
func (s Spec) Validate() error {
	if err := checkAmount("cpu", s.CPU, MaxCPU, false); err != nil {
		return err
	}
	if err := checkAmount("mem", s.Mem, MaxMem, false); err != nil {
		return err
	}
	if err := checkAmount("disk", s.Disk, MaxDisk, true); err != nil {
		return err
	}
	if s.Image == "" && s.Command == "" {
		return invalid("image", "an image (Docker runtime) or a command (process runtime) is required")
	}
	if len(s.Image) > MaxImageLen {
		return invalid("image", "is %d characters long, at most %d allowed", len(s.Image), MaxImageLen)
	}
	for _, c := range s.Image {
		if c <= ' ' || c == 0x7f {
			return invalid("image", "%q has whitespace or control characters", s.Image)
		}
	}
	if err := checkText("command", s.Command, MaxCommandLen); err != nil {
		return err
	}
	switch s.Network {
	case NetworkHost, NetworkBridge:
	default:
		return invalid("network", "must be %q or %q, got %q", NetworkHost, NetworkBridge, s.Network)
	}
	if len(s.Ports) > MaxPorts {
		return invalid("ports", "%d ports, at most %d allowed", len(s.Ports), MaxPorts)
	}
	seen := make(map[string]bool, len(s.Ports))
	for i, p := range s.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		if err := validateLabel(p); err != nil {
			return prefixed(field, err)
		}
		if seen[p] {
			return invalid(field, "port name %q is given twice", p)
		}
		seen[p] = true
	}
	if err := validateEnv(s.Env); err != nil {
		return err
	}
	if s.Volume != "" {
		if err := validateVolume(s.Volume); err != nil {
			return err
		}
		if s.Disk == 0 {
			return invalid("disk", "must be positive when a volume is given")
		}
	}
	if s.Health != nil {
		if err := s.Health.validate(s.Ports); err != nil {
			return prefixed("health", err)
		}
	}
	return nil
}

func checkAmount(field string, v, limit float64, zeroOK bool) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return invalid(field, "must be a finite number")
	case v < 0 || (v == 0 && !zeroOK):
		return invalid(field, "must be positive, got %g", v)
	case v > limit:
		return invalid(field, "must be at most %g, got %g", limit, v)
	}
	return nil
}

func checkText(field, s string, limit int) error {
	if len(s) > limit {
		return invalid(field, "is %d bytes long, at most %d allowed", len(s), limit)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "contains a NUL byte")
	}
	return nil
}

func validateEnv(env map[string]string) error {
	if len(env) > MaxEnv {
		return invalid("env", "%d variables, at most %d allowed", len(env), MaxEnv)
	}
	for k, v := range env {
		field := "env." + k
		if !isEnvName(k) {
			return invalid("env", "%q is not a variable name ([A-Za-z_][A-Za-z0-9_]*, at most 255 characters)", k)
		}
		if err := checkText(field, v, MaxEnvValueLen); err != nil {
			return err
		}
	}
	return nil
}

func isEnvName(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i, c := range []byte(k) {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func validateVolume(v string) error {
	if err := checkText("volume", v, MaxPathLen); err != nil {
		return err
	}
	switch {
	case !path.IsAbs(v):
		return invalid("volume", "%q is not an absolute path", v)
	case path.Clean(v) != v:
		return invalid("volume", "%q is not a clean path (want %q)", v, path.Clean(v))
	case v == "/":
		return invalid("volume", "the root directory cannot be the volume")
	}
	return nil
}

func (h *HealthCheck) validate(ports []string) error {
	switch {
	case h.Command == "" && h.TCP == "":
		return invalid("", "a command or a tcp port name is required")
	case h.Command != "" && h.TCP != "":
		return invalid("", "give a command or a tcp port name, not both")
	}
	if err := checkText("command", h.Command, MaxCommandLen); err != nil {
		return err
	}
	if h.TCP != "" {
		found := false
		for _, p := range ports {
			found = found || p == h.TCP
		}
		if !found {
			return invalid("tcp", "%q is not one of the spec's ports %q", h.TCP, ports)
		}
	}
	if err := checkSeconds("interval_s", h.IntervalS, false); err != nil {
		return err
	}
	if err := checkSeconds("grace_s", h.GraceS, true); err != nil {
		return err
	}
	if err := checkSeconds("timeout_s", h.TimeoutS, false); err != nil {
		return err
	}
	if h.TimeoutS > h.IntervalS {
		return invalid("timeout_s", "%gs is longer than interval_s %gs", h.TimeoutS, h.IntervalS)
	}
	if n := h.ConsecutiveFailures; n != nil && (*n < 0 || *n > MaxConsecutiveFailures) {
		return invalid("consecutive_failures", "%d is outside 0-%d (0: never kill)", *n, MaxConsecutiveFailures)
	}
	return nil
}

func checkSeconds(field string, v float64, zeroOK bool) error {
	return checkAmount(field, v, MaxHealthS, zeroOK)
}

// Validate checks a task document: a valid instance name, an ordinal in
// range, the matching name, and known role and state.
func (t *Task) Validate() error {
	if err := ValidateName(t.Instance); err != nil {
		return prefixed("instance", err)
	}
	if t.Ordinal < 0 || t.Ordinal > MaxOrdinal {
		return invalid("ordinal", "must be between 0 and %d, got %d", MaxOrdinal, t.Ordinal)
	}
	if want := TaskName(t.Instance, t.Ordinal); t.Name != want {
		return invalid("name", "%q does not match instance and ordinal (want %q)", t.Name, want)
	}
	if !t.Role.Valid() {
		return invalid("role", "unknown role %q", t.Role)
	}
	if !t.State.Valid() {
		return invalid("state", "unknown state %q", t.State)
	}
	if t.Attempt < 0 || t.Attempt > MaxAttempt {
		return invalid("attempt", "must be between 0 and %d, got %d", MaxAttempt, t.Attempt)
	}
	if t.PreparedAttempt < 0 || t.PreparedAttempt > MaxAttempt {
		return invalid("prepared_attempt", "must be between 0 and %d, got %d", MaxAttempt, t.PreparedAttempt)
	}
	if t.NotifiedAttempt < 0 || t.NotifiedAttempt > MaxAttempt {
		return invalid("notified_attempt", "must be between 0 and %d, got %d", MaxAttempt, t.NotifiedAttempt)
	}
	if t.TaskID != "" {
		id, err := ParseTaskID(t.TaskID)
		if err != nil {
			return invalid("task_id", "%v", err)
		}
		if id.Instance != t.Instance || id.Ordinal != t.Ordinal || id.Attempt != t.Attempt {
			return invalid("task_id", "%q does not match instance, ordinal and attempt", t.TaskID)
		}
	}
	return nil
}
