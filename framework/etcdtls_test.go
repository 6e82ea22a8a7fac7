package framework

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/mesos-stateful/stateful/internal/testcert"
)

// TestExternalEtcdOverTLS connects to an etcd that serves https and
// requires client certificates, as --etcd with --etcd-ca, --etcd-cert and
// --etcd-key does; without the client certificate, or without the CA, the
// connection fails.
func TestExternalEtcdOverTLS(t *testing.T) {
	ca := testcert.NewCA(t, "etcd")
	server := ca.Server(t, "etcd-server")
	client := ca.Client(t, "scheduler")

	dir := t.TempDir()
	ecfg := embed.NewConfig()
	ecfg.Name = "tls"
	ecfg.Dir = filepath.Join(dir, "etcd")
	ecfg.LogLevel = "error"
	ecfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	clientURL := url.URL{Scheme: "https", Host: "127.0.0.1:0"}
	peerURL := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	ecfg.ListenClientUrls, ecfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	ecfg.ListenPeerUrls, ecfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	ecfg.InitialCluster = ecfg.InitialClusterFromName(ecfg.Name)
	ecfg.ClientTLSInfo.CertFile = server.CertFile
	ecfg.ClientTLSInfo.KeyFile = server.KeyFile
	ecfg.ClientTLSInfo.TrustedCAFile = ca.CertFile
	ecfg.ClientTLSInfo.ClientCertAuth = true
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	endpoint := "https://" + e.Clients[0].Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := NewConfig()
	cfg.Etcd = endpoint
	cfg.EtcdCA, cfg.EtcdCert, cfg.EtcdKey = ca.CertFile, client.CertFile, client.KeyFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, closeEtcd, err := openEtcd(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEtcd()
	if _, err := c.Put(ctx, "/stateful/tls", "ok"); err != nil {
		t.Fatalf("put with a client certificate: %v", err)
	}

	for name, change := range map[string]func(*Config){
		"no client certificate": func(c *Config) { c.EtcdCert, c.EtcdKey = "", "" },
		"no CA":                 func(c *Config) { c.EtcdCA = "" },
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			change(&bad)
			short, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			c, closeEtcd, err := openEtcd(short, bad)
			if err != nil {
				return // refused at once
			}
			defer closeEtcd()
			if _, err := c.Get(short, "/stateful/tls"); err == nil {
				t.Fatal("read the TLS etcd")
			}
		})
	}

	t.Run("world-readable key", func(t *testing.T) {
		os.Chmod(client.KeyFile, 0o644)
		defer os.Chmod(client.KeyFile, 0o600)
		if _, _, err := openEtcd(ctx, cfg); err == nil || !strings.Contains(err.Error(), client.KeyFile) {
			t.Fatalf("a world-readable --etcd-key: %v, want an error naming it", err)
		}
	})
}
