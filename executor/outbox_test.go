package executor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

func update(task string, state mesos.TaskState) executor.Call_Update {
	return executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, State: state.Enum(), UUID: newUUID()}}
}

// flakyAgent fails POSTs while down and records the ones it accepts.
type flakyAgent struct {
	mu       sync.Mutex
	down     bool
	accepted []string
}

func (f *flakyAgent) post(_ context.Context, u executor.Call_Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	f.accepted = append(f.accepted, u.Status.TaskID.Value+":"+u.Status.GetState().String())
	return nil
}

func (f *flakyAgent) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakyAgent) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accepted...)
}

func TestOutboxKeepsOrderAcrossFailedPosts(t *testing.T) {
	o := newOutbox(20 * time.Millisecond)
	agent := &flakyAgent{down: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.run(ctx, agent.post)
	}()
	defer func() {
		cancel()
		<-done
	}()
	o.subscribed(nil)

	ups := []executor.Call_Update{update("a", mesos.TASK_STARTING), update("a", mesos.TASK_RUNNING), update("b", mesos.TASK_STARTING)}
	for _, u := range ups {
		o.add(u)
	}
	// While the agent refuses, nothing is lost and nothing overtakes.
	pending, _ := o.unacknowledged()
	if len(pending) != 3 {
		t.Fatalf("%d pending updates, want 3", len(pending))
	}
	agent.setDown(false)
	want := "a:TASK_STARTING,a:TASK_RUNNING,b:TASK_STARTING"
	eventually(t, 5*time.Second, "the updates are delivered in order", func() bool {
		got := agent.got()
		return len(got) == 3 && got[0]+","+got[1]+","+got[2] == want
	})
	// Delivered is not acknowledged: they stay until ACKNOWLEDGED.
	if n := o.len(); n != 3 {
		t.Errorf("%d updates held, want 3 until acknowledged", n)
	}
	for _, u := range ups {
		if !o.ack(u.Status.UUID) {
			t.Errorf("ack of %s not recognised", u.Status.GetState())
		}
	}
	if o.ack(ups[0].Status.UUID) {
		t.Error("a second ack of the same update was recognised")
	}
	ctxWait, cancelWait := context.WithTimeout(context.Background(), time.Second)
	defer cancelWait()
	if !o.waitEmpty(ctxWait) {
		t.Error("waitEmpty did not see the outbox drained")
	}
}

func TestOutboxHoldsPostsUntilSubscribed(t *testing.T) {
	o := newOutbox(20 * time.Millisecond)
	agent := &flakyAgent{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.run(ctx, agent.post)
	}()
	defer func() {
		cancel()
		<-done
	}()
	first, second := update("a", mesos.TASK_STARTING), update("a", mesos.TASK_RUNNING)
	o.add(first)
	// A SUBSCRIBE carried the first one; the second came after it.
	_, ids := o.unacknowledged()
	o.add(second)
	o.subscribed(ids)
	eventually(t, 5*time.Second, "the update made after the SUBSCRIBE is posted", func() bool {
		got := agent.got()
		return len(got) == 1 && got[0] == "a:TASK_RUNNING"
	})
	o.disconnected()
	third := update("a", mesos.TASK_FINISHED)
	o.add(third)
	ctxWait, cancelWait := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelWait()
	o.waitEmpty(ctxWait) // just a bounded pause: nothing may be posted while disconnected
	if got := agent.got(); len(got) != 1 {
		t.Errorf("posted while disconnected: %v", got)
	}
}
