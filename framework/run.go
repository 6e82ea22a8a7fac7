package framework

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/glog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/buffer"
	"github.com/mesos-stateful/stateful/creator"
	"github.com/mesos-stateful/stateful/destroyer"
	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/httplib"
	"github.com/mesos-stateful/stateful/internal/reconcile"
	"github.com/mesos-stateful/stateful/internal/secretfile"
	"github.com/mesos-stateful/stateful/localmesos"
	"github.com/mesos-stateful/stateful/maintainer"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// ErrLeadershipLost ends a leadership term: another scheduler may have
// taken over, so this one stops acting at once. Run does not return it: it
// keeps the process (the REST API, the embedded cluster and its tasks)
// running and campaigns again.
var ErrLeadershipLost = errors.New("framework: lost the leadership")

// Run runs the scheduler of workload w until ctx ends (then it returns nil
// after a clean shutdown) or something fatal happens: Mesos removed the
// framework, a part failed. Losing the leadership is not fatal: Run stops
// acting, keeps serving reads, and campaigns again.
//
// Start order: the state store (etcd, embedded or not, and statemgr's
// cache), the embedded Mesos cluster if Master is "local", leader election
// (Run waits here while another scheduler leads), then, as leader, the REST
// API, the executor binary server (serve mode), the Mesos subscription, the
// offer manager and the reconcile controller. Everything after the election
// but the REST API belongs to one leadership term: when the term ends (the
// etcd lease lapsed, another scheduler took over), those parts stop in
// reverse order, within ShutdownGrace, and Run campaigns for the next term,
// which starts them anew from the stored state. The REST API, once
// started, and the embedded cluster live as long as the process.
func Run(ctx context.Context, cfg Config, w stateful.Workload) (err error) {
	if w == nil {
		return errors.New("framework: no workload")
	}
	if os.Getenv("MESOS_EXECUTOR_ID") != "" {
		// Started by an agent: running a scheduler here would launch
		// executors that start schedulers... Main handles this case.
		return errors.New("framework: this process was started by a Mesos agent as an executor; the program's main (and TestMain) must hand such a start to framework.Main or framework.RunExecutor first")
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("framework: invalid configuration:\n%w", err)
	}
	cfg, err = resolve(cfg)
	if err != nil {
		return err
	}
	glog.Infof("framework %s: starting (master %s, etcd %s, data dir %s, runtime %s)", cfg.Name, cfg.Master, cfg.Etcd, cfg.DataDir, cfg.Runtime)
	rt := chooseRuntime(ctx, cfg.Runtime, cfg.local())
	if rt.Configured == rt.Chosen {
		glog.Infof("framework %s: runtime %s (%s)", cfg.Name, rt.Chosen, rt.Reason)
	} else {
		glog.Infof("framework %s: runtime %s → %s (%s)", cfg.Name, rt.Configured, rt.Chosen, rt.Reason)
	}

	// What started is stopped in reverse order, whatever happens.
	var closers []func()
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
			err = nil
		}
		if errors.Is(err, mesoslib.ErrTornDown) {
			// Only an uninstall tears down: it is a clean end.
			err = nil
		}
		glog.Infof("framework %s: stopped", cfg.Name)
	}()

	client, closeEtcd, err := openEtcd(ctx, cfg)
	if err != nil {
		return err
	}
	closers = append(closers, closeEtcd)
	// The event feed hears of every change statemgr's cache takes in,
	// whoever made it: one source, never in the way of the state path.
	hub := feed.NewHub(0, 0)
	store, err := statemgr.New(ctx, client, cfg.Name, statemgr.WithSessionTTL(cfg.LeaderTTL), statemgr.WithObserver(hub.Observe))
	if err != nil {
		return fmt.Errorf("framework: state store: %w", err)
	}
	closers = append(closers, func() {
		if err := store.Close(); err != nil {
			glog.Warningf("framework: closing the state store: %v", err)
		}
	})

	master := cfg.Master
	if cfg.local() {
		// Not tied to ctx, nor to any leadership term: the cluster and
		// its tasks live as long as the process, and close (gracefully:
		// executors stop and remove their tasks) after the scheduler
		// parts stopped, not while they still run.
		cluster, err := localmesos.Start(context.WithoutCancel(ctx), cfg.localConfig(cfg.DataDir))
		if err != nil {
			return fmt.Errorf("framework: embedded Mesos cluster: %w", err)
		}
		closers = append(closers, func() { cluster.Close() })
		master = cluster.MasterURL()
		glog.Infof("framework %s: embedded Mesos cluster at %s with %d agents", cfg.Name, master, cfg.LocalAgents)
	}

	front := &front{w: w, store: store, writeTimeout: writeTimeout(cfg), hub: hub, runtime: rt}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMetrics(reg, store, front, hub)
	api, err := httplib.New(cfg.apiConfig(), front, reg)
	if err != nil {
		return fmt.Errorf("framework: %w", err)
	}
	var served *apiRun // the REST API, once the first term started it
	closers = append(closers, func() {
		if served != nil {
			served.close()
		}
	})

	// An uninstall asked of one term is carried out by the next.
	uninstall := &atomic.Bool{}
	uninstall.Store(cfg.Uninstall)
	for term := 1; ; term++ {
		glog.Infof("framework %s: waiting to be elected leader", cfg.Name)
		lead, err := campaign(ctx, cfg, store)
		if err != nil {
			return err
		}
		s, err := assemble(cfg, master, store, lead, w, uninstall)
		if err != nil {
			return err
		}
		if served == nil {
			if served, err = serveAPI(cfg, api); err != nil {
				return err
			}
		}
		front.begin(s.svc)
		err = runInOrder(ctx, cfg.ShutdownGrace, append(s.runnables(), runnable{"rest api", served.watch}))
		front.end()
		if ctx.Err() != nil {
			return err
		}
		if !errors.Is(err, ErrLeadershipLost) && !errors.Is(err, mesoslib.ErrFailedOver) {
			return err
		}
		// Nothing of the term acts any more. The tasks run on; their
		// updates wait at Mesos, unacknowledged, for the next term.
		if rerr := store.Resign(); rerr != nil {
			glog.V(1).Infof("framework %s: %v", cfg.Name, rerr)
		}
		glog.Warningf("framework %s: leadership term %d ended (%v); tasks keep running, reads are served from the cache, changes are refused until this scheduler leads again", cfg.Name, term, err)
	}
}

// campaign waits until this scheduler is elected, retrying while etcd
// cannot be reached; it fails only when ctx ends.
func campaign(ctx context.Context, cfg Config, store *statemgr.Store) (*statemgr.Leadership, error) {
	wait := cfg.RetryBackoff
	for {
		lead, err := store.Campaign(ctx)
		if err == nil {
			return lead, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("framework: leader election: %w", ctx.Err())
		}
		glog.Warningf("framework %s: leader election (retrying in %v): %v", cfg.Name, wait, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("framework: leader election: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, max(cfg.LeaderTTL, cfg.RetryBackoff))
	}
}

// writeTimeout bounds a change made through the REST API: while etcd does
// not answer, a request gets its 503 in that time rather than hanging for
// the whole request timeout.
func writeTimeout(cfg Config) time.Duration {
	return min(cfg.API.RequestTimeout, max(cfg.LeaderTTL/2, time.Second))
}

// resolve fills the settings derived from others.
func resolve(cfg Config) (Config, error) {
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, fmt.Errorf("framework: data dir: %w", err)
	}
	cfg.DataDir = dir
	// The data dir holds etcd's data (every instance's env, passwords)
	// and generated secrets: only this user may enter it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cfg, fmt.Errorf("framework: data dir: %w", err)
	}
	if err := privateDir(dir); err != nil {
		return cfg, fmt.Errorf("framework: --data-dir %s: %w", dir, err)
	}
	if cfg.VolumeRoot == "" {
		if cfg.local() {
			cfg.VolumeRoot = filepath.Join(dir, "volumes")
		} else {
			cfg.VolumeRoot = filepath.Join("/var/lib", cfg.Name, "volumes")
		}
	}
	if cfg.SecretFile != "" {
		if cfg.Mesos.Secret, err = secretfile.ReadLine(cfg.SecretFile); err != nil {
			return cfg, fmt.Errorf("framework: --secret-file: %w", err)
		}
	}
	if cfg.APITokens != "" {
		if cfg.API.Tokens, err = httplib.LoadTokens(cfg.APITokens); err != nil {
			return cfg, fmt.Errorf("framework: --api-tokens: %w", err)
		}
	} else {
		glog.Warningf("framework %s: the REST API has no authentication (no --api-tokens): anyone who reaches %s may create and destroy instances", cfg.Name, cfg.HTTPAddr)
	}
	if cfg.TLSCert != "" {
		if cfg.API.TLS, err = httplib.LoadTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA); err != nil {
			return cfg, fmt.Errorf("framework: --tls-cert: %w", err)
		}
	}
	if cfg.ExecutorBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("framework: locate this binary for the executor: %w", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return cfg, fmt.Errorf("framework: locate this binary for the executor: %w", err)
		}
		cfg.ExecutorBinary = exe
	}
	return cfg, nil
}

// privateDir makes sure only this user may enter dir: a directory of ours
// that others may enter is tightened to 0700; a shared one (sticky, like
// /tmp) or another user's is refused rather than changed.
func privateDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	perm := st.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if st.Mode()&os.ModeSticky != 0 || !ok || int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("mode %04o lets other users in, and it is not this user's own directory to change: give a directory of its own, mode 0700", perm)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	glog.Infof("framework: data dir %s was mode %04o; now 0700", dir, perm)
	return nil
}

// openEtcd connects to etcd, starting the embedded one if asked to.
func openEtcd(ctx context.Context, cfg Config) (*clientv3.Client, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if cfg.Etcd == EtcdEmbedded {
		e, err := statemgr.StartEmbedded(ctx, filepath.Join(cfg.DataDir, "etcd"))
		if err != nil {
			return nil, nil, fmt.Errorf("framework: embedded etcd: %w", err)
		}
		glog.Infof("framework %s: embedded etcd at %v", cfg.Name, e.Endpoints())
		return e.Client(), func() {
			if err := e.Close(); err != nil {
				glog.Warningf("framework: stopping embedded etcd: %v", err)
			}
		}, nil
	}
	var endpoints []string
	for _, u := range strings.Split(cfg.Etcd, ",") {
		endpoints = append(endpoints, strings.TrimSpace(u))
	}
	ecfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second}
	if cfg.EtcdUser != "" {
		password, err := secretfile.ReadLine(cfg.EtcdPasswordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("framework: --etcd-password-file: %w", err)
		}
		ecfg.Username, ecfg.Password = cfg.EtcdUser, password
	}
	if cfg.EtcdCert != "" || cfg.EtcdCA != "" {
		tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.EtcdCA != "" {
			pool, err := httplib.LoadCAs(cfg.EtcdCA)
			if err != nil {
				return nil, nil, fmt.Errorf("framework: --etcd-ca: %w", err)
			}
			tcfg.RootCAs = pool
		}
		if cfg.EtcdCert != "" {
			certPEM, err := os.ReadFile(cfg.EtcdCert)
			if err != nil {
				return nil, nil, fmt.Errorf("framework: --etcd-cert: %w", err)
			}
			keyPEM, err := secretfile.Read(cfg.EtcdKey)
			if err != nil {
				return nil, nil, fmt.Errorf("framework: --etcd-key: %w", err)
			}
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return nil, nil, fmt.Errorf("framework: --etcd-cert %s and --etcd-key %s: %w", cfg.EtcdCert, cfg.EtcdKey, err)
			}
			tcfg.Certificates = []tls.Certificate{cert}
		}
		ecfg.TLS = tcfg
	}
	// Not tied to ctx: the client must outlive the shutdown of the parts
	// (the leadership ends only when the store closes, last).
	// The client's own log is kept to errors: while etcd is away it would
	// log every retry of every probe, and Run says what matters.
	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	logger, err := logCfg.Build()
	if err != nil {
		return nil, nil, fmt.Errorf("framework: etcd client log: %w", err)
	}
	ecfg.Logger = logger
	c, err := clientv3.New(ecfg)
	if err != nil {
		return nil, nil, fmt.Errorf("framework: etcd %s: %w", cfg.Etcd, err)
	}
	return c, func() { c.Close() }, nil
}

// scheduler is the assembled parts of one leadership term.
type scheduler struct {
	cfg    Config
	lead   *statemgr.Leadership
	svc    *service
	binary *binaryServer // nil unless the executor is served
	client *mesoslib.Client
	batch  *maintainer.Batcher
	offers *offermgr.Manager
	ctrl   *controller
	uninst *uninstaller
}

// assemble builds every part and wires them through the interfaces they
// declare. Nothing runs yet.
func assemble(cfg Config, master string, store *statemgr.Store, lead *statemgr.Leadership, w stateful.Workload, uninstall *atomic.Bool) (*scheduler, error) {
	work := buffer.NewWorkQueue(cfg.RetryBackoff, cfg.RetryMaxBackoff)
	tasks := buffer.NewTaskQueue[offermgr.Demand]()
	locks := &reconcile.Locks{}
	ev := &events{}
	client, err := mesoslib.New(cfg.mesosConfig(master), frameworkIDs{store}, liveTasks{store}, ev)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	kill := newKiller(client, min(cfg.Creator.KillRetry, 5*time.Second))

	mcfg := maintainer.NewConfig()
	mcfg.KillRetry = cfg.Creator.KillRetry
	mcfg.CallbackTimeout = cfg.Creator.CallbackTimeout
	maint, err := maintainer.New(mcfg, store, w, kill, messenger{client}, work.Add)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	if i, ok := w.(stateful.Initializer); ok {
		i.Init(maint.Handle())
	}
	batch, err := maintainer.NewBatcher(maint, cfg.StatusBatch)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	ccfg := cfg.Creator
	ccfg.Runtime = cfg.Runtime
	ccfg.Confirmed = maint.ConfirmedRunning
	create, err := creator.New(ccfg, store, w, maint.Handle(), tasks, kill, work.Add)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	destroy, err := destroyer.New(store, tasks, kill, work.Add, cfg.Creator.KillRetry)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	destroy.SetOperations(client)

	s := &scheduler{cfg: cfg, lead: lead, client: client, batch: batch}
	execCmd, err := executorCommand(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.serveExecutor() {
		s.binary, execCmd, err = newBinaryServer(cfg)
		if err != nil {
			return nil, err
		}
	}
	launcher, err := creator.NewLauncher(creator.LauncherConfig{
		Framework:       cfg.Name,
		Runtime:         cfg.Runtime,
		VolumeRoot:      cfg.VolumeRoot,
		Executor:        execCmd,
		Refuse:          cfg.Offers.DeclineRefuse,
		CallbackTimeout: cfg.Creator.CallbackTimeout,
		ConfigWait:      creator.DefaultConfigWait,
		Role:            cfg.role(),
		Principal:       cfg.principal(),
		CrashPoint:      cfg.CrashPoint,
		Confirmed:       maint.ConfirmedRunning,
		Ready:           func() error { return storeReady(store) },
	}, store, w, tasks, client, locks, work.Add)
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	ocfg := cfg.Offers
	ocfg.Framework, ocfg.Known = cfg.Name, liveTasks{store}.KnownReservations
	offers, err := offermgr.NewManager(ocfg, pendingTasks{tasks}, launcher, client, liveTasks{store})
	if err != nil {
		return nil, fmt.Errorf("framework: %w", err)
	}
	s.offers = offers
	s.ctrl = &controller{
		queue: work, store: store, locks: locks, workers: cfg.Workers, resync: cfg.ResyncInterval,
		hold:    func() bool { return store.Stale() },
		creator: create, maintainer: maint, destroyer: destroy,
		forget: []forgetter{create, maint},
	}
	ev.offers, ev.maintainer, ev.batcher, ev.resync = offers, maint, batch, s.ctrl.enqueueAll
	ev.reserved = reservations{store: store, enqueue: work.Add, crash: cfg.CrashPoint}

	s.uninst = &uninstaller{store: store, destroyer: destroy, client: client, requested: uninstall, tick: 200 * time.Millisecond}
	s.svc = &service{w: w, store: store, creator: create, destroyer: destroy, maintainer: maint, offers: offers, client: client, lead: lead, work: work, tasks: tasks, uninstall: s.uninst}
	return s, nil
}

// storeReady refuses to act while etcd does not answer: the cache may
// miss changes, and nothing decided on it could be recorded anyway.
func storeReady(store *statemgr.Store) error {
	if store.Stale() {
		return fmt.Errorf("etcd has not answered since %s: %w", store.Confirmed().Format(time.RFC3339Nano), stateful.ErrUnavailable)
	}
	return nil
}

// runnable is a part that runs until its context ends.
type runnable struct {
	name string
	run  func(ctx context.Context) error
}

func (s *scheduler) runnables() []runnable {
	rs := []runnable{
		{"leadership", s.watchLeadership},
	}
	if s.binary != nil {
		rs = append(rs, runnable{"executor binary server", s.binary.Run})
	}
	return append(rs,
		// Before the subscription, so that it stops after it: updates
		// still in a batch when the subscription ends are written or
		// refused, never left waiting.
		runnable{"status batcher", s.batch.Run},
		runnable{"mesos subscription", s.client.Run},
		runnable{"offer manager", s.offers.Start},
		runnable{"controller", s.ctrl.Start},
		runnable{"uninstaller", s.uninst.Run},
	)
}

// apiRun is the REST API being served, for the life of the process.
type apiRun struct {
	stop context.CancelFunc
	done chan struct{} // closed when Serve returned
	err  error         // what Serve returned, set before done closes
}

// serveAPI starts serving the REST API on HTTPAddr, telling APIReady
// where once it listens.
func serveAPI(cfg Config, api *httplib.Server) (*apiRun, error) {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("framework: rest api: listening on %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.APIReady != nil {
		cfg.APIReady(ln.Addr().String())
	}
	ctx, stop := context.WithCancel(context.Background())
	a := &apiRun{stop: stop, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = api.Serve(ctx, ln)
	}()
	return a, nil
}

// watch is the REST API's place among a term's runnables: the API failing
// ends the term, and Run with it.
func (a *apiRun) watch(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.done:
		return fmt.Errorf("serving stopped: %w", a.err)
	}
}

// close stops the REST API and waits until it has (Serve bounds that
// with its shutdown timeout).
func (a *apiRun) close() {
	a.stop()
	<-a.done
	if a.err != nil {
		glog.Warningf("framework: rest api: %v", a.err)
	}
}

// watchLeadership ends the term when the leadership does.
func (s *scheduler) watchLeadership(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-s.lead.Done():
		glog.Warningf("framework %s: leadership lost; stopping this term's parts (tasks keep running)", s.cfg.Name)
		return ErrLeadershipLost
	}
}

// runInOrder starts the runnables in order, each in its own goroutine of
// one errgroup. When ctx ends or one of them fails, they are stopped in
// reverse order, each given what is left of grace. A runnable that returns
// before it is told to stop is a failure. The first failure is returned.
func runInOrder(ctx context.Context, grace time.Duration, rs []runnable) error {
	g, gctx := errgroup.WithContext(ctx)
	cancels := make([]context.CancelFunc, len(rs))
	done := make([]chan struct{}, len(rs))
	for i, r := range rs {
		rctx, cancel := context.WithCancel(context.WithoutCancel(gctx))
		cancels[i], done[i] = cancel, make(chan struct{})
		g.Go(func() error {
			defer close(done[i])
			err := r.run(rctx)
			switch {
			case rctx.Err() != nil:
				if err != nil {
					glog.Warningf("framework: %s stopped: %v", r.name, err)
				}
				return nil
			case err != nil:
				return fmt.Errorf("framework: %s: %w", r.name, err)
			default:
				return fmt.Errorf("framework: %s stopped on its own", r.name)
			}
		})
	}
	stopped := make(chan error, 1)
	go func() {
		<-gctx.Done()
		deadline := time.NewTimer(grace)
		defer deadline.Stop()
		for i := len(rs) - 1; i >= 0; i-- {
			cancels[i]()
			select {
			case <-done[i]:
			case <-deadline.C:
				for j := i - 1; j >= 0; j-- {
					cancels[j]()
				}
				stopped <- fmt.Errorf("framework: %s did not stop within the %v grace period", rs[i].name, grace)
				return
			}
		}
		stopped <- nil
	}()
	waited := make(chan error, 1)
	go func() { waited <- g.Wait() }()
	select {
	case err := <-waited:
		<-stopped
		return err
	case err := <-stopped:
		if err != nil {
			// Something ignores its context: give up on it rather than
			// hang the process.
			glog.Errorf("%v", err)
			select {
			case werr := <-waited:
				return errors.Join(werr, err)
			default:
				return err
			}
		}
		return <-waited
	}
}
