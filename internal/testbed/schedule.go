package testbed

import (
	"fmt"
	"math/rand"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults a schedule draws from.
const (
	// PartitionBoth isolates the target node from every other, both ways.
	PartitionBoth Kind = "partition"
	// PartitionOneWay drops the target's packets to every other node;
	// what they send still arrives.
	PartitionOneWay Kind = "partition-one-way"
	// LinkDown takes the target's interface down.
	LinkDown Kind = "link-down"
	// Kill9 kills the target's process with SIGKILL (then it is started
	// again, as a supervisor would).
	Kill9 Kind = "kill-9"
	// Pause stops the target's process with SIGSTOP, then SIGCONT.
	Pause Kind = "pause"
)

// Fault is one fault of a schedule: Kind on Target, from After (since the
// schedule started) for Hold.
type Fault struct {
	Kind   Kind
	Target string
	After  time.Duration
	Hold   time.Duration
}

func (f Fault) String() string {
	return fmt.Sprintf("%s of %s at +%v for %v", f.Kind, f.Target, f.After.Round(time.Millisecond), f.Hold.Round(time.Millisecond))
}

// Plan draws a schedule of faults from seed: the same seed always gives
// the same schedule. Each fault picks a kind of kinds and a target of
// targets, starts at a random time within window after the previous one
// ended, and holds for between minHold and maxHold.
func Plan(seed int64, n int, kinds []Kind, targets []string, window, minHold, maxHold time.Duration) []Fault {
	rng := rand.New(rand.NewSource(seed))
	var out []Fault
	at := time.Duration(0)
	for i := 0; i < n; i++ {
		f := Fault{
			Kind:   kinds[rng.Intn(len(kinds))],
			Target: targets[rng.Intn(len(targets))],
			After:  at + time.Duration(rng.Int63n(int64(window)+1)),
			Hold:   minHold + time.Duration(rng.Int63n(int64(maxHold-minHold)+1)),
		}
		out = append(out, f)
		at = f.After + f.Hold
	}
	return out
}

// GoBuild builds the main package pkg (a path relative to the test's
// directory, or an import path) into the test's temporary directory.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
