package mesoslib

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// memStore is a FrameworkIDStore in memory.
type memStore struct {
	mu     sync.Mutex
	id     string
	sets   []string
	setErr error
}

func (s *memStore) FrameworkID(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, nil
}

func (s *memStore) SetFrameworkID(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.setErr != nil {
		return s.setErr
	}
	s.id = id
	s.sets = append(s.sets, id)
	return nil
}

func (s *memStore) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// taskBook is the consumer's task records: a TaskLister, and the Update
// side of the handler.
type taskBook struct {
	mu    sync.Mutex
	tasks map[string]taskRecord // by task ID
}

type taskRecord struct {
	agent string
	state mesos.TaskState
}

func newTaskBook() *taskBook { return &taskBook{tasks: map[string]taskRecord{}} }

func (b *taskBook) add(taskID, agentID string, state mesos.TaskState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tasks[taskID] = taskRecord{agent: agentID, state: state}
}

func (b *taskBook) state(taskID string) (mesos.TaskState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.tasks[taskID]
	return r.state, ok
}

func (b *taskBook) LiveTasks(context.Context) ([]TaskRef, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []TaskRef
	for id, r := range b.tasks {
		if !terminal(r.state) {
			out = append(out, TaskRef{TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: r.agent}})
		}
	}
	return out, nil
}

// record stores a status if the task is known.
func (b *taskBook) record(s mesos.TaskStatus) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.tasks[s.TaskID.Value]
	if !ok {
		return fmt.Errorf("task %s: %w", s.TaskID.Value, ErrUnknownTask)
	}
	r.state = s.GetState()
	if a := s.GetAgentID().GetValue(); a != "" {
		r.agent = a
	}
	b.tasks[s.TaskID.Value] = r
	return nil
}

func terminal(s mesos.TaskState) bool {
	switch s {
	case mesos.TASK_FINISHED, mesos.TASK_FAILED, mesos.TASK_KILLED, mesos.TASK_ERROR,
		mesos.TASK_LOST, mesos.TASK_DROPPED, mesos.TASK_GONE, mesos.TASK_GONE_BY_OPERATOR:
		return true
	}
	return false
}

// recorder is a Handler that records every event as a line of text and
// hands updates to a taskBook unless failUpdates says otherwise.
type recorder struct {
	book *taskBook

	mu          sync.Mutex
	log         []string
	offers      []mesos.Offer
	updates     []mesos.TaskStatus
	failures    []Failure
	subscribed  []Subscription
	failUpdates func(mesos.TaskStatus) error
	onSubscribe func(Subscription)
}

func newRecorder(book *taskBook) *recorder { return &recorder{book: book} }

func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, args...))
}

func (r *recorder) Subscribed(_ context.Context, s Subscription) {
	r.note("subscribed %s", s.FrameworkID.Value)
	r.mu.Lock()
	r.subscribed = append(r.subscribed, s)
	f := r.onSubscribe
	r.mu.Unlock()
	if f != nil {
		f(s)
	}
}

// failWith makes Update fail with what f returns (nil: record as usual).
func (r *recorder) failWith(f func(mesos.TaskStatus) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failUpdates = f
}

func (r *recorder) Disconnected(_ context.Context, err error) { r.note("disconnected: %v", err) }

func (r *recorder) Offers(_ context.Context, offers []mesos.Offer) {
	r.mu.Lock()
	r.offers = append(r.offers, offers...)
	r.mu.Unlock()
	for _, o := range offers {
		r.note("offer %s from %s", o.ID.Value, o.AgentID.Value)
	}
}

func (r *recorder) Rescind(_ context.Context, id mesos.OfferID) { r.note("rescind %s", id.Value) }

func (r *recorder) Update(_ context.Context, s mesos.TaskStatus) error {
	r.mu.Lock()
	r.updates = append(r.updates, s)
	fail := r.failUpdates
	r.mu.Unlock()
	r.note("update %s %s", s.TaskID.Value, s.GetState())
	if fail != nil {
		if err := fail(s); err != nil {
			return err
		}
	}
	return r.book.record(s)
}

func (r *recorder) Message(_ context.Context, a mesos.AgentID, e mesos.ExecutorID, data []byte) {
	r.note("message from %s/%s: %s", a.Value, e.Value, data)
}

func (r *recorder) Failure(_ context.Context, f Failure) {
	r.mu.Lock()
	r.failures = append(r.failures, f)
	r.mu.Unlock()
	r.note("failure agent %s executor %s", f.AgentID.GetValue(), f.ExecutorID.GetValue())
}

func (r *recorder) Error(_ context.Context, msg string) { r.note("error %s", msg) }

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func (r *recorder) has(prefix string) bool {
	for _, l := range r.lines() {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (r *recorder) count(prefix string) int {
	n := 0
	for _, l := range r.lines() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) updatesOf(taskID string) []mesos.TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []mesos.TaskStatus
	for _, u := range r.updates {
		if u.TaskID.Value == taskID {
			out = append(out, u)
		}
	}
	return out
}

// agentFailed reports a FAILURE for the whole agent.
func (r *recorder) agentFailed(agentID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.failures {
		if f.AgentID.GetValue() == agentID && f.ExecutorID == nil {
			return true
		}
	}
	return false
}

func (r *recorder) allOffers() []mesos.Offer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mesos.Offer(nil), r.offers...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func updateEvent(taskID, agentID string, state mesos.TaskState, uuid []byte) *scheduler.Event {
	st := state
	s := mesos.TaskStatus{TaskID: mesos.TaskID{Value: taskID}, State: &st, UUID: uuid}
	if agentID != "" {
		s.AgentID = &mesos.AgentID{Value: agentID}
	}
	return &scheduler.Event{Type: scheduler.Event_UPDATE, Update: &scheduler.Event_Update{Status: s}}
}

func subscribedEvent(frameworkID string, heartbeat float64) *scheduler.Event {
	return &scheduler.Event{Type: scheduler.Event_SUBSCRIBED, Subscribed: &scheduler.Event_Subscribed{
		FrameworkID:              &mesos.FrameworkID{Value: frameworkID},
		HeartbeatIntervalSeconds: &heartbeat,
	}}
}

// asyncRecorder is a recorder that records updates asynchronously: it
// notes and books each update at once, as the recorder does, and holds its
// done callback until the test finishes the update.
type asyncRecorder struct {
	*recorder

	mu      sync.Mutex
	pending []heldUpdate
	hold    func(mesos.TaskStatus) bool // nil: hold every update
}

// heldUpdate is an update whose done has not been called by the test.
type heldUpdate struct {
	status   mesos.TaskStatus
	recorded error // what booking it returned
	done     func(error)
}

func newAsyncRecorder(book *taskBook) *asyncRecorder {
	return &asyncRecorder{recorder: newRecorder(book)}
}

func (a *asyncRecorder) UpdateAsync(ctx context.Context, s mesos.TaskStatus, done func(error)) {
	err := a.recorder.Update(ctx, s)
	a.mu.Lock()
	hold := a.hold == nil || a.hold(s)
	if hold {
		a.pending = append(a.pending, heldUpdate{status: s, recorded: err, done: done})
	}
	a.mu.Unlock()
	if !hold {
		go done(err) // from another goroutine, as a batcher would
	}
}

// held returns the updates held so far, oldest first.
func (a *asyncRecorder) held() []heldUpdate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]heldUpdate(nil), a.pending...)
}

// finish notes "done <task> <err>" and calls the held update's done with
// err from another goroutine, returning once done has returned.
func (a *asyncRecorder) finish(h heldUpdate, err error) {
	a.note("done %s %v", h.status.TaskID.Value, err)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		h.done(err)
	}()
	<-returned
}
