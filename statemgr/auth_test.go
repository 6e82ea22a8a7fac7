package statemgr_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mesos-stateful/stateful/statemgr"
	"github.com/mesos-stateful/stateful/statemgr/statemgrtest"
)

// TestEmbeddedEtcdRequiresAuthentication: another client of the embedded
// etcd (another local user, a task) reads nothing without the root
// password, which is kept 0600 in the data directory and survives a
// restart.
func TestEmbeddedEtcdRequiresAuthentication(t *testing.T) {
	dir := t.TempDir()
	e := statemgrtest.StartEtcdIn(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Client().Put(ctx, "/stateful/stateful/instances/secret", `{"env":{"PASSWORD":"x"}}`); err != nil {
		t.Fatal(err)
	}

	st, err := os.Stat(e.PasswordFile())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || filepath.Dir(e.PasswordFile()) != dir {
		t.Errorf("password file %s mode %04o, want 0600 in %s", e.PasswordFile(), st.Mode().Perm(), dir)
	}

	stranger, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if resp, err := stranger.Get(ctx, "/stateful/", clientv3.WithPrefix()); err == nil {
		t.Fatalf("a client without credentials read %d keys", len(resp.Kvs))
	} else if !errors.Is(err, rpctypes.ErrUserEmpty) && !strings.Contains(err.Error(), "user name is empty") {
		t.Fatalf("a client without credentials: %v, want etcd's %q", err, rpctypes.ErrUserEmpty)
	}
	if _, err := stranger.Put(ctx, "/stateful/x", "y"); err == nil {
		t.Fatal("a client without credentials wrote")
	}
	if _, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second,
		Username: statemgr.EmbeddedUser, Password: "guess"}); err == nil {
		t.Fatal("a client with a wrong password connected")
	}
	password, err := os.ReadFile(e.PasswordFile())
	if err != nil {
		t.Fatal(err)
	}
	operator, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second,
		Username: statemgr.EmbeddedUser, Password: strings.TrimSpace(string(password))})
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()
	if resp, err := operator.Get(ctx, "/stateful/", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("with the password: %v", err)
	}

	// A restart on the same data keeps authentication and the password.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	again := statemgrtest.StartEtcdIn(t, dir)
	if resp, err := again.Client().Get(ctx, "/stateful/", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after a restart: %v", err)
	}
}
