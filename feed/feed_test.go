package feed

import (
	"fmt"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/statemgr"
)

func types(evs []Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	h := NewHub(10, 2)
	slow := h.Subscribe("")
	defer slow.Close()
	fast := h.Subscribe("")
	defer fast.Close()
	// The fast subscriber reads each event before the next is published;
	// the slow one reads nothing.
	for i := range 5 {
		published := make(chan struct{})
		go func() {
			defer close(published)
			h.Publish(Event{Type: TaskState, Instance: fmt.Sprint(i)})
		}()
		select {
		case <-published:
		case <-time.After(10 * time.Second):
			t.Fatal("Publish blocked on a subscriber that does not read")
		}
		if ev := <-fast.C; ev.Instance != fmt.Sprint(i) {
			t.Errorf("fast subscriber's event %d is %+v", i, ev)
		}
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 || !slow.Dropped() {
		t.Errorf("slow subscriber got %d events (dropped %t), want its buffer of 2 then dropped", n, slow.Dropped())
	}
	if fast.Dropped() {
		t.Error("the subscriber that kept up was dropped")
	}
	if h.Dropped() != 1 {
		t.Errorf("%d subscribers dropped, want 1", h.Dropped())
	}
	if h.Subscribers() != 1 {
		t.Errorf("%d subscribers, want 1 (the slow one is gone)", h.Subscribers())
	}
}

func TestReplayAfterLastID(t *testing.T) {
	h := NewHub(3, 0)
	first := h.Subscribe("")
	for i := range 5 {
		h.Publish(Event{Type: TaskState, Instance: fmt.Sprint(i)})
	}
	var ids []string
	for range 5 {
		ids = append(ids, (<-first.C).ID)
	}
	first.Close()

	// Events 3 and 4 follow ID 2, and are still held.
	s := h.Subscribe(ids[2])
	if len(s.Replay) != 2 || s.Replay[0].ID != ids[3] || s.Replay[1].ID != ids[4] {
		t.Errorf("replay after %s: %+v", ids[2], s.Replay)
	}
	s.Close()
	if s := h.Subscribe(ids[4]); len(s.Replay) != 0 {
		t.Errorf("replay after the last event: %+v", s.Replay)
	}
	// Event 1 is no longer held (history of 3: 2, 3, 4); nor is anything
	// of another scheduler process.
	for _, id := range []string{ids[0], "0badc0de-4", "nonsense", h.epoch + "-99"} {
		s := h.Subscribe(id)
		if len(s.Replay) != 1 || s.Replay[0].Type != Resync || s.Replay[0].ID != ids[4] {
			t.Errorf("replay after %q: %+v, want one resync with the latest ID %s", id, s.Replay, ids[4])
		}
		s.Close()
	}
	if s := h.Subscribe(ids[1]); len(s.Replay) != 3 {
		t.Errorf("replay after %s (the event before the oldest held): %d events, want 3", ids[1], len(s.Replay))
	}
}

func TestChangesToEvents(t *testing.T) {
	h := NewHub(0, 0)
	s := h.Subscribe("")
	defer s.Close()
	inst := &stateful.Instance{Name: "db", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1, Status: stateful.StatusCreating, Generation: 1}
	t0 := stateful.NewTask(inst, 0, stateful.RoleMaster, time.Now())
	t1 := stateful.NewTask(inst, 1, stateful.RoleSlave, time.Now())

	running := *inst
	running.Status = stateful.StatusRunning
	failed := *inst
	failed.Status, failed.MasterOrdinal = stateful.StatusDegraded, 1
	t0run := *t0
	t0run.State, t0run.Attempt, t0run.Healthy = stateful.TaskRunning, 1, true
	t0lost := t0run
	t0lost.State, t0lost.Role = stateful.TaskFailed, stateful.RoleSlave
	t1master := *t1
	t1master.Role = stateful.RoleMaster
	scaled := failed
	scaled.Slaves, scaled.Generation = 2, 2

	for _, c := range []statemgr.Change{
		{NewInstance: inst},
		{NewTask: t0},
		{OldTask: t0, NewTask: &t0run},
		{OldInstance: inst, NewInstance: &running},
		{OldTask: &t0run, NewTask: &t0lost},
		{OldTask: t1, NewTask: &t1master},
		{OldInstance: &running, NewInstance: &failed},
		{OldInstance: &failed, NewInstance: &scaled},
		{OldTask: t1, NewTask: t1}, // e.g. a message changed: nothing to tell
		{OldInstance: &scaled},
		{OldTask: t0},
	} {
		h.Observe(c)
	}
	want := []string{
		InstanceCreated, TaskState, TaskState, InstanceStatus,
		TaskRole, TaskState, TaskPromoted, InstanceFailover, InstanceStatus, InstanceUpdated,
		InstanceDeleted, TaskDeleted,
	}
	var got []Event
	for range want {
		got = append(got, <-s.C)
	}
	if fmt.Sprint(types(got)) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", types(got), want)
	}
	if d := got[7].Details; d["from_ordinal"] != 0 || d["to_ordinal"] != 1 || d["to_task"] != "db-1" {
		t.Errorf("failover details %v", d)
	}
	if d := got[8].Details; d["from"] != stateful.StatusRunning || d["to"] != stateful.StatusDegraded {
		t.Errorf("status details %v", d)
	}
	if ev := got[5]; ev.Task != "db-0" || ev.Details["from"] != stateful.TaskRunning || ev.Details["to"] != stateful.TaskFailed {
		t.Errorf("task state event %+v", ev)
	}
	select {
	case ev := <-s.C:
		t.Errorf("unexpected event %+v", ev)
	default:
	}
}
