package statemgr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/golang/glog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leadership is one term of this Store as the elected leader. While it
// lasts, every write of the Store carries the fence
// CreateRevision(Key()) == Rev(): once the term ends (session lost, Resign,
// Close) etcd refuses the Store's writes, even those already in flight, and
// another Store can be elected.
type Leadership struct {
	session  *concurrency.Session
	election *concurrency.Election
	key      string
	rev      int64

	closeOnce sync.Once
	closeErr  error
}

// Done is closed when the term has ended: the session's lease was lost
// (etcd unreachable for longer than the TTL, or the lease revoked) or the
// Store resigned or closed. A scheduler must stop acting as leader then.
func (l *Leadership) Done() <-chan struct{} { return l.session.Done() }

// Key returns this term's election key.
func (l *Leadership) Key() string { return l.key }

// Rev returns the creation revision of this term's election key: the fence.
func (l *Leadership) Rev() int64 { return l.rev }

func (l *Leadership) close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var rerr error
		select {
		case <-l.session.Done():
			// The lease is gone and the key with it: nothing to resign.
		default:
			rerr = l.election.Resign(ctx)
		}
		// Close revokes the lease, which deletes the key even if Resign
		// failed. A lease that already expired is not an error.
		cerr := l.session.Close()
		if errors.Is(cerr, rpctypes.ErrLeaseNotFound) {
			cerr = nil
		}
		if l.session.Client().Ctx().Err() != nil {
			// The client was closed first (the embedded etcd went down with
			// it): nothing can be revoked, and the lease expires on its own
			// within the TTL.
			rerr, cerr = nil, nil
		}
		if rerr != nil || cerr != nil {
			l.closeErr = fmt.Errorf("statemgr: resign leadership: %w", errors.Join(rerr, cerr))
		}
	})
	return l.closeErr
}

// Campaign blocks until this Store is the elected leader of its framework
// (or ctx ends) and returns the term. From then on the Store's writes are
// fenced by the term. Calling Campaign while a term is live returns that
// term.
func (s *Store) Campaign(ctx context.Context) (*Leadership, error) {
	if l := s.leader.Load(); l != nil {
		select {
		case <-l.Done():
		default:
			return l, nil
		}
	}
	if l := s.leader.Load(); l != nil {
		// A term that ended while etcd was away could not revoke its
		// lease, and an etcd restart extends it: its key would keep this
		// campaign waiting behind our own old term for up to a TTL.
		if _, err := s.client.Revoke(ctx, l.session.Lease()); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			glog.V(1).Infof("statemgr: campaign: revoke the lease of the ended term: %v", err)
		}
	}
	ttl := int(math.Ceil(s.opts.sessionTTL.Seconds()))
	// The lease is granted here, under ctx: NewSession would wait for an
	// unreachable etcd without end, deaf to ctx. The session itself lives
	// until Resign/Close, not until ctx ends: ctx only bounds the wait for
	// leadership.
	grant, err := s.client.Grant(ctx, int64(ttl))
	if err != nil {
		return nil, fmt.Errorf("statemgr: campaign: lease: %w", err)
	}
	session, err := concurrency.NewSession(s.client, concurrency.WithTTL(ttl), concurrency.WithLease(grant.ID))
	if err != nil {
		return nil, fmt.Errorf("statemgr: campaign: session: %w", err)
	}
	election := concurrency.NewElection(session, s.keys.leader())
	if err := election.Campaign(ctx, s.opts.identity); err != nil {
		session.Close()
		return nil, fmt.Errorf("statemgr: campaign: %w", err)
	}
	l := &Leadership{session: session, election: election, key: election.Key(), rev: election.Rev()}

	// Campaign can return after the session's lease expired while it
	// waited; only a key still there with our revision is leadership.
	resp, err := s.client.Get(ctx, l.key)
	if err == nil && (len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != l.rev) {
		err = ErrNotLeader
	}
	if err != nil {
		l.close()
		return nil, fmt.Errorf("statemgr: campaign: check leadership: %w", err)
	}
	// Catch up before acting: the cache may lag behind what an earlier
	// leader wrote (this Store may have been cut off from etcd, its watch
	// behind). A load at a revision after our election holds every write
	// of every earlier term, whose fences failed before we were elected.
	if _, err := s.load(ctx); err != nil {
		l.close()
		return nil, fmt.Errorf("statemgr: campaign: catch up: %w", err)
	}
	if old := s.leader.Swap(l); old != nil {
		old.close()
	}
	glog.Infof("statemgr: elected leader of %s as %q (key %s, revision %d)", s.keys.prefix, s.opts.identity, l.key, l.rev)
	return l, nil
}

// Resign ends the current term, letting another Store be elected. The
// Store's writes fail with ErrNotLeader until it campaigns again.
func (s *Store) Resign() error {
	l := s.leader.Load()
	if l == nil {
		return nil
	}
	return l.close()
}

// Leader returns the identity stored by the current leader, or ErrNotFound
// when no one leads.
func (s *Store) Leader(ctx context.Context) (string, error) {
	resp, err := s.client.Get(ctx, s.keys.leader()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("statemgr: leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("statemgr: leader: %w", ErrNotFound)
	}
	return string(resp.Kvs[0].Value), nil
}

// fence returns the comparison every write must carry, or ErrNotLeader when
// this Store holds no live term.
func (s *Store) fence() (clientv3.Cmp, error) {
	l := s.leader.Load()
	if l == nil {
		return clientv3.Cmp{}, ErrNotLeader
	}
	select {
	case <-l.Done():
		return clientv3.Cmp{}, fmt.Errorf("leader session lost: %w", ErrNotLeader)
	default:
	}
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev), nil
}
