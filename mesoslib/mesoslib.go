package mesoslib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/backoff"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/callrules"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// FrameworkIDStore keeps the framework ID across scheduler restarts.
type FrameworkIDStore interface {
	// FrameworkID returns the stored ID, or "" if the framework has never
	// subscribed.
	FrameworkID(ctx context.Context) (string, error)
	// SetFrameworkID stores id; "" clears it (after a teardown).
	SetFrameworkID(ctx context.Context, id string) error
}

// TaskLister tells reconciliation which tasks to ask Mesos about.
type TaskLister interface {
	// LiveTasks returns every task that was launched (its last known state
	// is TASK_STAGING or later) and is not known to be terminal.
	LiveTasks(ctx context.Context) ([]TaskRef, error)
}

// TaskRef names a task for reconciliation. AgentID may be empty when it is
// not known; Mesos then answers from its own records only.
type TaskRef struct {
	TaskID  mesos.TaskID
	AgentID mesos.AgentID
}

// Handler receives the events of the subscription. Its methods are called
// one at a time, in the order Mesos sent the events, so a slow method
// delays every later event (the heartbeat watchdog is paused meanwhile).
// The context ends when the subscription ends.
type Handler interface {
	// Subscribed: a (re-)subscription succeeded. Offers received before
	// it are void.
	Subscribed(ctx context.Context, s Subscription)
	// Disconnected: the subscription ended; calls fail with
	// ErrNotConnected until the next Subscribed. Outstanding offers are
	// void.
	Disconnected(ctx context.Context, err error)
	Offers(ctx context.Context, offers []mesos.Offer)
	Rescind(ctx context.Context, offerID mesos.OfferID)
	// Update records a task status. It is acknowledged to Mesos only if
	// Update returns nil, so return nil only once the status is persisted.
	// Return ErrUnknownTask (or an error wrapping it) for a task ID with
	// no record: the update is then acknowledged and a live task killed.
	// The same update may be delivered more than once; Update must be
	// idempotent. A Handler that also implements AsyncUpdater gets
	// UpdateAsync instead, and Update is never called.
	Update(ctx context.Context, status mesos.TaskStatus) error
	// Message is a framework message from an executor (best effort).
	Message(ctx context.Context, agentID mesos.AgentID, executorID mesos.ExecutorID, data []byte)
	// Failure reports a removed agent (ExecutorID nil) or an ended
	// executor. It comes in no fixed order relative to the UPDATEs and
	// RESCINDs of the same agent.
	Failure(ctx context.Context, f Failure)
	// Error reports an ERROR event; the subscription ends after it.
	Error(ctx context.Context, message string)
}

// Subscription describes an accepted subscription.
type Subscription struct {
	FrameworkID       mesos.FrameworkID
	Master            mesos.MasterInfo
	HeartbeatInterval time.Duration
}

// Failure is a FAILURE event.
type Failure struct {
	AgentID    *mesos.AgentID
	ExecutorID *mesos.ExecutorID // nil: the whole agent was removed
	Status     *int32            // the executor's raw wait status, if known
}

var (
	// ErrNotConnected: a call was made while no subscription is active.
	ErrNotConnected = errors.New("not subscribed to a Mesos master")
	// ErrUnknownTask is returned by Handler.Update for a task it has no
	// record of.
	ErrUnknownTask = errors.New("mesoslib: unknown task")
	// ErrFrameworkRemoved: Mesos refuses the stored framework ID because the
	// framework was torn down or its failover timeout expired. Its tasks are
	// gone; the stored ID must be cleared to register anew.
	ErrFrameworkRemoved = errors.New("mesoslib: Mesos removed the framework")
	// ErrFailedOver: another scheduler subscribed with this framework ID.
	ErrFailedOver = errors.New("mesoslib: another scheduler took over the framework")
	// ErrFrameworkIDChanged: Mesos answered a subscription with a framework
	// ID other than the stored one.
	ErrFrameworkIDChanged = errors.New("mesoslib: framework ID changed")
	// ErrTornDown: Teardown removed the framework; Run has stopped.
	ErrTornDown = errors.New("mesoslib: framework torn down")
)

// defaultHeartbeatInterval is Mesos' interval, assumed until SUBSCRIBED
// says otherwise.
const defaultHeartbeatInterval = 15 * time.Second

// Client is the connection to the Mesos master. Create it with New, run it
// with Run; its methods are safe for concurrent use.
type Client struct {
	cfg       Config
	framework *mesos.FrameworkInfo
	store     FrameworkIDStore
	tasks     TaskLister
	handler   Handler
	async     AsyncUpdater // handler, if it records updates asynchronously
	settle    *settleQueue // outcomes of asynchronous updates to act on

	caller    calls.Caller // every call goes through here
	transport *http.Transport
	watchdog  *watchdog
	kills     *killLog

	running     atomic.Bool
	connected   atomic.Bool
	tearingDown atomic.Bool
	lastHeard   atomic.Int64 // UnixNano of the last event

	mu          sync.Mutex
	frameworkID string
	stop        context.CancelCauseFunc // ends Run; nil when not running
	fatalErr    error                   // what Run is to return
	runCtx      context.Context
	recon       *pendingTasks // explicit reconciliation in progress
	why         error         // what ended the current subscription, if known

	subs sync.WaitGroup // goroutines of the current subscription
}

// New checks cfg and returns a Client that will subscribe when Run is
// called.
func New(cfg Config, store FrameworkIDStore, tasks TaskLister, handler Handler) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mesoslib: invalid config: %w", err)
	}
	if store == nil || tasks == nil || handler == nil {
		return nil, errors.New("mesoslib: store, task lister and handler are required")
	}
	endpoints, _ := cfg.endpoints() // validated
	codec, _ := cfg.codec()
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: 15 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	masters := newMasters(endpoints)
	httpClient := httpcli.New(
		httpcli.Endpoint(endpoints[0]),
		httpcli.Codec(codec),
		httpcli.Do(httpcli.With(httpcli.RoundTripper(basicAuth(transport, cfg.Principal, cfg.Secret)))),
		httpcli.WrapDoer(masters.wrap),
	)
	raw := httpsched.NewCaller(httpClient,
		// Without a candidate selector v0.0.11 turns every failed call
		// (a 400 for a bad ACCEPT, say) into a "no leader" answer that
		// drops the subscription. Redirects (307) are still followed.
		httpsched.EndpointCandidates(func() string { return "" }),
	)
	c := newClient(cfg, store, tasks, handler, raw)
	c.transport = transport
	return c, nil
}

// basicAuth returns rt, adding HTTP Basic credentials to every request if
// there is a secret.
func basicAuth(rt http.RoundTripper, principal, secret string) http.RoundTripper {
	if secret == "" {
		return rt
	}
	return basicAuthTransport{rt, principal, secret}
}

type basicAuthTransport struct {
	base              http.RoundTripper
	principal, secret string
}

func (t basicAuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change its request
	req.SetBasicAuth(t.principal, t.secret)
	return t.base.RoundTrip(req)
}

// newClient wires a Client around raw, the caller that talks to Mesos.
func newClient(cfg Config, store FrameworkIDStore, tasks TaskLister, handler Handler, raw calls.Caller) *Client {
	c := &Client{
		cfg:       cfg,
		framework: cfg.frameworkInfo(),
		store:     store,
		tasks:     tasks,
		handler:   handler,
		kills:     newKillLog(),
		settle:    newSettleQueue(),
	}
	c.async, _ = handler.(AsyncUpdater)
	c.watchdog = newWatchdog(cfg.MissedHeartbeats, defaultHeartbeatInterval, c.noteDisconnect)
	c.caller = callrules.New(
		callrules.WithFrameworkID(c.FrameworkID),
		logCalls,
	).Caller(subscribeWatcher{next: raw, c: c})
	return c
}

// Run subscribes and processes events until ctx ends (then it returns nil)
// or a fatal condition occurs: the stored framework ID cannot be read, a
// new one cannot be stored, Mesos no longer knows the framework
// (ErrFrameworkRemoved), another scheduler took it over (ErrFailedOver),
// its ID changed (ErrFrameworkIDChanged) or Teardown removed it
// (ErrTornDown). Run can be called once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("mesoslib: Run called twice")
	}
	id, err := c.store.FrameworkID(ctx)
	if err != nil {
		return fmt.Errorf("mesoslib: read framework ID: %w", err)
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c.mu.Lock()
	c.frameworkID = id
	c.stop = stop
	c.runCtx = runCtx
	c.mu.Unlock()
	if id == "" {
		glog.Infof("mesoslib: registering framework %q as a new framework", c.cfg.Name)
	} else {
		glog.Infof("mesoslib: re-subscribing framework %q with ID %s", c.cfg.Name, id)
	}

	var background sync.WaitGroup // the watchdog and the settle goroutine
	background.Add(2)
	go func() {
		defer background.Done()
		c.watchdog.run(runCtx)
	}()
	go func() {
		defer background.Done()
		c.runSettle(runCtx)
	}()

	info := *c.framework // controller.Run writes the framework ID into it
	err = controller.Run(runCtx, &info, c.caller,
		controller.WithEventHandler(c.eventHandler()),
		controller.WithFrameworkID(c.FrameworkID),
		controller.WithRegistrationTokens(backoff.Notifier(c.cfg.SubscribeBackoff, c.cfg.SubscribeMaxBackoff, runCtx.Done())),
		controller.WithSubscriptionTerminated(c.subscriptionEnded),
		controller.WithContextPerSubscription(true),
	)
	stop(nil)
	c.subs.Wait()
	background.Wait()
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	c.mu.Lock()
	fatal := c.fatalErr
	c.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if ctx.Err() != nil {
		glog.Infof("mesoslib: stopped")
		return nil
	}
	return err
}

// fatal ends Run with err (the first such error wins) and returns it.
func (c *Client) fatal(err error) error {
	c.mu.Lock()
	stop := c.stop
	if c.fatalErr == nil {
		c.fatalErr = err
	}
	c.mu.Unlock()
	if !errors.Is(err, ErrTornDown) { // asked for, and logged by Teardown
		glog.Errorf("%v", err)
	}
	if stop != nil {
		stop(err)
	}
	return err
}

// Connected reports whether a subscription is active.
func (c *Client) Connected() bool { return c.connected.Load() }

// LastHeard is when the last event (a heartbeat at least every interval)
// arrived from the master; zero if none has.
func (c *Client) LastHeard() time.Time {
	if n := c.lastHeard.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// FrameworkID is the framework's ID, "" before the first subscription.
func (c *Client) FrameworkID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frameworkID
}

// subscriptionEnded runs after every subscription attempt, successful or
// not.
func (c *Client) subscriptionEnded(err error) {
	c.watchdog.unwatch()
	c.mu.Lock()
	ctx := c.runCtx
	if c.why != nil {
		// httpsched ends the stream by cancelling it; say why instead.
		err, c.why = c.why, nil
	}
	c.mu.Unlock()
	if !c.connected.Swap(false) {
		if err != nil && ctx.Err() == nil {
			glog.Warningf("mesoslib: subscription failed: %v", err)
		}
		return
	}
	if ctx.Err() != nil {
		glog.Infof("mesoslib: subscription closed: %v", context.Cause(ctx))
	} else {
		glog.Warningf("mesoslib: disconnected from the Mesos master: %v", err)
	}
	c.handler.Disconnected(ctx, err)
}

// noteDisconnect records why the current subscription is about to end.
func (c *Client) noteDisconnect(why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.why == nil {
		c.why = why
	}
}

// subscribeWatcher hands each new subscription stream to the heartbeat
// watchdog, and refuses to subscribe once a teardown has begun (the
// torn-down ID would only earn an ERROR).
type subscribeWatcher struct {
	next calls.Caller
	c    *Client
}

var errTearingDown = errors.New("mesoslib: teardown in progress, not subscribing")

func (s subscribeWatcher) Call(ctx context.Context, call *scheduler.Call) (mesos.Response, error) {
	if call.GetType() != scheduler.Call_SUBSCRIBE {
		return s.next.Call(ctx, call)
	}
	if s.c.tearingDown.Load() {
		return nil, errTearingDown
	}
	glog.V(1).Infof("mesoslib: subscribing (framework ID %q)", call.GetFrameworkID().GetValue())
	resp, err := s.next.Call(ctx, call)
	if err == nil && resp != nil {
		s.c.mu.Lock()
		s.c.why = nil
		s.c.mu.Unlock()
		s.c.watchdog.watch(resp)
	}
	return resp, err
}
