package buffer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func getWithin(t *testing.T, q *WorkQueue, d time.Duration) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return q.Get(ctx)
}

func TestWorkQueueDeduplicates(t *testing.T) {
	q := NewWorkQueue(time.Millisecond, time.Second)
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	k1, _ := getWithin(t, q, time.Second)
	k2, _ := getWithin(t, q, time.Second)
	if k1 != "a" || k2 != "b" {
		t.Fatalf("got %q %q, want a b in order", k1, k2)
	}
	if _, ok := getWithin(t, q, 20*time.Millisecond); ok {
		t.Fatal("a third key came out of a queue given two distinct keys")
	}
}

func TestWorkQueueOneWorkerPerKey(t *testing.T) {
	q := NewWorkQueue(time.Millisecond, time.Second)
	q.Add("a")
	k, _ := getWithin(t, q, time.Second)
	q.Add("a") // while being processed
	if _, ok := getWithin(t, q, 20*time.Millisecond); ok {
		t.Fatal("a key being processed was handed to a second worker")
	}
	q.Done(k)
	if k2, ok := getWithin(t, q, time.Second); !ok || k2 != "a" {
		t.Fatalf("key added while processing did not come back after Done: %q %v", k2, ok)
	}
}

func TestWorkQueueConcurrentWorkersNeverShareAKey(t *testing.T) {
	q := NewWorkQueue(time.Millisecond, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var active sync.Map
	var overlaps, handled atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, ok := q.Get(ctx)
				if !ok {
					return
				}
				if _, busy := active.LoadOrStore(k, true); busy {
					overlaps.Add(1)
				}
				handled.Add(1)
				active.Delete(k)
				q.Done(k)
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		q.Add([]string{"a", "b", "c"}[i%3])
	}
	deadline := time.Now().Add(5 * time.Second)
	for q.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling for the drain, not synchronising work
	}
	cancel()
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d times a key was handled by two workers at once", overlaps.Load())
	}
	if handled.Load() == 0 {
		t.Fatal("nothing handled")
	}
}

func TestWorkQueueBackoffAndForget(t *testing.T) {
	q := NewWorkQueue(10*time.Millisecond, 80*time.Millisecond)
	for i, want := range []time.Duration{10, 20, 40, 80, 80} {
		if got := q.backoff(i); got != want*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", i, got, want*time.Millisecond)
		}
	}
	start := time.Now()
	q.AddRateLimited("a")
	q.AddRateLimited("a") // second failure: 20ms, but the 10ms timer is sooner and wins
	k, ok := getWithin(t, q, time.Second)
	if !ok || k != "a" {
		t.Fatalf("rate-limited key never came back")
	}
	if el := time.Since(start); el < 10*time.Millisecond {
		t.Fatalf("rate-limited key came back after %v, before its 10ms backoff", el)
	}
	q.Done(k)
	if q.Failures("a") != 2 {
		t.Fatalf("Failures = %d, want 2", q.Failures("a"))
	}
	q.Forget("a")
	if q.Failures("a") != 0 {
		t.Fatalf("Forget did not reset failures")
	}
}

func TestWorkQueueShutDownWakesGet(t *testing.T) {
	q := NewWorkQueue(time.Millisecond, time.Second)
	q.AddAfter("later", time.Hour)
	done := make(chan bool)
	go func() {
		_, ok := q.Get(context.Background())
		done <- ok
	}()
	q.ShutDown()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Get returned a key after ShutDown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ShutDown did not wake Get")
	}
}

func TestWorkQueueGetHonoursContext(t *testing.T) {
	q := NewWorkQueue(time.Millisecond, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		_, ok := q.Get(ctx)
		done <- ok
	}()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Get returned a key from an empty queue")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelling ctx did not wake Get")
	}
}

func TestTaskQueueKeepsPlaceOnRefresh(t *testing.T) {
	q := NewTaskQueue[int]()
	if !q.Put("x/0", 1) || !q.Put("x/1", 2) {
		t.Fatal("new keys not reported new")
	}
	select {
	case <-q.Notify():
	default:
		t.Fatal("no notification after new work")
	}
	if q.Put("x/0", 10) {
		t.Fatal("refresh reported as new")
	}
	snap := q.Snapshot()
	if len(snap) != 2 || snap[0].Key != "x/0" || snap[0].Value != 10 || snap[1].Key != "x/1" {
		t.Fatalf("snapshot = %+v, want x/0(10) then x/1", snap)
	}
	if !q.Remove("x/0") || q.Remove("x/0") || q.Has("x/0") || q.Len() != 1 {
		t.Fatal("Remove/Has/Len disagree")
	}
}
