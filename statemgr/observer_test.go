package statemgr_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// changeLog records an observer's changes as "<key> <old>→<new>" lines.
type changeLog struct {
	mu   sync.Mutex
	seen []string
	revs []int64
}

func (l *changeLog) observe(c statemgr.Change) {
	var line string
	switch {
	case c.OldInstance != nil || c.NewInstance != nil:
		line = fmt.Sprintf("instance %s→%s", instDesc(c.OldInstance), instDesc(c.NewInstance))
	default:
		line = fmt.Sprintf("task %s→%s", taskDesc(c.OldTask), taskDesc(c.NewTask))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, line)
	l.revs = append(l.revs, c.Rev)
}

func (l *changeLog) lines() ([]string, []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen), slices.Clone(l.revs)
}

func instDesc(inst *stateful.Instance) string {
	if inst == nil {
		return "none"
	}
	return fmt.Sprintf("%s/%d", inst.Name, inst.Slaves)
}

func taskDesc(t *stateful.Task) string {
	if t == nil {
		return "none"
	}
	return fmt.Sprintf("%s/%s", t.Name, t.State)
}

// TestObserverSeesEveryChangeOnce: the writer's observer sees its own
// writes once each (not again when the watch brings them back), a
// follower's observer sees the same changes from the watch, both in
// revision order.
func TestObserverSeesEveryChangeOnce(t *testing.T) {
	e := statemgrtest.StartEtcd(t)
	var lead, follow changeLog
	leader := statemgrtest.NewLeader(t, e, statemgr.WithObserver(lead.observe))
	statemgrtest.NewFollower(t, e, statemgr.WithObserver(follow.observe))
	ctx := ctxT(t)

	create(t, leader, "db", 1)
	if _, err := leader.UpdateTask(ctx, "db", 1, func(task *stateful.Task) error { task.State = stateful.TaskRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.UpdateInstance(ctx, "db", func(inst *stateful.Instance) error { inst.Slaves = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := leader.SetFrameworkID(ctx, "fw-1"); err != nil {
		t.Fatal(err)
	}
	if err := leader.DeleteInstance(ctx, "db", nil); err != nil {
		t.Fatal(err)
	}
	// A last write marks the end: the watch delivers in revision order, so
	// an echo of an earlier write would come before it.
	create(t, leader, "end", 0)
	want := []string{
		"instance none→db/1", "task none→db-0/QUEUED", "task none→db-1/QUEUED",
		"task db-1/QUEUED→db-1/TASK_RUNNING",
		"instance db/1→db/2",
		"instance db/2→none", "task db-0/QUEUED→none", "task db-1/TASK_RUNNING→none",
		"instance none→end/0", "task none→end-0/QUEUED",
	}
	for _, l := range []*changeLog{&lead, &follow} {
		eventually(t, "the end marker observed", func() bool {
			got, _ := l.lines()
			return slices.Contains(got, "task none→end-0/QUEUED")
		})
		got, revs := l.lines()
		if !slices.Equal(sortedWithinRevs(got, revs), sortedWithinRevs(want, revs)) {
			t.Errorf("observed:\n%q\nwant:\n%q", got, want)
		}
		if !slices.IsSorted(revs) {
			t.Errorf("revisions out of order: %v", revs)
		}
	}
}

// sortedWithinRevs sorts lines that share a revision (one transaction's
// keys come in key order from the watch, in write order from the writer).
func sortedWithinRevs(lines []string, revs []int64) []string {
	if len(lines) != len(revs) {
		return lines
	}
	out := slices.Clone(lines)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && revs[j] == revs[i] {
			j++
		}
		slices.Sort(out[i:j])
		i = j
	}
	return out
}
