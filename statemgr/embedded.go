package statemgr

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/golang/glog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.uber.org/zap"

	"github.com/mesos-stateful/stateful/internal/secretfile"
)

// DefaultEmbeddedStartTimeout bounds StartEmbedded when ctx has no earlier
// deadline.
const DefaultEmbeddedStartTimeout = time.Minute

// embeddedCloseTimeout bounds the stop of the server. etcd's Close alone
// blocks forever on a server that never became ready (closeEtcd works
// around the one such wait known); past this, Close returns an error and
// leaves the rest of the stop to the process's exit.
const embeddedCloseTimeout = 15 * time.Second

// Embedded is a single-member etcd server running inside this process, for
// --etcd=embedded and for tests. It listens on loopback only, on ports the
// kernel picks, and keeps its data in the directory given to StartEmbedded,
// so a later StartEmbedded on the same directory sees the same state.
//
// Loopback is not enough: any local user (or a task on this host) could
// connect and read every instance's env. So etcd's authentication is on:
// the only user is root, whose password is generated at the first start and
// kept in PasswordFile (mode 0600, in the 0700 data directory). A unix
// socket was the alternative; it would leave the data open to anything
// running as this user (including process-runtime tasks), and etcd's peer
// listener would still need TCP.
type Embedded struct {
	etcd         *embed.Etcd
	client       *clientv3.Client
	endpoints    []string
	passwordFile string
	closeOnce    sync.Once
}

// EmbeddedUser is the etcd user the embedded server's clients authenticate
// as.
const EmbeddedUser = "root"

// PasswordFileName is the file in the embedded etcd's data directory that
// holds EmbeddedUser's password.
const PasswordFileName = "root-password"

// StartEmbedded starts an embedded etcd keeping its data in dir (created
// 0700 if missing) and returns once it serves clients. etcd's own log goes,
// at level warn and above, to dir/etcd.log rather than to the process's
// output. Either everything is started or, on error, nothing is left running
// (but for a server that would not stop within embeddedCloseTimeout, which
// the error says).
//
// It returns within the earlier of ctx's deadline and
// DefaultEmbeddedStartTimeout, or soon after ctx is cancelled, whatever
// state dir is in. A member that a crash during its very first start left
// without anything ever committed is moved aside (to dir/member.never-
// committed-<time>, logged) and a fresh one is started: it cannot hold
// data. A directory in use by another process is an error at once.
func StartEmbedded(ctx context.Context, dir string) (_ *Embedded, err error) {
	if dir == "" {
		return nil, errors.New("start embedded etcd: empty data directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultEmbeddedStartTimeout)
		defer cancel()
	}
	if err := checkNotInUse(dir); err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	moved, err := setAsideNeverCommitted(dir)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	if moved != "" {
		glog.Warningf("statemgr: embedded etcd in %s: the member had never committed anything (a crash during its first start); moved it to %s and starting a fresh one", dir, moved)
	}
	passwordFile := filepath.Join(dir, PasswordFileName)
	password, err := secretfile.LoadOrCreate(passwordFile)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	cfg := embed.NewConfig()
	// The password is 192 random bits: bcrypt's cost buys nothing against
	// guessing it, and every client connection pays it.
	cfg.BcryptCost = 4 // bcrypt.MinCost
	cfg.Name = "stateful"
	cfg.Dir = dir
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// etcd's logger would create its log 0644; what it logs is no one
	// else's business.
	logFile, err := os.OpenFile(cfg.LogOutputs[0], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	logFile.Close()
	if err := os.Chmod(cfg.LogOutputs[0], 0o600); err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	// Port 0 everywhere: the kernel picks free ports, so parallel tests and a
	// running framework never collide. The member's recorded peer URL stays
	// the constant ":0" URL, so a restart on the same directory with other
	// actual ports is the same member.
	loopback := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loopback}
	cfg.AdvertiseClientUrls = []url.URL{loopback}
	cfg.ListenPeerUrls = []url.URL{loopback}
	cfg.AdvertisePeerUrls = []url.URL{loopback}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Status updates rewrite task documents all day; keep an hour of history
	// for watchers and compact the rest so the database does not grow
	// without bound.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"

	e, err := startEtcd(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			if cerr := closeEtcd(e); cerr != nil {
				err = fmt.Errorf("%w; %v", err, cerr)
			}
		}
	}()

	select {
	case <-e.Server.ReadyNotify():
	case <-e.Server.StopNotify():
		return nil, fmt.Errorf("start embedded etcd in %s: server stopped before it was ready (see %s)", dir, cfg.LogOutputs[0])
	case err := <-e.Err():
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	case <-ctx.Done():
		return nil, fmt.Errorf("start embedded etcd in %s: not ready: %w; its log is %s; if no other process uses this directory and it holds nothing you need, move it aside and start again", dir, ctx.Err(), cfg.LogOutputs[0])
	}

	endpoints := make([]string, 0, len(e.Clients))
	for _, l := range e.Clients {
		endpoints = append(endpoints, "http://"+l.Addr().String())
	}
	if err := enableAuth(ctx, e, endpoints, password); err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: enabling authentication: %w", dir, err)
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      e.GetLogger().Named("client"),
		Username:    EmbeddedUser,
		Password:    password,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: client: %w", dir, err)
	}
	return &Embedded{etcd: e, client: client, endpoints: endpoints, passwordFile: passwordFile}, nil
}

// enableAuth turns etcd's authentication on with EmbeddedUser and password,
// unless it is on already (every start after the first). Each step is
// repeatable, so a crash half-way is finished by the next start.
func enableAuth(ctx context.Context, e *embed.Etcd, endpoints []string, password string) error {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      e.GetLogger().Named("auth-setup"),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.AuthStatus(ctx)
	if errors.Is(err, rpctypes.ErrUserEmpty) {
		return nil // on: even the status wants a user
	}
	if err != nil {
		return fmt.Errorf("auth status: %w", err)
	}
	if st.Enabled {
		return nil
	}
	if _, err := c.UserAdd(ctx, EmbeddedUser, password); errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		_, err = c.UserChangePassword(ctx, EmbeddedUser, password)
		if err != nil {
			return fmt.Errorf("setting the %s password: %w", EmbeddedUser, err)
		}
	} else if err != nil {
		return fmt.Errorf("adding user %s: %w", EmbeddedUser, err)
	}
	if _, err := c.UserGrantRole(ctx, EmbeddedUser, "root"); err != nil {
		return fmt.Errorf("granting %s the root role: %w", EmbeddedUser, err)
	}
	if _, err := c.AuthEnable(ctx); err != nil {
		return fmt.Errorf("auth enable: %w", err)
	}
	return nil
}

// PasswordFile is the file holding EmbeddedUser's password, for another
// client of this server (e.g. a second scheduler given --etcd-user and
// --etcd-password-file).
func (e *Embedded) PasswordFile() string { return e.passwordFile }

// Client returns a client connected to the embedded server. It belongs to
// the Embedded: Close closes it.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// Endpoints returns the client URLs, e.g. ["http://127.0.0.1:41871"].
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Err reports a fatal error of the running server; it is closed once the
// server has stopped.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close closes the client and stops the server, waiting for it to finish.
// It is safe to call more than once and from several goroutines.
func (e *Embedded) Close() error {
	var err error
	e.closeOnce.Do(func() {
		if cerr := e.client.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
			err = fmt.Errorf("close embedded etcd client: %w", cerr)
		}
		err = errors.Join(err, closeEtcd(e.etcd))
	})
	return err
}

// startEtcd runs embed.StartEtcd, which takes no context and can block
// (opening a database another process holds waits for its lock forever),
// so that it returns when ctx ends. A server that starts after that is
// closed in the background.
func startEtcd(ctx context.Context, cfg *embed.Config) (*embed.Etcd, error) {
	type result struct {
		e   *embed.Etcd
		err error
	}
	started := make(chan result, 1)
	go func() {
		e, err := embed.StartEtcd(cfg)
		started <- result{e, err}
	}()
	select {
	case r := <-started:
		return r.e, r.err
	case <-ctx.Done():
		// Owned by nobody once we return: it ends when StartEtcd does,
		// or with the process.
		go func() {
			if r := <-started; r.err == nil {
				_ = closeEtcd(r.e)
			}
		}()
		return nil, fmt.Errorf("not started: %w", ctx.Err())
	}
}

// closeEtcd stops e, waiting at most embeddedCloseTimeout.
func closeEtcd(e *embed.Etcd) error {
	done := make(chan struct{})
	// If Close blocks for good, this goroutine lives until the process
	// exits; the caller is told, rather than blocked with it.
	go func() {
		select {
		case <-e.Server.ReadyNotify():
		default:
			// etcd's Close waits for the client servers, which a server
			// that never became ready only gives up on once it is
			// stopping: stop it first.
			e.Server.HardStop()
		}
		e.Close()
		close(done)
	}()
	t := time.NewTimer(embeddedCloseTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("embedded etcd did not stop within %v; it is left to stop with the process", embeddedCloseTimeout)
	}
}

// checkNotInUse fails when another process holds the lock of dir's
// database: etcd would wait for it forever.
func checkNotInUse(dir string) error {
	db := filepath.Join(dir, "member", "snap", "db")
	f, err := os.Open(db)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// bbolt takes an exclusive flock; try the same without waiting.
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		return fmt.Errorf("%s is locked: another process (an earlier framework still running?) uses this data directory; stop it first", db)
	case err != nil:
		return fmt.Errorf("check %s: %w", db, err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// setAsideNeverCommitted renames dir/member when it provably never
// committed anything: a WAL whose hard state has Commit 0 and that holds
// no entries, and no snapshot. A kill -9 during the very first start,
// after etcd created its WAL and before raft wrote to it, leaves exactly
// that; etcd restarts it as a member of no cluster, which never becomes
// ready. Nothing was ever written through such a member (a single member
// commits every write), so a fresh one loses nothing; the old one is kept.
// It returns where the member went, or "" if it was left alone.
func setAsideNeverCommitted(dir string) (string, error) {
	member := filepath.Join(dir, "member")
	walDir := filepath.Join(member, "wal")
	if !wal.Exist(walDir) {
		return "", nil
	}
	snaps, err := filepath.Glob(filepath.Join(member, "snap", "*.snap"))
	if err != nil || len(snaps) > 0 {
		return "", err
	}
	lg := zap.NewNop()
	w, err := wal.OpenForRead(lg, walDir, walpb.Snapshot{})
	if err != nil {
		// Not ours to judge: etcd reports (or repairs) what it can read.
		return "", nil
	}
	_, hs, ents, err := w.ReadAll()
	w.Close()
	if err != nil || hs.Commit != 0 || len(ents) != 0 {
		return "", nil
	}
	aside := fmt.Sprintf("%s.never-committed-%s", member, time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(member, aside); err != nil {
		return "", fmt.Errorf("move aside a member that never committed anything: %w", err)
	}
	return aside, nil
}
