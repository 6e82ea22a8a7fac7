// Package statemgr keeps the framework's state (instances, tasks, framework
// ID) in etcd behind an in-memory cache, and elects the one scheduler that
// may change it.
//
// Reads come from the cache and return copies. Writes go through to etcd
// first, each as one transaction guarded by the mod revision of every
// document it read, and by the leader fence once elected (see Campaign), and
// then update the cache. A watch keeps the cache current with writes made
// elsewhere; when the watch falls behind etcd's compaction, the cache is
// reloaded.
package statemgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mesos-stateful/stateful"
)

// Sentinel errors; the Store's errors wrap them with context. The first
// three are the toolkit-wide errors of package stateful, so errors.Is works
// with either name; ErrNotLeader (and an unreachable etcd) also match
// stateful.ErrUnavailable.
var (
	// ErrNotFound: the instance or task does not exist.
	ErrNotFound = stateful.ErrNotFound
	// ErrExists: a create found the instance (or tasks of that name) already
	// stored. Nothing was written.
	ErrExists = stateful.ErrExists
	// ErrConflict: another writer kept changing the documents an update read,
	// more times than the retry limit. Nothing was written; the cache holds
	// the current values.
	ErrConflict = stateful.ErrConflict
	// ErrNotLeader: this Store is not (or no longer) the elected leader, so
	// it may not write. Nothing was written.
	ErrNotLeader = fmt.Errorf("not the leader: %w", stateful.ErrUnavailable)
)

// Defaults of the options.
const (
	DefaultSessionTTL = 10 * time.Second
	DefaultRetries    = 10
	// MaxBatch is how many task documents ApplyTaskUpdates writes per
	// transaction; larger batches are split. etcd refuses transactions of
	// more than 128 operations by default.
	MaxBatch = 100
	// MaxTxnBytes bounds the documents one transaction writes; etcd refuses
	// requests above 1.5 MiB by default.
	MaxTxnBytes = 1 << 20
)

// Option configures a Store.
type Option func(*options)

type options struct {
	observe    func(Change)
	sessionTTL time.Duration
	identity   string
	retries    int
	now        func() time.Time
}

// WithSessionTTL sets the TTL of the leader session's lease: how long a
// leader that stopped (crashed, partitioned) keeps its leadership. It is
// rounded up to whole seconds.
func WithSessionTTL(d time.Duration) Option { return func(o *options) { o.sessionTTL = d } }

// WithIdentity sets the value stored in the leader key (default host:pid),
// which Leader returns.
func WithIdentity(id string) Option { return func(o *options) { o.identity = id } }

// WithObserver makes the Store call observe with every change its cache
// takes in, whoever wrote it (this Store, or another writer seen by the
// watch), once each; the changes of one document come in revision order
// (those of different documents too, except between writes of this Store
// that commit concurrently, whose own updates of the cache may cross). A
// reload after the watch fell behind etcd's compaction reports the
// differences it found. The first load reports nothing. observe runs with the cache locked: it must return at
// once and must not call the Store.
func WithObserver(observe func(Change)) Option { return func(o *options) { o.observe = observe } }

// WithRetries sets how many times an update is retried after losing a race
// with another writer (default DefaultRetries).
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }

// WithClock sets the clock used for CreatedAt/UpdatedAt.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Store is the framework's state. Its methods are safe for concurrent use.
type Store struct {
	client *clientv3.Client
	keys   keys
	opts   options
	cache  *cache

	leader atomic.Pointer[Leadership]
	// confirmedAt is when etcd last answered (unix nanoseconds): a load,
	// a commit, a watch event or the probe. See Stale.
	confirmedAt atomic.Int64

	cancel    context.CancelFunc
	done      chan struct{} // closed when the watch loop has exited
	probeDone chan struct{} // closed when the probe loop has exited
	closeOnce sync.Once
}

// New loads every document of framework into the cache and starts watching
// for changes. ctx bounds the load only: the watch runs until Close, which
// must be called to stop it and to release the leader session. A stored
// document that cannot be decoded fails New with an error naming its key.
func New(ctx context.Context, client *clientv3.Client, framework string, opts ...Option) (*Store, error) {
	s, err := newStore(client, framework, opts...)
	if err != nil {
		return nil, err
	}
	rev, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.startWatch(rev)
	return s, nil
}

// startWatch starts the watch loop from rev. The watch does not take a
// caller's ctx on purpose: a timeout meant for the load must not silently
// freeze the cache later. Close stops it.
func (s *Store) startWatch(rev int64) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.watch(ctx, rev)
	go s.probe(ctx)
}

// probeEvery is how often the probe asks etcd for a linearizable read
// while nothing else showed that etcd answers: a quarter of the session
// TTL, so that the cache is known stale well before the leadership lapses.
func (s *Store) probeEvery() time.Duration {
	return min(max(s.opts.sessionTTL/4, 100*time.Millisecond), 2*time.Second)
}

// staleAfter is how long after etcd last answered the cache counts as
// stale: two probes missed or late.
func (s *Store) staleAfter() time.Duration { return 3 * s.probeEvery() }

// probe confirms, every probeEvery, that etcd answers, until ctx ends.
func (s *Store) probe(ctx context.Context) {
	defer close(s.probeDone)
	every := s.probeEvery()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(s.Confirmed()) < every {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := s.Ping(pctx)
		cancel()
		if err == nil {
			s.confirm()
		} else if ctx.Err() == nil {
			glog.V(1).Infof("statemgr: %v (reads are served from the cache as of %s)", err, s.Confirmed().Format(time.RFC3339Nano))
		}
	}
}

// confirm notes that etcd answered just now.
func (s *Store) confirm() { s.confirmedAt.Store(time.Now().UnixNano()) }

// Confirmed returns when etcd last answered this Store: the cache is known
// to hold every change made up to about then.
func (s *Store) Confirmed() time.Time { return time.Unix(0, s.confirmedAt.Load()) }

// Stale reports whether etcd has not answered for a while (it is down,
// frozen, cut off, or this process is starved): the cache may then miss
// changes made since Confirmed, and writes will fail or hang until etcd
// answers. Reads keep being served from the cache; callers should say they
// may be stale, and should not act on them.
func (s *Store) Stale() bool {
	return time.Since(s.Confirmed()) > s.staleAfter()
}

func newStore(client *clientv3.Client, framework string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("statemgr: nil etcd client")
	}
	k, err := newKeys(framework)
	if err != nil {
		return nil, fmt.Errorf("statemgr: %w", err)
	}
	o := options{sessionTTL: DefaultSessionTTL, retries: DefaultRetries, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.identity == "" {
		host, _ := os.Hostname()
		o.identity = host + ":" + strconv.Itoa(os.Getpid())
	}
	if o.sessionTTL <= 0 || o.retries < 1 || o.now == nil {
		return nil, fmt.Errorf("statemgr: invalid options (session TTL %v, retries %d)", o.sessionTTL, o.retries)
	}
	c := newCache(k)
	c.observe = o.observe
	return &Store{client: client, keys: k, opts: o, cache: c, done: make(chan struct{}), probeDone: make(chan struct{})}, nil
}

// load reads every key of the framework and replaces the cache with them,
// returning the revision the cache now reflects.
func (s *Store) load(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, s.keys.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("statemgr: load %s: %w", s.keys.prefix, err)
	}
	rev := resp.Header.Revision
	fresh := newCache(s.keys)
	for _, kv := range resp.Kvs {
		if err := fresh.putLocked(string(kv.Key), kv.Value, kv.ModRevision); err != nil {
			return 0, fmt.Errorf("statemgr: load: %w", err)
		}
	}
	fresh.rev = rev
	s.cache.replace(fresh, rev)
	s.confirm()
	glog.V(1).Infof("statemgr: loaded %d keys of %s at revision %d", len(resp.Kvs), s.keys.prefix, rev)
	return rev, nil
}

// Close stops the watch and ends the leader session (revoking its lease, so
// another scheduler can take over at once). It is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
			<-s.probeDone
		}
		if l := s.leader.Load(); l != nil {
			err = l.close()
		}
	})
	return err
}

// Instance returns a copy of the named instance, without its tasks.
func (s *Store) Instance(name string) (*stateful.Instance, error) {
	inst, ok := s.cache.instance(name)
	if !ok {
		return nil, fmt.Errorf("instance %q: %w", name, ErrNotFound)
	}
	return inst, nil
}

// InstanceWithTasks returns a copy of the named instance with Tasks filled,
// ordered by ordinal.
func (s *Store) InstanceWithTasks(name string) (*stateful.Instance, error) {
	inst, ok := s.cache.instanceWithTasks(name)
	if !ok {
		return nil, fmt.Errorf("instance %q: %w", name, ErrNotFound)
	}
	return inst, nil
}

// Instances returns copies of every instance, without tasks, ordered by name.
func (s *Store) Instances() []*stateful.Instance { return s.cache.instanceList() }

// Tasks returns copies of the named instance's tasks, ordered by ordinal
// (none for an unknown instance).
func (s *Store) Tasks(name string) []*stateful.Task { return s.cache.taskList(name) }

// AllTasks returns copies of every task, ordered by instance and ordinal.
func (s *Store) AllTasks() []*stateful.Task { return s.cache.allTasks() }

// Task returns a copy of one task.
func (s *Store) Task(name string, ordinal int) (*stateful.Task, error) {
	t, _, _, ok := s.cache.task(name, ordinal)
	if !ok {
		return nil, fmt.Errorf("task %s: %w", stateful.TaskName(name, ordinal), ErrNotFound)
	}
	return t, nil
}

// TaskByID returns a copy of the task document of the ordinal a Mesos task
// ID names, whatever its current attempt: compare the returned TaskID with
// id to tell an update about an older attempt.
func (s *Store) TaskByID(id string) (*stateful.Task, error) {
	tid, err := stateful.ParseTaskID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return s.Task(tid.Instance, tid.Ordinal)
}

// FrameworkID returns the stored Mesos framework ID, "" if none.
func (s *Store) FrameworkID() string {
	id, _ := s.cache.framework()
	return id
}

// Ping checks that etcd answers a linearizable read (for health checks).
// The cache keeps serving reads while etcd is away, so reads alone cannot
// tell.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.Get(ctx, s.keys.frameworkID(), clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("statemgr: etcd unreachable: %w", err)
	}
	return nil
}
