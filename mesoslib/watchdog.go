package mesoslib

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/golang/glog"
)

// watchdog closes a subscription stream on which nothing has arrived for
// misses heartbeat intervals. mesos-go v0.0.11 has no such detection: a
// master that vanishes without closing the TCP connection (a partition, a
// frozen VM) leaves the client waiting forever. Closing the stream makes
// httpsched notice the disconnection and controller.Run re-subscribe.
//
// Silence is counted only while waiting for the next event: while the
// consumer handles one, later events queue up unread, which is not the
// master's fault.
type watchdog struct {
	misses  int
	wake    chan struct{}
	expired func(why error) // told before the stream is closed

	mu       sync.Mutex
	stream   io.Closer // the current subscription; nil when there is none
	interval time.Duration
	last     time.Time // last event, or end of handling it
	busy     bool      // an event is being handled
}

func newWatchdog(misses int, interval time.Duration, expired func(error)) *watchdog {
	return &watchdog{misses: misses, interval: interval, wake: make(chan struct{}, 1), expired: expired}
}

// watch starts watching a new subscription stream.
func (w *watchdog) watch(stream io.Closer) {
	w.mu.Lock()
	w.stream, w.last, w.busy = stream, time.Now(), false
	w.mu.Unlock()
	w.poke()
}

// unwatch forgets the stream once its subscription has ended.
func (w *watchdog) unwatch() {
	w.mu.Lock()
	w.stream = nil
	w.mu.Unlock()
}

// setInterval takes the heartbeat interval the master announced.
func (w *watchdog) setInterval(d time.Duration) {
	w.mu.Lock()
	w.interval = d
	w.mu.Unlock()
	w.poke()
}

// handling marks the start (true) and the end (false) of handling an event.
func (w *watchdog) handling(busy bool) {
	w.mu.Lock()
	w.busy, w.last = busy, time.Now()
	w.mu.Unlock()
}

func (w *watchdog) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run checks the stream until ctx ends.
func (w *watchdog) run(ctx context.Context) {
	t := time.NewTimer(w.check())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Reset(w.check())
	}
}

// check closes the stream if it has been silent too long and returns when
// to look again.
func (w *watchdog) check() time.Duration {
	w.mu.Lock()
	limit := time.Duration(w.misses) * w.interval
	if w.stream == nil || w.busy {
		w.mu.Unlock()
		return limit
	}
	silent := time.Since(w.last)
	if silent < limit {
		w.mu.Unlock()
		return limit - silent
	}
	stream := w.stream
	w.stream = nil
	w.mu.Unlock()
	why := fmt.Errorf("nothing from the master for %v (%d heartbeat intervals of %v)", silent.Round(time.Millisecond), w.misses, w.interval)
	glog.Warningf("mesoslib: %v; closing the subscription", why)
	if w.expired != nil {
		w.expired(why)
	}
	stream.Close()
	return limit
}
