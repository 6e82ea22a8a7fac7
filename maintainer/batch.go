package maintainer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/statemgr"
)

// Defaults of BatcherConfig.
const (
	DefaultBatchSize   = 64
	DefaultBatchLinger = 2 * time.Millisecond
)

// BatcherConfig tunes how status updates are grouped into etcd
// transactions.
type BatcherConfig struct {
	// Size is the most updates one transaction carries: a batch is written
	// as soon as it has this many (at most statemgr.MaxBatch, so that a
	// batch is one transaction).
	Size int
	// Linger is how long the first update of a batch waits for others
	// before the batch is written. It bounds the delay batching adds to an
	// update when few arrive; 0 writes whatever is waiting at once (under
	// load, batches still form while the previous one is written).
	Linger time.Duration
}

// NewBatcherConfig returns the defaults.
func NewBatcherConfig() BatcherConfig {
	return BatcherConfig{Size: DefaultBatchSize, Linger: DefaultBatchLinger}
}

// Validate explains the first setting that cannot work.
func (c BatcherConfig) Validate() error {
	if c.Size < 1 || c.Size > statemgr.MaxBatch {
		return fmt.Errorf("batch size %d: want 1 to %d", c.Size, statemgr.MaxBatch)
	}
	if c.Linger < 0 || c.Linger > time.Second {
		return fmt.Errorf("batch linger %v: want 0 to 1s (Mesos waits for the acknowledgement)", c.Linger)
	}
	return nil
}

// ErrBatcherStopped: the update was not recorded because the batcher has
// stopped.
var ErrBatcherStopped = errors.New("maintainer: status batcher stopped")

// Batcher records the task status updates of the live event stream
// together: it implements mesoslib.AsyncUpdater, queues each update, and
// one goroutine (Run) writes the queue with RecordBatch, a batch per etcd
// transaction, when a batch is full or its first update has waited Linger.
// Each update's done then gets the update's own outcome, exactly as Update
// would have returned it, and the affected instances are enqueued as
// Update does.
//
// Order: updates are written in the order they were queued, one batch
// after the other. Two updates of one task in one batch are applied in
// order within its transaction (statemgr.ApplyTaskUpdates groups the
// changes of a task and runs them one after the other on the same
// document), so the stored task is what recording them one by one would
// leave.
type Batcher struct {
	m   *Maintainer
	cfg BatcherConfig

	in      chan queuedStatus
	quit    chan struct{} // closed when Run stops taking updates
	started atomic.Bool

	// mu orders UpdateAsync's sends against the drain when Run stops:
	// senders hold it for reading; closed is set under the write lock.
	mu     sync.RWMutex
	closed bool
}

type queuedStatus struct {
	ctx    context.Context
	status mesos.TaskStatus
	done   func(error)
	at     time.Time
}

// NewBatcher returns a Batcher recording through m. Run must be running
// for updates to be recorded.
func NewBatcher(m *Maintainer, cfg BatcherConfig) (*Batcher, error) {
	if m == nil {
		return nil, errors.New("maintainer: batcher needs a maintainer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("maintainer: %w", err)
	}
	return &Batcher{
		m:    m,
		cfg:  cfg,
		in:   make(chan queuedStatus, 4*cfg.Size),
		quit: make(chan struct{}),
	}, nil
}

// UpdateAsync queues a status to be recorded and returns; done(nil) follows
// once it is persisted (mesoslib.AsyncUpdater). It blocks only while the
// queue is full, and calls done with an error at once if ctx ends first or
// the batcher has stopped. An update whose ctx (its subscription) has
// ended by the time its batch is written is not written: Mesos sends it
// again.
func (b *Batcher) UpdateAsync(ctx context.Context, status mesos.TaskStatus, done func(error)) {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		done(ErrBatcherStopped)
		return
	}
	select {
	case b.in <- queuedStatus{ctx: ctx, status: status, done: done, at: time.Now()}:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		done(fmt.Errorf("record %s of %s: %w", status.GetState(), status.TaskID.Value, context.Cause(ctx)))
	case <-b.quit:
		b.mu.RUnlock()
		done(ErrBatcherStopped)
	}
}

// Run writes batches until ctx ends. Updates it has not written by then
// get ErrBatcherStopped (they are not acknowledged; Mesos sends them
// again). Run can be called once.
func (b *Batcher) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("maintainer: batcher Run called twice")
	}
	glog.V(1).Infof("maintainer: recording status updates in batches of up to %d, lingering %v", b.cfg.Size, b.cfg.Linger)
	var batch []queuedStatus
	defer func() { b.stop(batch) }()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-b.in:
			batch = append(batch, q)
		}
		deadline := batch[0].at.Add(b.cfg.Linger)
	collect:
		for len(batch) < b.cfg.Size {
			select { // take what is waiting first
			case q := <-b.in:
				batch = append(batch, q)
				continue
			default:
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case q := <-b.in:
				batch = append(batch, q)
			case <-timer.C:
				break collect
			case <-ctx.Done():
				return nil
			}
		}
		b.write(ctx, batch)
		batch = nil
	}
}

// write records one batch and reports each update's outcome.
func (b *Batcher) write(ctx context.Context, batch []queuedStatus) {
	live := make([]queuedStatus, 0, len(batch))
	statuses := make([]mesos.TaskStatus, 0, len(batch))
	for _, q := range batch {
		if err := q.ctx.Err(); err != nil {
			q.done(fmt.Errorf("record %s of %s: subscription ended: %w", q.status.GetState(), q.status.TaskID.Value, context.Cause(q.ctx)))
			continue
		}
		live = append(live, q)
		statuses = append(statuses, q.status)
	}
	if len(live) == 0 {
		return
	}
	errs := b.m.RecordBatch(ctx, statuses)
	glog.V(2).Infof("maintainer: wrote a batch of %d status updates", len(live))
	for i, q := range live {
		q.done(errs[i])
	}
}

// stop refuses new updates and fails those not written.
func (b *Batcher) stop(unwritten []queuedStatus) {
	close(b.quit)
	b.mu.Lock() // every UpdateAsync has sent or given up
	b.closed = true
	b.mu.Unlock()
	for {
		select {
		case q := <-b.in:
			unwritten = append(unwritten, q)
			continue
		default:
		}
		break
	}
	if len(unwritten) > 0 {
		glog.V(1).Infof("maintainer: batcher stopping; %d status updates not recorded (Mesos will resend them)", len(unwritten))
	}
	for _, q := range unwritten {
		q.done(ErrBatcherStopped)
	}
}
