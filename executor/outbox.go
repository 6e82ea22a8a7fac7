package executor

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/golang/glog"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

// outbox holds every status update the agent has not acknowledged yet, in
// the order they were made. An update counts as unacknowledged from its
// creation until ACKNOWLEDGED, whether or not its POST worked: the agent
// gets all of them again in the next SUBSCRIBE. Updates are POSTed one at a
// time in order, and a failed POST holds back the ones after it, so the
// agent never sees one task's updates out of order.
type outbox struct {
	retry time.Duration

	mu        sync.Mutex
	items     []*pendingUpdate
	connected bool
	wake      chan struct{}
	changed   chan struct{} // closed and replaced whenever items shrink
}

type pendingUpdate struct {
	update executor.Call_Update
	uuid   string
	sent   bool
}

func newOutbox(retry time.Duration) *outbox {
	return &outbox{retry: retry, wake: make(chan struct{}, 1), changed: make(chan struct{})}
}

// newUUID returns a random (version 4) UUID as the 16 raw bytes Mesos
// expects in TaskStatus.uuid.
func newUUID() []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on Linux; if it ever does, a reused
		// uuid would silently lose updates, so stop here.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

func (o *outbox) add(u executor.Call_Update) {
	o.mu.Lock()
	o.items = append(o.items, &pendingUpdate{update: u, uuid: string(u.Status.UUID)})
	o.mu.Unlock()
	o.poke()
}

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// ack drops the acknowledged update; it reports whether it was known.
func (o *outbox) ack(uuid []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, p := range o.items {
		if p.uuid == string(uuid) {
			o.items = append(o.items[:i], o.items[i+1:]...)
			close(o.changed)
			o.changed = make(chan struct{})
			return true
		}
	}
	return false
}

// unacknowledged returns every pending update, oldest first, for a
// SUBSCRIBE call, and their uuids for markSent.
func (o *outbox) unacknowledged() ([]executor.Call_Update, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.items) == 0 {
		return nil, nil
	}
	ups := make([]executor.Call_Update, 0, len(o.items))
	ids := make([]string, 0, len(o.items))
	for _, p := range o.items {
		ups = append(ups, p.update)
		ids = append(ids, p.uuid)
	}
	return ups, ids
}

// subscribed records that a SUBSCRIBE carrying the updates named by uuids
// was accepted: those are with the agent now, and later ones may be POSTed.
func (o *outbox) subscribed(uuids []string) {
	o.mu.Lock()
	in := make(map[string]bool, len(uuids))
	for _, id := range uuids {
		in[id] = true
	}
	for _, p := range o.items {
		if in[p.uuid] {
			p.sent = true
		}
	}
	o.connected = true
	o.mu.Unlock()
	o.poke()
}

func (o *outbox) disconnected() {
	o.mu.Lock()
	o.connected = false
	o.mu.Unlock()
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.items)
}

// waitEmpty waits until every update is acknowledged or ctx ends.
func (o *outbox) waitEmpty(ctx context.Context) bool {
	for {
		o.mu.Lock()
		n, changed := len(o.items), o.changed
		o.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// next returns the oldest update not yet POSTed, if connected.
func (o *outbox) next() (*pendingUpdate, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.connected {
		return nil, false
	}
	for _, p := range o.items {
		if !p.sent {
			return p, true
		}
	}
	return nil, false
}

func (o *outbox) markSent(p *pendingUpdate) {
	o.mu.Lock()
	p.sent = true
	o.mu.Unlock()
}

// run POSTs pending updates in order until ctx ends. A failed POST is
// retried after o.retry, or at the next subscription.
func (o *outbox) run(ctx context.Context, post func(context.Context, executor.Call_Update) error) {
	for {
		for {
			p, ok := o.next()
			if !ok {
				break
			}
			if err := post(ctx, p.update); err != nil {
				if ctx.Err() != nil {
					return
				}
				glog.Warningf("executor: sending %s for task %s: %v (kept for retry)", p.update.Status.GetState(), p.update.Status.TaskID.Value, err)
				t := time.NewTimer(o.retry)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			o.markSent(p)
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
	}
}
