package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
)

var schedules = flag.Int("partition.schedules", 5, "fault schedules TestPartitionSchedules runs (the bench's default is 50)")

// TestMain lets this test binary be the bed's processes too: the Mesos
// master and agents, the framework, and its executor.
func TestMain(m *testing.M) {
	if executor.IsExecutorInvocation(os.Args) {
		framework.Main(newWorkload(""))
	}
	if len(os.Args) > 1 && os.Args[1] == roleArg {
		runRole(os.Args[2:])
	}
	os.Exit(m.Run())
}

// TestPartitionSchedules runs seeded fault schedules (5 by default;
// -partition.schedules=50 for the long run) and asserts what the README's
// guarantees table promises: no acknowledged write lost, no two masters
// accepting writes at once, and a writable master again within the
// detection time plus the fence's wait plus a margin for this shared
// machine.
func TestPartitionSchedules(t *testing.T) {
	if m := checkNeeds(); m != "" {
		t.Skipf("needs %s", m)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.schedules = *schedules
	o.seed = 1
	o.self = self
	// Each process's log goes to a file of the work dir, kept for a
	// failure.
	work, err := os.MkdirTemp("", "partition-test-")
	if err != nil {
		t.Fatal(err)
	}
	o.work = work
	o.logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.schedules)*4*time.Minute+5*time.Minute)
	defer cancel()
	ocs, err := run(ctx, o)
	var out bytes.Buffer
	summarize(&out, o, ocs)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("%v (logs kept in %s)", err, work)
	}
	bound := o.detection() + time.Duration(o.maxLag+2)*time.Second + 10*time.Second
	for i, oc := range ocs {
		if len(oc.report.Lost) > 0 {
			t.Errorf("schedule %d (%s): acknowledged writes lost: %v", i+1, oc.kind, oc.report.Lost)
		}
		for _, w := range oc.report.SplitBrain {
			t.Errorf("schedule %d (%s): two masters accepted writes: %v and %v", i+1, oc.kind, w[0], w[1])
		}
		if oc.report.Acked == 0 {
			t.Errorf("schedule %d (%s): no write acknowledged at all", i+1, oc.kind)
		}
		if oc.writable > bound {
			t.Errorf("schedule %d (%s): no writable master for %v (bound %v)", i+1, oc.kind, oc.writable, bound)
		}
	}
	if last := lastLine(out.String()); !strings.HasPrefix(last, "partition: ") {
		t.Errorf("last line %q", last)
	}
	if t.Failed() {
		t.Logf("logs kept in %s", work)
	} else {
		os.RemoveAll(work)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
