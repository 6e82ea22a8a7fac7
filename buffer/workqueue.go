// Package buffer holds the scheduler's two queues: the job queue of
// instance keys that need reconciling (after a create, scale or destroy
// request, or a status update) and the task queue of tasks waiting for
// offers. Both live in memory only; they are rebuilt from statemgr at start,
// which is why losing them in a crash loses nothing.
package buffer

import (
	"context"
	"sync"
	"time"
)

// WorkQueue is a keyed job queue in the manner of controller-runtime's
// workqueue: a key added several times before a worker takes it is handled
// once; a key being handled is never handed to a second worker at the same
// time (if it is added meanwhile, it is handed out again once Done); failed
// keys come back after an exponential backoff that Forget resets.
type WorkQueue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	queue      []string        // keys ready to hand out, in order
	queued     map[string]bool // keys in queue
	processing map[string]bool // keys handed out and not yet Done
	dirty      map[string]bool // keys added while processing
	failures   map[string]int  // consecutive failures per key, for backoff
	timers     map[string]delayed
	shutdown   bool
	baseDelay  time.Duration
	maxDelay   time.Duration
}

// NewWorkQueue returns a queue whose retry delay starts at base and doubles
// per consecutive failure up to max.
func NewWorkQueue(base, max time.Duration) *WorkQueue {
	q := &WorkQueue{
		queued:     map[string]bool{},
		processing: map[string]bool{},
		dirty:      map[string]bool{},
		failures:   map[string]int{},
		timers:     map[string]delayed{},
		baseDelay:  base,
		maxDelay:   max,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key now. Adding a key that is already queued does nothing.
func (q *WorkQueue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *WorkQueue) addLocked(key string) {
	if q.shutdown {
		return
	}
	if q.processing[key] {
		q.dirty[key] = true
		return
	}
	if q.queued[key] {
		return
	}
	q.queued[key] = true
	q.queue = append(q.queue, key)
	q.cond.Signal()
}

// delayed is a pending AddAfter.
type delayed struct {
	timer *time.Timer
	at    time.Time
}

// AddAfter queues key once d has passed. Of several pending AddAfters of one
// key, the one that fires soonest wins.
func (q *WorkQueue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := time.Now().Add(d)
	if old, ok := q.timers[key]; ok {
		if !old.at.After(at) {
			return
		}
		if !old.timer.Stop() {
			return // it is firing right now, which is sooner still
		}
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if cur, ok := q.timers[key]; ok && cur.timer == t {
			delete(q.timers, key)
		}
		q.addLocked(key)
	})
	q.timers[key] = delayed{timer: t, at: at}
}

// AddRateLimited queues key after the backoff its failures so far earn.
func (q *WorkQueue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	q.AddAfter(key, q.backoff(n))
}

func (q *WorkQueue) backoff(failures int) time.Duration {
	d := q.baseDelay
	for i := 0; i < failures && d < q.maxDelay; i++ {
		d *= 2
	}
	if d > q.maxDelay {
		d = q.maxDelay
	}
	return d
}

// Forget resets key's backoff, after a success.
func (q *WorkQueue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Failures is how many times in a row key has failed.
func (q *WorkQueue) Failures(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Get blocks until a key is ready or the queue shuts down (ok false) or ctx
// ends. The caller must call Done(key) when finished with it.
func (q *WorkQueue) Get(ctx context.Context) (key string, ok bool) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.cond.Broadcast()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.queue) == 0 && !q.shutdown && ctx.Err() == nil {
		q.cond.Wait()
	}
	if q.shutdown || ctx.Err() != nil {
		return "", false
	}
	key = q.queue[0]
	q.queue = q.queue[1:]
	delete(q.queued, key)
	q.processing[key] = true
	return key, true
}

// Done marks key as no longer being handled; if it was added meanwhile it
// is queued again.
func (q *WorkQueue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
	}
}

// Len is the number of keys waiting to be handed out.
func (q *WorkQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// ShutDown wakes every waiting Get and drops pending delayed adds.
func (q *WorkQueue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for k, t := range q.timers {
		t.timer.Stop()
		delete(q.timers, k)
	}
	q.cond.Broadcast()
}
