package statemgr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang/glog"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Backoff between watch restarts after an error.
const (
	watchBackoffMin = 50 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

var errWatchClosed = errors.New("watch channel closed")

// watch is the cache's single follower: it applies every change under the
// framework's prefix after rev, restarts the watch when it breaks, and
// reloads everything when etcd has compacted the revisions it needs. It
// returns when ctx ends.
func (s *Store) watch(ctx context.Context, rev int64) {
	defer close(s.done)
	backoff := watchBackoffMin
	for {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		next, progressed, err := s.follow(wctx, rev)
		cancel()
		rev = next
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = watchBackoffMin
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			glog.Warningf("statemgr: watch of %s fell behind compaction at revision %d; reloading", s.keys.prefix, rev)
			loaded, lerr := s.load(ctx)
			if lerr == nil {
				rev = loaded
				continue
			}
			err = lerr
		}
		glog.Warningf("statemgr: watch of %s from revision %d: %v; retrying in %v", s.keys.prefix, rev+1, err, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// follow applies watch responses from rev+1 until the watch ends, returning
// the last revision applied, whether anything was applied, and why it ended.
func (s *Store) follow(ctx context.Context, rev int64) (int64, bool, error) {
	progressed := false
	wch := s.client.Watch(ctx, s.keys.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return rev, progressed, fmt.Errorf("compacted at %d: %w", resp.CompactRevision, rpctypes.ErrCompacted)
		}
		if err := resp.Err(); err != nil {
			return rev, progressed, err
		}
		s.confirm()
		if len(resp.Events) == 0 {
			continue
		}
		rev = s.apply(resp.Events)
		progressed = true
	}
	if err := ctx.Err(); err != nil {
		return rev, progressed, err
	}
	return rev, progressed, errWatchClosed
}

// apply writes a batch of watch events into the cache and returns the
// revision of the last one.
func (s *Store) apply(events []*clientv3.Event) int64 {
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	var last int64
	for _, ev := range events {
		key := string(ev.Kv.Key)
		switch ev.Type {
		case mvccpb.PUT:
			if err := c.putLocked(key, ev.Kv.Value, ev.Kv.ModRevision); err != nil {
				// Someone wrote a document we cannot read. Keeping the
				// old value would hide the change; dropping it would hide
				// the instance. Keep the old value and say so loudly.
				glog.Errorf("statemgr: ignoring undecodable change: %v", err)
			}
			last = ev.Kv.ModRevision
		case mvccpb.DELETE:
			c.delLocked(key, ev.Kv.ModRevision)
			last = ev.Kv.ModRevision
		}
		glog.V(2).Infof("statemgr: watch %s %s at revision %d", ev.Type, key, ev.Kv.ModRevision)
	}
	// Events arrive in revision order and a revision is never split across
	// responses, so nothing at or below last can come any more.
	c.pruneTombsLocked(last)
	return last
}
