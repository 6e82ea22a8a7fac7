package mesoslib

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func newAsyncUnit(t *testing.T) (*unit, *asyncRecorder) {
	t.Helper()
	var async *asyncRecorder
	u := newUnitWith(t, "fw-1", func(r *recorder) Handler {
		async = &asyncRecorder{recorder: r}
		return async
	})
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	return u, async
}

// callsFor returns the calls of type typ about taskID.
func (u *unit) callsFor(typ scheduler.Call_Type, taskID string) []*scheduler.Call {
	var out []*scheduler.Call
	for _, c := range u.caller.ofType(typ) {
		switch {
		case c.Acknowledge != nil && c.Acknowledge.TaskID.Value == taskID,
			c.Kill != nil && c.Kill.TaskID.Value == taskID:
			out = append(out, c)
		}
	}
	return out
}

// settleBarrier has a known task's update recorded and finished, and waits
// for its ACK. The settle goroutine acts on outcomes in the order they were
// reported, so everything reported before has been acted on by then.
func (u *unit) settleBarrier(t *testing.T, async *asyncRecorder) {
	t.Helper()
	id := fmt.Sprintf("barrier-%d", len(async.held()))
	u.book.add(id, "a9", mesos.TASK_STAGING)
	if err := u.handle(t, updateEvent(id, "a9", mesos.TASK_RUNNING, []byte("barrier-uuid-016"))); err != nil {
		t.Fatal(err)
	}
	held := async.held()
	async.finish(held[len(held)-1], nil)
	eventually(t, 2*time.Second, "the barrier's ACK", func() bool { return len(u.callsFor(scheduler.Call_ACKNOWLEDGE, id)) == 1 })
}

func TestAsyncUpdateAcknowledgedOnlyAfterDone(t *testing.T) {
	uuid := []byte("0123456789abcdef")
	unknown := fmt.Errorf("no record: %w", ErrUnknownTask)
	for _, tc := range []struct {
		name     string
		state    mesos.TaskState
		uuid     []byte
		outcome  error
		wantAck  bool
		wantKill bool
	}{
		{name: "recorded", state: mesos.TASK_RUNNING, uuid: uuid, wantAck: true},
		{name: "not recorded", state: mesos.TASK_RUNNING, uuid: uuid, outcome: errors.New("etcd unavailable")},
		{name: "recorded without uuid", state: mesos.TASK_RUNNING},
		{name: "unknown running", state: mesos.TASK_RUNNING, uuid: uuid, outcome: unknown, wantAck: true, wantKill: true},
		{name: "unknown reconciled running", state: mesos.TASK_RUNNING, outcome: unknown, wantKill: true},
		{name: "unknown finished", state: mesos.TASK_FINISHED, uuid: uuid, outcome: unknown, wantAck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, async := newAsyncUnit(t)
			u.book.add("t1", "a1", mesos.TASK_STAGING)
			if err := u.handle(t, updateEvent("t1", "a1", tc.state, tc.uuid)); err != nil {
				t.Fatalf("an update must never end the subscription: %v", err)
			}
			held := async.held()
			if len(held) != 1 || held[0].status.TaskID.Value != "t1" {
				t.Fatalf("handler holds %d updates, want t1's", len(held))
			}
			if n := len(u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")) + len(u.callsFor(scheduler.Call_KILL, "t1")); n != 0 {
				t.Fatalf("%d ACK/KILL calls before done was called", n)
			}
			async.finish(held[0], tc.outcome)
			u.settleBarrier(t, async)

			acks := u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")
			if got := len(acks) == 1; got != tc.wantAck || len(acks) > 1 {
				t.Fatalf("%d ACKs, want acknowledged = %v", len(acks), tc.wantAck)
			}
			if tc.wantAck {
				a := acks[0].Acknowledge
				if a.AgentID.Value != "a1" || !bytes.Equal(a.UUID, uuid) || acks[0].FrameworkID.GetValue() != "fw-1" {
					t.Fatalf("ACK = %+v, want agent a1, the update's uuid, framework fw-1", acks[0])
				}
				lines := strings.Join(u.rec.lines(), "\n")
				if strings.Index(lines, "done t1") > strings.Index(lines, "call ACKNOWLEDGE") {
					t.Fatalf("ACK sent before done was called:\n%s", lines)
				}
			}
			kills := u.callsFor(scheduler.Call_KILL, "t1")
			if got := len(kills) == 1; got != tc.wantKill || len(kills) > 1 {
				t.Fatalf("%d KILLs, want killed = %v", len(kills), tc.wantKill)
			}
		})
	}
}

func TestAsyncUpdateDoesNotHoldUpTheStream(t *testing.T) {
	u, async := newAsyncUnit(t)
	u.book.add("t1", "a1", mesos.TASK_STAGING)
	u.book.add("t2", "a2", mesos.TASK_STAGING)
	uuid1, uuid2 := []byte("uuid-of-update-1"), []byte("uuid-of-update-2")

	// While t1's update is being recorded, later events are handled.
	if err := u.handle(t, updateEvent("t1", "a1", mesos.TASK_RUNNING, uuid1)); err != nil {
		t.Fatal(err)
	}
	offers := &scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: []mesos.Offer{
		{ID: mesos.OfferID{Value: "o1"}, AgentID: mesos.AgentID{Value: "a1"}, FrameworkID: mesos.FrameworkID{Value: "fw-1"}, Hostname: "h1"},
	}}}
	for _, e := range []*scheduler.Event{offers, {Type: scheduler.Event_HEARTBEAT}, updateEvent("t2", "a2", mesos.TASK_RUNNING, uuid2)} {
		if err := u.handle(t, e); err != nil {
			t.Fatal(err)
		}
	}
	if !u.rec.has("offer o1") || len(async.held()) != 2 {
		t.Fatalf("events after a pending update were not handled: %v", u.rec.lines())
	}
	if n := len(u.caller.ofType(scheduler.Call_ACKNOWLEDGE)); n != 0 {
		t.Fatalf("%d ACKs while both updates are pending", n)
	}

	// Outcomes may come in any order; each ACK follows its own.
	held := async.held()
	async.finish(held[1], nil)
	eventually(t, 2*time.Second, "t2's ACK", func() bool { return len(u.callsFor(scheduler.Call_ACKNOWLEDGE, "t2")) == 1 })
	if n := len(u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")); n != 0 {
		t.Fatalf("t1 acknowledged while its update is pending")
	}
	async.finish(held[0], nil)
	eventually(t, 2*time.Second, "t1's ACK", func() bool { return len(u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")) == 1 })
	if a := u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")[0].Acknowledge; a.AgentID.Value != "a1" || !bytes.Equal(a.UUID, uuid1) {
		t.Fatalf("t1's ACK = %+v", a)
	}
}

func TestAsyncDoneCalledTwiceAcknowledgesOnce(t *testing.T) {
	u, async := newAsyncUnit(t)
	u.book.add("t1", "a1", mesos.TASK_STAGING)
	if err := u.handle(t, updateEvent("t1", "a1", mesos.TASK_RUNNING, []byte("0123456789abcdef"))); err != nil {
		t.Fatal(err)
	}
	h := async.held()[0]
	async.finish(h, nil)
	async.finish(h, nil)
	async.finish(h, errors.New("late failure"))
	u.settleBarrier(t, async)
	if n := len(u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")); n != 1 {
		t.Fatalf("%d ACKs, want 1: only the first outcome counts", n)
	}
}

func TestAsyncDoneAfterResubscriptionAndAfterRun(t *testing.T) {
	u, async := newAsyncUnit(t)
	u.book.add("t1", "a1", mesos.TASK_STAGING)
	u.book.add("t2", "a2", mesos.TASK_STAGING)
	if err := u.handle(t, updateEvent("t1", "a1", mesos.TASK_RUNNING, []byte("uuid-of-update-1"))); err != nil {
		t.Fatal(err)
	}

	// The subscription ends and a new one begins before t1 is persisted:
	// the ACK goes out under the new subscription, built afresh.
	u.c.subscriptionEnded(errors.New("stream closed"))
	if u.c.Connected() {
		t.Fatalf("still connected after the subscription ended")
	}
	if err := u.handle(t, subscribedEvent("fw-1", 15)); err != nil {
		t.Fatal(err)
	}
	async.finish(async.held()[0], nil)
	eventually(t, 2*time.Second, "t1's ACK on the new subscription", func() bool {
		return len(u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")) == 1
	})
	if a := u.callsFor(scheduler.Call_ACKNOWLEDGE, "t1")[0]; a.FrameworkID.GetValue() != "fw-1" || a.Acknowledge.AgentID.Value != "a1" {
		t.Fatalf("ACK = %+v", a)
	}

	// Once Run has stopped, an outcome sends nothing.
	if err := u.handle(t, updateEvent("t2", "a2", mesos.TASK_RUNNING, []byte("uuid-of-update-2"))); err != nil {
		t.Fatal(err)
	}
	u.stop(nil)
	<-u.settled
	before := len(u.caller.ofType(scheduler.Call_ACKNOWLEDGE))
	held := async.held()
	async.finish(held[len(held)-1], nil)
	if n := len(u.caller.ofType(scheduler.Call_ACKNOWLEDGE)); n != before {
		t.Fatalf("ACK sent after Run stopped")
	}
}
