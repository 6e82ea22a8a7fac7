// Package feed is the scheduler's live feed of state changes: instances
// created, changed, changing status, failing over and deleted, tasks
// changing state, health and role. It turns the changes statemgr's cache
// takes in (statemgr.WithObserver) into events and fans them out to
// subscribers, such as the REST API's GET /v1/events.
//
// Publishing never blocks: it runs on the state path (with the cache
// locked), so a subscriber that does not keep up is dropped, not waited
// for. A dropped subscriber reconnects with the last event ID it read and
// gets what it missed while the hub still holds it.
package feed

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event types.
const (
	InstanceCreated  = "instance.created"
	InstanceUpdated  = "instance.updated"  // generation, counts or spec changed
	InstanceStatus   = "instance.status"   // status changed
	InstanceFailover = "instance.failover" // the master moved to another ordinal
	InstanceDeleted  = "instance.deleted"
	TaskState        = "task.state"    // a new task, or its state changed
	TaskHealth       = "task.health"   // its health verdict changed
	TaskPromoted     = "task.promoted" // it became the master
	TaskRole         = "task.role"     // any other role change
	TaskDeleted      = "task.deleted"
	// Resync tells a subscriber that events it asked for (by Last-Event-ID)
	// are no longer held: it has to read the whole state again.
	Resync = "resync"
)

// Event is one change, as the feed serves it (JSON).
type Event struct {
	// ID orders the events of one scheduler process: <epoch>-<sequence>.
	ID string `json:"id"`
	// Type is one of the constants above.
	Type string `json:"type"`
	// Instance names the instance the event is about.
	Instance string `json:"instance,omitempty"`
	// Task names the task, for task events.
	Task string `json:"task,omitempty"`
	// Time is when the scheduler saw the change.
	Time time.Time `json:"time"`
	// Details depends on the type, e.g. {"from": "CREATING", "to": "RUNNING"}.
	Details map[string]any `json:"details,omitempty"`
}

// Defaults of a Hub.
const (
	// DefaultHistory is how many recent events a Hub keeps for
	// subscribers that reconnect.
	DefaultHistory = 1024
	// DefaultBuffer is how many events a subscriber may fall behind
	// before it is dropped.
	DefaultBuffer = 256
)

// Hub fans events out to subscribers. Its methods are safe for concurrent
// use.
type Hub struct {
	epoch  string
	buffer int
	now    func() time.Time

	mu      sync.Mutex
	seq     uint64
	history []Event // ring of the last len(history) events
	next    int     // where the next event goes in history
	held    int     // how many of history are events
	subs    map[*Subscription]struct{}
	dropped uint64 // subscribers dropped for falling behind
}

// NewHub returns a hub that keeps history recent events and lets each
// subscriber fall behind by buffer events; zero or less means the default.
func NewHub(history, buffer int) *Hub {
	if history <= 0 {
		history = DefaultHistory
	}
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	// The epoch tells this process's IDs from an earlier scheduler's, whose
	// sequence numbers a reconnecting client may still hold.
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Hub{
		epoch: hex.EncodeToString(b[:]), buffer: buffer, now: time.Now,
		history: make([]Event, history), subs: map[*Subscription]struct{}{},
	}
}

// Publish numbers the events, stamps those without a time, keeps them in
// the history and hands them to every subscriber. It never blocks: a
// subscriber whose buffer is full is dropped.
func (h *Hub) Publish(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for _, ev := range evs {
		h.seq++
		ev.ID = h.epoch + "-" + strconv.FormatUint(h.seq, 10)
		if ev.Time.IsZero() {
			ev.Time = now
		}
		h.history[h.next] = ev
		h.next = (h.next + 1) % len(h.history)
		h.held = min(h.held+1, len(h.history))
		for s := range h.subs {
			select {
			case s.ch <- ev:
			default:
				s.dropped = true
				h.dropped++
				h.removeLocked(s)
			}
		}
	}
}

// Subscription is one subscriber's feed.
type Subscription struct {
	// Replay holds the events after the ID asked for, or a single Resync
	// event (with the latest event's ID) when they are no longer held;
	// read it before C.
	Replay []Event
	// C delivers the events published after Subscribe. It is closed when
	// the subscriber is dropped (Dropped says so) or closed.
	C <-chan Event

	hub     *Hub
	ch      chan Event
	dropped bool // under hub.mu
}

// Subscribe starts a feed. lastID is the last event the subscriber saw
// (the SSE Last-Event-ID), or "" for only what comes next. Close it when
// done.
func (h *Hub) Subscribe(lastID string) *Subscription {
	ch := make(chan Event, h.buffer)
	s := &Subscription{C: ch, hub: h, ch: ch}
	h.mu.Lock()
	defer h.mu.Unlock()
	if lastID != "" {
		s.Replay = h.sinceLocked(lastID)
	}
	h.subs[s] = struct{}{}
	return s
}

// sinceLocked returns the held events after lastID, or a Resync event if
// lastID is not one of this hub's held events (an earlier scheduler's, or
// too old).
func (h *Hub) sinceLocked(lastID string) []Event {
	epoch, seqText, _ := strings.Cut(lastID, "-")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	oldest := h.seq - uint64(h.held) // the last one not held
	if epoch != h.epoch || err != nil || seq > h.seq || seq < oldest {
		// It carries the latest ID: a client that reads the state again
		// resumes from here.
		return []Event{{ID: h.epoch + "-" + strconv.FormatUint(h.seq, 10), Type: Resync, Time: h.now(), Details: map[string]any{
			"reason": "the events after " + lastID + " are no longer held; read the state again",
		}}}
	}
	n := int(h.seq - seq)
	out := make([]Event, 0, n)
	for i := n; i > 0; i-- {
		out = append(out, h.history[(h.next-i+len(h.history))%len(h.history)])
	}
	return out
}

// Dropped reports whether the subscriber was dropped for falling behind.
func (s *Subscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

// Close ends the feed; C is closed. Closing twice is harmless.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s)
}

func (h *Hub) removeLocked(s *Subscription) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Dropped returns how many subscribers were dropped for falling behind.
func (h *Hub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}
