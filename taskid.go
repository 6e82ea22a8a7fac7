package stateful

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on task identities. They keep task IDs short and parsing unambiguous.
const (
	// MaxOrdinal is the largest ordinal a task can have.
	MaxOrdinal = 9999
	// MaxAttempt is the largest attempt number a task ID can carry.
	MaxAttempt = 1_000_000_000
)

// TaskID is a parsed Mesos task ID <instance>-<ordinal>.<attempt>.
type TaskID struct {
	Instance string
	Ordinal  int
	Attempt  int
}

// String formats id as <instance>-<ordinal>.<attempt>.
func (id TaskID) String() string { return FormatTaskID(id.Instance, id.Ordinal, id.Attempt) }

// TaskName returns the stable task name <instance>-<ordinal>.
func (id TaskID) TaskName() string { return TaskName(id.Instance, id.Ordinal) }

// TaskName returns the stable name <instance>-<ordinal> of a task.
func TaskName(instance string, ordinal int) string {
	return instance + "-" + strconv.Itoa(ordinal)
}

// FormatTaskID returns the Mesos task ID <instance>-<ordinal>.<attempt>.
// It does not validate; ParseTaskID accepts exactly what FormatTaskID returns
// for a valid instance name, ordinal in [0, MaxOrdinal] and attempt in
// [1, MaxAttempt].
func FormatTaskID(instance string, ordinal, attempt int) string {
	return TaskName(instance, ordinal) + "." + strconv.Itoa(attempt)
}

// ParseTaskID parses a Mesos task ID made by FormatTaskID. Only the canonical
// form is accepted (no signs, no leading zeros, a valid instance name), so
// ParseTaskID(s).String() == s for every s it accepts.
func ParseTaskID(s string) (TaskID, error) {
	name, attemptStr, ok := strings.Cut(s, ".")
	if !ok {
		return TaskID{}, fmt.Errorf("task id %q: missing .<attempt>", s)
	}
	instance, ordinal, err := ParseTaskName(name)
	if err != nil {
		return TaskID{}, fmt.Errorf("task id %q: %w", s, err)
	}
	attempt, err := parseCanonical(attemptStr, 1, MaxAttempt)
	if err != nil {
		return TaskID{}, fmt.Errorf("task id %q: attempt: %w", s, err)
	}
	return TaskID{Instance: instance, Ordinal: ordinal, Attempt: attempt}, nil
}

// ParseTaskName parses a stable task name <instance>-<ordinal>. The instance
// name may itself contain '-'; the ordinal is what follows the last one.
func ParseTaskName(s string) (instance string, ordinal int, err error) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return "", 0, fmt.Errorf("task name %q: missing -<ordinal>", s)
	}
	instance = s[:i]
	if err := ValidateName(instance); err != nil {
		return "", 0, fmt.Errorf("task name %q: instance: %w", s, err)
	}
	ordinal, err = parseCanonical(s[i+1:], 0, MaxOrdinal)
	if err != nil {
		return "", 0, fmt.Errorf("task name %q: ordinal: %w", s, err)
	}
	return instance, ordinal, nil
}

// parseCanonical parses a decimal number in [lo, hi] written without sign or
// leading zeros.
func parseCanonical(s string, lo, hi int) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has leading zeros", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is out of range [%d, %d]", s, lo, hi)
	}
	return n, nil
}
