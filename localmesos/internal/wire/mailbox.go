package wire

import "sync"

// Mailbox runs functions one at a time, in the order they were posted, on
// its own goroutine: the libprocess actor model in a few lines. Post never
// blocks (the queue is unbounded), so two actors may post to each other from
// inside their handlers without deadlock.
type Mailbox struct {
	mu      sync.Mutex
	queue   []func()
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	closed  bool
}

// NewMailbox starts a mailbox. Close stops it.
func NewMailbox() *Mailbox {
	m := &Mailbox{
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go m.run()
	return m
}

// Post queues f. It returns false, and drops f, once the mailbox is closed.
func (m *Mailbox) Post(f func()) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, f)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// Len is how many functions wait to run (Mesos' event_queue_dispatches).
func (m *Mailbox) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

// Close drops what is still queued, waits for the function that is running
// to return, and stops the goroutine. It is idempotent. It must not be
// called from inside a posted function.
func (m *Mailbox) Close() {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		m.queue = nil
		close(m.done)
	}
	m.mu.Unlock()
	<-m.stopped
}

func (m *Mailbox) run() {
	defer close(m.stopped)
	for {
		m.mu.Lock()
		var f func()
		if len(m.queue) > 0 {
			f = m.queue[0]
			m.queue[0] = nil
			m.queue = m.queue[1:]
		}
		m.mu.Unlock()
		if f != nil {
			f()
			continue
		}
		select {
		case <-m.wake:
		case <-m.done:
			return
		}
	}
}
