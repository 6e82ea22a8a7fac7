package stateful

import (
	"strings"
	"testing"
)

func TestTaskIDRoundTrip(t *testing.T) {
	tests := []TaskID{
		{"cache1", 0, 1},
		{"a", 7, 12},
		{"my-redis-2", 10, 999},
		{strings.Repeat("z", 63), MaxOrdinal, MaxAttempt},
		{"0", 0, 1},
	}
	for _, id := range tests {
		s := id.String()
		got, err := ParseTaskID(s)
		if err != nil {
			t.Fatalf("ParseTaskID(%q): %v", s, err)
		}
		if got != id {
			t.Fatalf("ParseTaskID(%q) = %+v, want %+v", s, got, id)
		}
		if got.TaskName() != TaskName(id.Instance, id.Ordinal) {
			t.Fatalf("TaskName() = %q", got.TaskName())
		}
	}
	if got := FormatTaskID("cache1", 0, 1); got != "cache1-0.1" {
		t.Fatalf("FormatTaskID = %q, want cache1-0.1 (DESIGN §6)", got)
	}
}

func TestParseTaskIDErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "missing .<attempt>"},
		{"cache1-0", "missing .<attempt>"},
		{"cache1.1", "missing -<ordinal>"},
		{"cache1-.1", "ordinal: empty"},
		{"cache1-0.", "attempt: empty"},
		{"cache1-0.0", "out of range"},
		{"cache1-01.1", "leading zeros"},
		{"cache1-0.01", "leading zeros"},
		{"cache1-+1.1", "not a decimal"},
		{"cache1--1.1", "instance"},
		{"cache1-0.-1", "not a decimal"},
		{"cache1-0.1.2", "not a decimal"},
		{"cache1-10000.1", "out of range"},
		{"cache1-0.99999999999999999999", "out of range"},
		{"Cache1-0.1", "instance"},
		{"-0.1", "instance"},
		{"a::b-0.1", "instance"},
		{"cache1-0x1.1", "not a decimal"},
		{"cache1-٣.1", "not a decimal"},
	}
	for _, tc := range tests {
		_, err := ParseTaskID(tc.in)
		if err == nil {
			t.Errorf("ParseTaskID(%q) accepted it", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "task id") {
			t.Errorf("ParseTaskID(%q) error %q does not mention %q", tc.in, err, tc.msg)
		}
	}
}

func TestParseTaskName(t *testing.T) {
	inst, n, err := ParseTaskName("my-db-3")
	if err != nil || inst != "my-db" || n != 3 {
		t.Fatalf("ParseTaskName(my-db-3) = %q, %d, %v", inst, n, err)
	}
	for _, bad := range []string{"mydb", "my-db-", "-3", "my-db-3.1"} {
		if _, _, err := ParseTaskName(bad); err == nil {
			t.Errorf("ParseTaskName(%q) accepted it", bad)
		}
	}
}

func FuzzParseTaskID(f *testing.F) {
	for _, s := range []string{"cache1-0.1", "a-b-c-12.7", "x-0.1000000000", "-0.1", "a-01.1", "a-1.", "a.1-1", "ü-1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseTaskID(s)
		if err != nil {
			return
		}
		// Whatever parses is canonical: it formats back to the same bytes
		// and describes a task identity the rest of the toolkit accepts.
		if got := id.String(); got != s {
			t.Fatalf("ParseTaskID(%q).String() = %q", s, got)
		}
		if err := ValidateName(id.Instance); err != nil {
			t.Fatalf("ParseTaskID(%q) accepted instance %q: %v", s, id.Instance, err)
		}
		if id.Ordinal < 0 || id.Ordinal > MaxOrdinal || id.Attempt < 1 || id.Attempt > MaxAttempt {
			t.Fatalf("ParseTaskID(%q) = %+v out of range", s, id)
		}
		task := &Task{Instance: id.Instance, Ordinal: id.Ordinal, Name: id.TaskName(),
			Role: RoleSlave, State: TaskStaging, TaskID: s, Attempt: id.Attempt}
		if err := task.Validate(); err != nil {
			t.Fatalf("task with id %q invalid: %v", s, err)
		}
	})
}
