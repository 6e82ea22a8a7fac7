package buffer

import (
	"sort"
	"sync"
	"time"
)

// TaskQueue is the set of tasks waiting for offers, keyed by task (e.g.
// "cache1/0"). Putting a key that is already queued replaces its value but
// keeps its place: a task does not lose its turn because its demand was
// refreshed.
type TaskQueue[T any] struct {
	mu      sync.Mutex
	entries map[string]*Entry[T]
	seq     uint64
	notify  chan struct{}
}

// Entry is one queued task.
type Entry[T any] struct {
	Key   string
	Since time.Time // when it was first queued
	Value T
	seq   uint64
}

// NewTaskQueue returns an empty queue.
func NewTaskQueue[T any]() *TaskQueue[T] {
	return &TaskQueue[T]{entries: map[string]*Entry[T]{}, notify: make(chan struct{}, 1)}
}

// Put queues key with value, or refreshes the value of a queued key. It
// reports whether the key is new.
func (q *TaskQueue[T]) Put(key string, value T) bool {
	q.mu.Lock()
	e, ok := q.entries[key]
	if ok {
		e.Value = value
	} else {
		q.seq++
		q.entries[key] = &Entry[T]{Key: key, Since: time.Now(), Value: value, seq: q.seq}
	}
	q.mu.Unlock()
	if !ok {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	return !ok
}

// Remove drops key; it reports whether it was queued.
func (q *TaskQueue[T]) Remove(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.entries[key]
	delete(q.entries, key)
	return ok
}

// Has reports whether key is queued.
func (q *TaskQueue[T]) Has(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.entries[key]
	return ok
}

// Snapshot returns the queued tasks, oldest first (copies).
func (q *TaskQueue[T]) Snapshot() []Entry[T] {
	q.mu.Lock()
	out := make([]Entry[T], 0, len(q.entries))
	for _, e := range q.entries {
		out = append(out, *e)
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// Len is the number of queued tasks.
func (q *TaskQueue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries)
}

// Notify receives a value after a new key was queued (coalesced: one
// receive may stand for many Puts).
func (q *TaskQueue[T]) Notify() <-chan struct{} { return q.notify }
