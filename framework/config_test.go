package framework

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewConfigIsValid(t *testing.T) {
	cfg := NewConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	// DESIGN §7's defaults.
	if cfg.HTTPAddr != "127.0.0.1:5656" || cfg.Master != "local" || cfg.LocalAgents != 3 || cfg.Etcd != "embedded" ||
		cfg.DataDir != "./stateful-data" || cfg.Runtime != "auto" {
		t.Errorf("defaults differ from DESIGN §7: %+v", cfg)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"http without port", func(c *Config) { c.HTTPAddr = "localhost" }, "--http"},
		{"http bad port", func(c *Config) { c.HTTPAddr = "127.0.0.1:99999" }, "--http"},
		{"master not a URL", func(c *Config) { c.Master = "mesos-master:5050" }, "--master"},
		{"master one bad of two", func(c *Config) { c.Master = "http://m1:5050,ftp://m2" }, "--master"},
		{"no local agents", func(c *Config) { c.LocalAgents = 0 }, "--local-agents"},
		{"local port", func(c *Config) { c.LocalPort = -1 }, "--local-port"},
		{"local resources", func(c *Config) { c.LocalResources = "cpus:lots" }, "--local-resources"},
		{"etcd not a URL", func(c *Config) { c.Etcd = "etcd-1:2379" }, "--etcd"},
		{"empty data dir", func(c *Config) { c.DataDir = " " }, "--data-dir"},
		{"runtime", func(c *Config) { c.Runtime = "podman" }, "--runtime"},
		{"empty name", func(c *Config) { c.Name = "" }, "--name"},
		{"name with a slash", func(c *Config) { c.Name = "a/b" }, "--name"},
		{"empty role", func(c *Config) { c.Role = "" }, "--role"},
		{"zero failover timeout", func(c *Config) { c.FailoverTimeout = 0 }, "--failover-timeout"},
		{"relative volume root", func(c *Config) { c.VolumeRoot = "volumes" }, "--volume-root"},
		{"root volume root", func(c *Config) { c.VolumeRoot = "/" }, "--volume-root"},
		{"executor mode", func(c *Config) { c.ExecutorMode = "fetch" }, "--executor-mode"},
		{"executor http", func(c *Config) { c.ExecutorMode = ExecutorServe; c.ExecutorHTTP = "5657" }, "--executor-http"},
		{"advertise with a path", func(c *Config) { c.ExecutorMode = ExecutorServe; c.Advertise = "host/x" }, "--advertise"},
		{"no workers", func(c *Config) { c.Workers = 0 }, "--workers"},
		{"sticky wait", func(c *Config) { c.Creator.StickyWait = 0 }, "sticky wait"},
		{"callback timeout", func(c *Config) { c.Creator.CallbackTimeout = -time.Second }, "callback timeout"},
		{"executor resources", func(c *Config) { c.Creator.ExecutorMem = -1 }, "executor resources"},
		{"retry backoffs", func(c *Config) { c.RetryMaxBackoff = time.Millisecond }, "retry max backoff"},
		{"leader TTL", func(c *Config) { c.LeaderTTL = 0 }, "leader TTL"},
		{"stats interval", func(c *Config) { c.ExecutorStatsInterval = -time.Second }, "stats interval"},
		{"offers", func(c *Config) { c.Offers.DeclineRefuse = 0 }, "offers"},
		{"api", func(c *Config) { c.API.RequestTimeout = 0 }, "api"},
		{"mesos", func(c *Config) { c.Mesos.MissedHeartbeats = 0 }, "mesos"},
		{"status batch size", func(c *Config) { c.StatusBatch.Size = 0 }, "status batch"},
		{"status batch linger", func(c *Config) { c.StatusBatch.Linger = -time.Millisecond }, "status batch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := NewConfig()
			c.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, c.want)
			}
		})
	}
}

func TestValidateAcceptsRealDeployment(t *testing.T) {
	cfg := NewConfig()
	cfg.Master = "http://m1:5050,http://m2:5050"
	cfg.Etcd = "http://etcd-1:2379,http://etcd-2:2379"
	cfg.LocalAgents = 0 // unused with a real master
	cfg.Runtime = "docker"
	cfg.VolumeRoot = "/srv/volumes"
	cfg.Advertise = "scheduler.example.com"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFlagsAndConfigFile(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg := NewConfig()
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--http=127.0.0.1:7000", "--failover-timeout=1h"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(file, []byte(`{"http": "127.0.0.1:6000", "master": "http://mesos:5050", "local-agents": 5,
		"etcd": "embedded", "runtime": "process", "name": "redis", "failover-timeout": "2h"}`), 0o644)
	if err := LoadFile(fs, file); err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:7000" || cfg.FailoverTimeout != time.Hour {
		t.Errorf("command-line flags must win over the file: http %s, failover %v", cfg.HTTPAddr, cfg.FailoverTimeout)
	}
	if cfg.Master != "http://mesos:5050" || cfg.LocalAgents != 5 || cfg.Runtime != "process" || cfg.Name != "redis" {
		t.Errorf("file settings not applied: %+v", cfg)
	}

	for name, content := range map[string]string{
		"unknown key":  `{"colour": "red"}`,
		"not JSON":     `{"http": `,
		"wrong type":   `{"local-agents": [1]}`,
		"bad value":    `{"local-agents": "many"}`,
		"config again": `{"config": "other.json"}`,
	} {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg := NewConfig()
			cfg.RegisterFlags(fs)
			path := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(path, []byte(content), 0o644)
			if err := LoadFile(fs, path); err == nil {
				t.Fatalf("LoadFile accepted %s", content)
			}
		})
	}
	if err := LoadFile(fs, filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadFile accepted a missing file")
	}
}

func TestDesignFlagsExist(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg := NewConfig()
	cfg.RegisterFlags(fs)
	for _, name := range []string{"http", "master", "local-agents", "etcd", "data-dir", "runtime", "name", "role", "principal", "failover-timeout"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s of DESIGN §7 is missing", name)
		}
	}
}

// TestNoAuthOnlyOnLoopback: an API other hosts can reach is refused without
// tokens, naming the flags that would make it acceptable.
func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{":5656", "0.0.0.0:5656", "[::]:5656", "10.1.2.3:5656", "scheduler.example.com:5656"} {
		cfg := NewConfig()
		cfg.HTTPAddr = addr
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "--insecure-no-auth") || !strings.Contains(err.Error(), "--api-tokens") {
			t.Errorf("--http %s without tokens: %v, want a refusal naming --api-tokens and --insecure-no-auth", addr, err)
		}
		cfg.InsecureNoAuth = true
		if err := cfg.Validate(); err != nil {
			t.Errorf("--http %s --insecure-no-auth: %v", addr, err)
		}
		cfg.InsecureNoAuth, cfg.APITokens = false, "/etc/stateful/tokens"
		if err := cfg.Validate(); err != nil {
			t.Errorf("--http %s --api-tokens: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:5656", "127.9.9.9:0", "[::1]:5656", "localhost:5656"} {
		cfg := NewConfig()
		cfg.HTTPAddr = addr
		if err := cfg.Validate(); err != nil {
			t.Errorf("--http %s without tokens: %v", addr, err)
		}
	}
	cfg := NewConfig()
	cfg.TLSCert = "cert.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("--tls-cert without --tls-key: %v", err)
	}
	cfg = NewConfig()
	cfg.TLSClientCA = "ca.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-client-ca") {
		t.Errorf("--tls-client-ca without a certificate: %v", err)
	}
}

func TestBinaryAddrs(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct{ listen, advertise, wantListen, wantAdvertise string }{
		{"", "", "127.0.0.1:5657", "127.0.0.1:5657"},
		{"", "sched.example.com", "sched.example.com:5657", "sched.example.com:5657"},
		{"", "10.0.0.5:7000", "10.0.0.5:7000", "10.0.0.5:7000"},
		{"10.0.0.5:6000", "", "10.0.0.5:6000", "10.0.0.5:6000"},
		{":6000", "", ":6000", host + ":6000"},
		{"0.0.0.0:6000", "sched", "0.0.0.0:6000", "sched:6000"},
	} {
		listen, advertise, err := binaryAddrs(tc.listen, tc.advertise)
		if err != nil || listen != tc.wantListen || advertise != tc.wantAdvertise {
			t.Errorf("--executor-http %q --advertise %q: listen %q, advertise %q, %v; want %q, %q",
				tc.listen, tc.advertise, listen, advertise, err, tc.wantListen, tc.wantAdvertise)
		}
	}
}
