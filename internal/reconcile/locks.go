package reconcile

import (
	"context"
	"sync"
)

// Locks serialises work on one instance across goroutines that do not share
// a queue: the controller holds an instance's lock for a whole reconcile pass
// and the launcher takes it around the workload's Config, which keeps the
// Workload promise that at most one callback of an instance runs at a time.
// The zero value is ready to use.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sem  chan struct{}
	refs int
}

// Lock takes key's lock, waiting until it is free or ctx ends (then it
// returns ctx's error). The returned function releases it.
func (l *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &keyLock{sem: make(chan struct{}, 1)}
		l.locks[key] = k
	}
	k.refs++
	l.mu.Unlock()

	select {
	case k.sem <- struct{}{}:
		return func() {
			<-k.sem
			l.release(key, k)
		}, nil
	case <-ctx.Done():
		l.release(key, k)
		return nil, ctx.Err()
	}
}

// release drops one reference and forgets keys nobody holds or waits for.
func (l *Locks) release(key string, k *keyLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k.refs--
	if k.refs == 0 {
		delete(l.locks, key)
	}
}

// Len is the number of keys held or waited for (for tests).
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
