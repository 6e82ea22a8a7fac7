package redistest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
)

// Writer writes through the master GET names, as a client that follows the
// API would: SET w:<i> then WAIT 1 (a slave has it); on any error or an
// unacknowledged write it asks GET again and retries the same key. It keeps
// the keys WAIT acknowledged and the longest time between two acknowledged
// writes.
type Writer struct {
	env  *Env
	name string

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   []int
	maxGap  time.Duration
	retries int
}

// StartWriter starts writing to the named instance until Stop.
func (e *Env) StartWriter(ctx context.Context, name string) *Writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &Writer{env: e, name: name, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w
}

// Stop ends the writes and waits for the writer to return.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
}

// Result returns the acknowledged keys' numbers, the longest gap between
// two acknowledged writes, and how many times the writer had to retry.
func (w *Writer) Result() (acked []int, maxGap time.Duration, retries int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked), w.maxGap, w.retries
}

// Lost returns the acknowledged keys that server does not have.
func (w *Writer) Lost(ctx context.Context, server resp.Server) ([]string, error) {
	acked, _, _ := w.Result()
	c, err := resp.Dial(ctx, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var lost []string
	for _, i := range acked {
		key := "w:" + strconv.Itoa(i)
		got, err := c.Do(ctx, "GET", key)
		if err != nil {
			return nil, fmt.Errorf("GET %s at %s: %w", key, server.Addr, err)
		}
		if got != key {
			lost = append(lost, key)
		}
	}
	return lost, nil
}

func (w *Writer) run(ctx context.Context) {
	var conn *resp.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	last := time.Now()
	for i := 0; ctx.Err() == nil; {
		if conn == nil {
			conn = w.dialMaster(ctx)
			if conn == nil {
				w.retry(ctx)
				continue
			}
		}
		key := "w:" + strconv.Itoa(i)
		octx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := conn.Do(octx, "SET", key, key)
		if err == nil && got == "OK" {
			got, err = conn.Do(octx, "WAIT", "1", "1000")
		}
		cancel()
		if n, ok := got.(int64); err != nil || !ok || n < 1 {
			conn.Close()
			conn = nil
			w.retry(ctx)
			continue
		}
		now := time.Now()
		w.mu.Lock()
		w.acked = append(w.acked, i)
		w.maxGap = max(w.maxGap, now.Sub(last))
		w.mu.Unlock()
		last = now
		i++
	}
}

// dialMaster connects to the running master GET names; nil if there is none
// yet.
func (w *Writer) dialMaster(ctx context.Context) *resp.Conn {
	inst, _, err := w.env.Get(ctx, w.name)
	if err != nil || inst == nil {
		return nil
	}
	m := Master(inst)
	if m == nil || m.State != stateful.TaskRunning {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := resp.Dial(dctx, Server(inst, m))
	if err != nil {
		return nil
	}
	return conn
}

// retry counts a retry and pauses as a client would before the next.
func (w *Writer) retry(ctx context.Context) {
	w.mu.Lock()
	w.retries++
	w.mu.Unlock()
	t := time.NewTimer(5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
