package framework

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mesos-stateful/stateful/creator"
	"github.com/mesos-stateful/stateful/httplib"
	"github.com/mesos-stateful/stateful/localmesos"
	"github.com/mesos-stateful/stateful/maintainer"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/offermgr"
)

// Values of Config.Master, Config.Etcd and Config.ExecutorMode that are not
// addresses.
const (
	MasterLocal  = "local"
	EtcdEmbedded = "embedded"

	ExecutorAuto  = "auto"
	ExecutorPath  = "path"
	ExecutorServe = "serve"
)

// Defaults of NewConfig (DESIGN §7).
const (
	DefaultHTTPAddr        = httplib.DefaultAddr
	DefaultMaster          = MasterLocal
	DefaultLocalAgents     = localmesos.DefaultAgents
	DefaultEtcd            = EtcdEmbedded
	DefaultDataDir         = "./stateful-data"
	DefaultRuntime         = "auto"
	DefaultName            = "stateful"
	DefaultRole            = "*"
	DefaultFailoverTimeout = mesoslib.DefaultFailoverTimeout
	DefaultExecutorHTTP    = "" // the --advertise address, else 127.0.0.1:DefaultExecutorPort
	DefaultExecutorPort    = "5657"
	DefaultWorkers         = 4
	DefaultResyncInterval  = time.Minute
	DefaultRetryBackoff    = 500 * time.Millisecond
	DefaultRetryMaxBackoff = time.Minute
	DefaultLeaderTTL       = 10 * time.Second
	DefaultShutdownGrace   = 15 * time.Second
)

// Config is everything a framework binary can be told. NewConfig gives the
// embedded defaults of DESIGN §7; each top-level field is also a flag (and a
// key of the --config file) of the same name as in the table there.
type Config struct {
	// HTTPAddr is where the REST API listens (--http). Its port may be 0
	// for any free one; APIReady then learns which.
	HTTPAddr string
	// APITokens is the file of the bearer tokens the REST API accepts
	// (--api-tokens; format in httplib.ParseTokens, mode 0600). Empty
	// turns authentication off, which Validate allows only on a loopback
	// HTTPAddr unless InsecureNoAuth is set (--insecure-no-auth).
	APITokens      string
	InsecureNoAuth bool
	// TLSCert and TLSKey make the REST API speak HTTPS (--tls-cert,
	// --tls-key, the key file mode 0600); TLSClientCA additionally requires
	// client certificates signed by a CA in that file (--tls-client-ca).
	TLSCert     string
	TLSKey      string
	TLSClientCA string
	// APIReady, if not nil, is called with the address the REST API
	// listens on (host:port, with the actual port) once it accepts
	// connections: after this scheduler was elected leader, before it may
	// be subscribed to Mesos. It is called from Run's goroutines, at most
	// once per Run, and must not block. It has no flag.
	APIReady func(addr string)
	// Master is "local" (an embedded localmesos cluster) or the URL of the
	// Mesos master, several separated by commas (--master).
	Master string
	// LocalAgents is how many agents the embedded cluster has
	// (--local-agents); LocalPort is its master's port, 0 for any free one
	// (--local-port); LocalResources are each agent's resources in Mesos'
	// --resources syntax (--local-resources).
	LocalAgents    int
	LocalPort      int
	LocalResources string
	// Etcd is "embedded" (an etcd inside this process, keeping its data in
	// DataDir/etcd) or the client URLs of an etcd cluster, separated by
	// commas (--etcd).
	Etcd string
	// EtcdCert, EtcdKey and EtcdCA are the client certificate, its key
	// (mode 0600) and the CA certificates of an external etcd served over
	// https (--etcd-cert, --etcd-key, --etcd-ca). EtcdUser and
	// EtcdPasswordFile (mode 0600) authenticate to it as an etcd user
	// (--etcd-user, --etcd-password-file).
	EtcdCert         string
	EtcdKey          string
	EtcdCA           string
	EtcdUser         string
	EtcdPasswordFile string
	// DataDir holds the embedded etcd's data, the embedded agents' work
	// directories and (locally) the tasks' volumes (--data-dir).
	DataDir string
	// Runtime is how executors run tasks: auto (docker if an engine
	// answers and the task names an image, else a process), docker or
	// process (--runtime).
	Runtime string
	// Name, Role and Principal are the framework's identity on Mesos; Name
	// also names its state in etcd (--name, --role, --principal).
	Name      string
	Role      string
	Principal string
	// SecretFile holds the secret the framework authenticates to the
	// Mesos master with, as Principal, over HTTP Basic (--secret-file, mode
	// 0600). With --master=local the embedded master then requires exactly
	// these credentials.
	SecretFile string
	// FailoverTimeout is how long Mesos keeps the tasks running while no
	// scheduler of the framework is connected (--failover-timeout).
	FailoverTimeout time.Duration
	// VolumeRoot is the directory on the agents under which each task's
	// volume lives, <root>/<instance>/<ordinal> (--volume-root). Empty:
	// DataDir/volumes with the embedded cluster, /var/lib/<name>/volumes
	// otherwise.
	VolumeRoot string
	// ExecutorMode says how agents get the executor (this very binary,
	// started with the "executor" argument) (--executor-mode): "path" runs
	// it from its path on this host (the agents share the host, or the
	// binary is installed at the same path on every agent); "serve" serves
	// it over HTTP on ExecutorHTTP and has agents fetch it from Advertise;
	// "auto" is path with the embedded cluster and serve otherwise.
	ExecutorMode string
	// ExecutorHTTP is where the binary is served in serve mode
	// (--executor-http; default: the Advertise address, else
	// 127.0.0.1:5657, never every interface unless asked to); Advertise is
	// the host[:port] agents fetch it from (--advertise; default:
	// ExecutorHTTP, or this host's name if that is every interface).
	ExecutorHTTP string
	Advertise    string
	// ExecutorBinary is the binary agents start as the executor; empty
	// means this process's own executable.
	ExecutorBinary string
	// ExecutorStatsInterval is how often executors report each task's
	// stats; 0 keeps the executor's default (10 s).
	ExecutorStatsInterval time.Duration
	// Workers is how many instances are reconciled at once (--workers).
	Workers int

	// Creator tunes task launches: sticky wait, relaunch backoff, callback
	// timeout, executor resources (--sticky-wait, --callback-timeout).
	Creator creator.Config
	// ResyncInterval is how often every instance is reconciled even if
	// nothing happened.
	ResyncInterval time.Duration
	// RetryBackoff and RetryMaxBackoff space the retries of an instance
	// whose reconcile step failed (a callback error, etcd unavailable).
	RetryBackoff    time.Duration
	RetryMaxBackoff time.Duration
	// LeaderTTL is how long a scheduler that died keeps its leadership
	// (and keeps a successor waiting).
	LeaderTTL time.Duration
	// ShutdownGrace bounds a clean shutdown.
	ShutdownGrace time.Duration

	// The parts' own settings, for tuning and tests. The fields the flags
	// above set (addresses, identity, counts) are overwritten by them.
	API    httplib.Config
	Mesos  mesoslib.Config
	Offers offermgr.Config
	Local  localmesos.Config
	// StatusBatch groups the status updates from Mesos into etcd
	// transactions (each update is acknowledged once its batch is
	// written).
	StatusBatch maintainer.BatcherConfig
}

// NewConfig returns the embedded defaults: REST API on 127.0.0.1:5656, an
// embedded localmesos of three agents, embedded etcd, data in
// ./stateful-data.
func NewConfig() Config {
	lcfg := localmesos.NewConfig()
	lcfg.Port = 0
	return Config{
		HTTPAddr:        DefaultHTTPAddr,
		Master:          DefaultMaster,
		LocalAgents:     DefaultLocalAgents,
		LocalResources:  localmesos.DefaultResources,
		Etcd:            DefaultEtcd,
		DataDir:         DefaultDataDir,
		Runtime:         DefaultRuntime,
		Name:            DefaultName,
		Role:            DefaultRole,
		FailoverTimeout: DefaultFailoverTimeout,
		ExecutorMode:    ExecutorAuto,
		ExecutorHTTP:    DefaultExecutorHTTP,
		Workers:         DefaultWorkers,
		Creator:         creator.NewConfig(),
		ResyncInterval:  DefaultResyncInterval,
		RetryBackoff:    DefaultRetryBackoff,
		RetryMaxBackoff: DefaultRetryMaxBackoff,
		LeaderTTL:       DefaultLeaderTTL,
		ShutdownGrace:   DefaultShutdownGrace,
		API:             httplib.NewConfig(),
		Mesos:           mesoslib.NewConfig(),
		Offers:          offermgr.NewConfig(),
		Local:           lcfg,
		StatusBatch:     maintainer.NewBatcherConfig(),
	}
}

// local reports whether the framework runs its own embedded cluster.
func (c Config) local() bool { return c.Master == MasterLocal }

// Validate reports every setting that cannot work, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("http", "%q is not host:port", c.HTTPAddr)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("http", "%q has no valid port", c.HTTPAddr)
	} else if c.APITokens == "" && !c.InsecureNoAuth && !IsLoopback(host) {
		bad("http", "%q is reachable from other hosts and no --api-tokens are given: refusing to serve the API without authentication (give --api-tokens FILE, listen on 127.0.0.1, or set --insecure-no-auth if this is really wanted)", c.HTTPAddr)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls-cert", "--tls-cert and --tls-key go together")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		bad("tls-client-ca", "needs --tls-cert and --tls-key")
	}
	if !c.local() {
		if err := checkURLs(c.Master); err != nil {
			bad("master", "want %q or the master's http(s) URL(s): %v", MasterLocal, err)
		}
	} else {
		if c.LocalAgents < 1 || c.LocalAgents > 250 {
			bad("local-agents", "%d: want 1 to 250", c.LocalAgents)
		}
		if c.LocalPort < 0 || c.LocalPort > 65535 {
			bad("local-port", "%d is not a port (0 picks a free one)", c.LocalPort)
		}
		if _, err := localmesos.ParseResources(c.LocalResources); err != nil {
			bad("local-resources", "%v", err)
		}
	}
	if c.Etcd != EtcdEmbedded {
		if err := checkURLs(c.Etcd); err != nil {
			bad("etcd", "want %q or etcd client URL(s): %v", EtcdEmbedded, err)
		}
	}
	if c.Etcd == EtcdEmbedded {
		for flag, v := range map[string]string{"etcd-cert": c.EtcdCert, "etcd-key": c.EtcdKey, "etcd-ca": c.EtcdCA, "etcd-user": c.EtcdUser, "etcd-password-file": c.EtcdPasswordFile} {
			if v != "" {
				bad(flag, "is for an external etcd (--etcd URLs); the embedded one makes its own credentials")
			}
		}
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		bad("etcd-cert", "--etcd-cert and --etcd-key go together")
	}
	if (c.EtcdUser == "") != (c.EtcdPasswordFile == "") {
		bad("etcd-user", "--etcd-user and --etcd-password-file go together")
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data-dir", "must not be empty")
	}
	switch c.Runtime {
	case "auto", "docker", "process":
	default:
		bad("runtime", "%q: want auto, docker or process", c.Runtime)
	}
	if err := checkName(c.Name); err != nil {
		bad("name", "%v", err)
	}
	if strings.TrimSpace(c.Role) == "" {
		bad("role", "must not be empty (\"*\" is the default role)")
	}
	if c.SecretFile != "" && c.Principal == "" {
		bad("secret-file", "needs --principal: the secret authenticates that principal")
	}
	if c.FailoverTimeout <= 0 {
		bad("failover-timeout", "%v must be positive: with 0 Mesos kills every task the moment the scheduler disconnects", c.FailoverTimeout)
	}
	if c.VolumeRoot != "" && (!filepath.IsAbs(c.VolumeRoot) || filepath.Clean(c.VolumeRoot) != c.VolumeRoot || c.VolumeRoot == "/") {
		bad("volume-root", "%q must be a clean absolute path other than /", c.VolumeRoot)
	}
	switch c.ExecutorMode {
	case ExecutorAuto, ExecutorPath, ExecutorServe:
	default:
		bad("executor-mode", "%q: want auto, path or serve", c.ExecutorMode)
	}
	if c.serveExecutor() {
		if _, _, err := net.SplitHostPort(c.ExecutorHTTP); c.ExecutorHTTP != "" && err != nil {
			bad("executor-http", "%q is not host:port", c.ExecutorHTTP)
		}
		if c.Advertise != "" && strings.ContainsAny(c.Advertise, "/ ") {
			bad("advertise", "%q: want host or host:port", c.Advertise)
		}
	}
	if c.ExecutorStatsInterval < 0 {
		errs = append(errs, fmt.Errorf("executor stats interval: %v must not be negative", c.ExecutorStatsInterval))
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("workers", "%d: want 1 to 1024", c.Workers)
	}
	if err := c.Creator.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("creator: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"resync interval", c.ResyncInterval},
		{"retry backoff", c.RetryBackoff},
		{"retry max backoff", c.RetryMaxBackoff},
		{"leader TTL", c.LeaderTTL},
		{"shutdown grace", c.ShutdownGrace},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", d.name, d.v))
		}
	}
	if c.RetryMaxBackoff < c.RetryBackoff {
		errs = append(errs, fmt.Errorf("retry max backoff: %v is less than the retry backoff %v", c.RetryMaxBackoff, c.RetryBackoff))
	}
	if err := c.apiConfig().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("api: %w", err))
	}
	mcfg := c.mesosConfig(mesoslib.DefaultMaster)
	if !c.local() {
		mcfg.Master = c.Master
	}
	if err := mcfg.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("mesos: %w", err))
	}
	if err := c.Offers.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("offers: %w", err))
	}
	if err := c.StatusBatch.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("status batch: %w", err))
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (of a listen address) is reachable only
// from this machine: "localhost" or a loopback IP. An empty host (every
// interface) and any other name are not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkURLs(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("empty")
	}
	for _, s := range strings.Split(list, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http(s) URL", s)
		}
	}
	return nil
}

// checkName keeps the name to what is safe in etcd keys and file names.
func checkName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%q: want 1 to 128 characters", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%q is not allowed", name)
	}
	return nil
}

func (c Config) serveExecutor() bool {
	return c.ExecutorMode == ExecutorServe || (c.ExecutorMode == ExecutorAuto && !c.local())
}

// apiConfig is the REST API's configuration.
func (c Config) apiConfig() httplib.Config {
	a := c.API
	a.Addr = c.HTTPAddr
	return a
}

// mesosConfig is the subscription's configuration, for the master at url.
func (c Config) mesosConfig(url string) mesoslib.Config {
	m := c.Mesos
	m.Master = url
	m.Name = c.Name
	m.Role = c.Role
	m.Principal = c.Principal
	m.FailoverTimeout = c.FailoverTimeout
	return m
}

// localConfig is the embedded cluster's configuration.
func (c Config) localConfig(dataDir string) localmesos.Config {
	l := c.Local
	l.Agents = c.LocalAgents
	l.Port = c.LocalPort
	l.Resources = c.LocalResources
	l.WorkDir = filepath.Join(dataDir, "localmesos")
	if c.Mesos.Secret != "" {
		l.Credentials = map[string]string{c.Principal: c.Mesos.Secret}
	}
	return l
}

// RegisterFlags defines the flags of DESIGN §7 (and a few more) on fs,
// bound to c's fields: parsing fs sets them.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http", c.HTTPAddr, "address of the REST API")
	fs.StringVar(&c.APITokens, "api-tokens", c.APITokens, `file of the REST API's bearer tokens, one "TOKEN read|admin" per line (mode 0600); empty: no authentication (loopback --http only)`)
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", c.InsecureNoAuth, "serve the REST API without authentication on a non-loopback --http address")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) of the REST API; with --tls-key the API speaks HTTPS")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert (mode 0600)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM CA certificate(s): require REST API clients to present a certificate signed by one")
	fs.StringVar(&c.Master, "master", c.Master, `"local" for an embedded Mesos cluster, or the Mesos master's URL(s), e.g. http://mesos-master:5050`)
	fs.IntVar(&c.LocalAgents, "local-agents", c.LocalAgents, "agents of the embedded cluster (--master=local)")
	fs.IntVar(&c.LocalPort, "local-port", c.LocalPort, "port of the embedded cluster's master; 0 picks a free one")
	fs.StringVar(&c.LocalResources, "local-resources", c.LocalResources, "resources of each embedded agent, in Mesos' --resources syntax")
	fs.StringVar(&c.Etcd, "etcd", c.Etcd, `"embedded" for an etcd inside this process, or etcd client URL(s), e.g. http://etcd-1:2379,http://etcd-2:2379`)
	fs.StringVar(&c.EtcdCert, "etcd-cert", c.EtcdCert, "PEM client certificate for an external etcd")
	fs.StringVar(&c.EtcdKey, "etcd-key", c.EtcdKey, "PEM key of --etcd-cert (mode 0600)")
	fs.StringVar(&c.EtcdCA, "etcd-ca", c.EtcdCA, "PEM CA certificate(s) to verify an external etcd's https endpoints with")
	fs.StringVar(&c.EtcdUser, "etcd-user", c.EtcdUser, "etcd user to authenticate to an external etcd as")
	fs.StringVar(&c.EtcdPasswordFile, "etcd-password-file", c.EtcdPasswordFile, "file holding the password of --etcd-user (mode 0600)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "where the embedded etcd and embedded agents keep their data")
	fs.StringVar(&c.Runtime, "runtime", c.Runtime, "how tasks run: auto (docker if an engine answers, else a process), docker or process")
	fs.StringVar(&c.Name, "name", c.Name, "framework name on Mesos and in etcd")
	fs.StringVar(&c.Role, "role", c.Role, "Mesos role the framework subscribes with")
	fs.StringVar(&c.Principal, "principal", c.Principal, "Mesos principal of the framework")
	fs.StringVar(&c.SecretFile, "secret-file", c.SecretFile, "file holding the secret of --principal, to authenticate to the Mesos master (HTTP Basic; mode 0600)")
	fs.DurationVar(&c.FailoverTimeout, "failover-timeout", c.FailoverTimeout, "how long Mesos keeps the tasks while no scheduler is connected")
	fs.StringVar(&c.VolumeRoot, "volume-root", c.VolumeRoot, "directory on the agents holding the tasks' volumes (default <data-dir>/volumes locally, /var/lib/<name>/volumes otherwise)")
	fs.StringVar(&c.ExecutorMode, "executor-mode", c.ExecutorMode, "how agents get the executor: path (run this binary's path), serve (fetch it from this scheduler over HTTP) or auto (path with --master=local, serve otherwise)")
	fs.StringVar(&c.ExecutorHTTP, "executor-http", c.ExecutorHTTP, "address this scheduler serves its binary on, for agents to fetch (serve mode; default: the --advertise address, else 127.0.0.1:5657)")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "host[:port] agents fetch the binary from (serve mode; default: this host's name and the --executor-http port)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "instances reconciled at once")
	fs.DurationVar(&c.Creator.StickyWait, "sticky-wait", c.Creator.StickyWait, "how long a relaunched task waits for the agent holding its volume")
	fs.DurationVar(&c.Creator.CallbackTimeout, "callback-timeout", c.Creator.CallbackTimeout, "time limit of each workload callback")
}

// LoadFile applies a JSON config file to the flags of fs (as registered by
// RegisterFlags): an object whose keys are flag names ("http", "master",
// "local-agents", ...) and whose values are strings, numbers or booleans.
// Flags set on the command line win over the file; an unknown key is an
// error.
func LoadFile(fs *flag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var settings map[string]any
	if err := json.Unmarshal(raw, &settings); err != nil {
		return fmt.Errorf("config file %s: not a JSON object: %w", path, err)
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	for key, v := range settings {
		if key == "config" || fs.Lookup(key) == nil {
			return fmt.Errorf("config file %s: unknown setting %q", path, key)
		}
		if explicit[key] {
			continue
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		default:
			return fmt.Errorf("config file %s: %q: want a string, number or boolean, got %T", path, key, v)
		}
		if err := fs.Set(key, s); err != nil {
			return fmt.Errorf("config file %s: %q: %w", path, key, err)
		}
	}
	return nil
}
