// Package httplib is the scheduler's REST API (DESIGN §6): create, list,
// inspect, scale, update and destroy instances, health and Prometheus
// metrics, JSON in and out.
//
// Every request is validated completely before anything is changed: the
// body's JSON is checked against the request schema (exact, known keys
// only, each once, the right JSON types, exactly one object, at most
// Config.MaxBodyBytes), completed with the workload's defaults and checked
// with stateful's validation. Only then is the Service called, and a 202 is
// answered only once the Service has made the change durable. Errors are
// {"error": "...", "field": "..."} with the status code that says why.
package httplib

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/golang/glog"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for Config.
const (
	DefaultAddr            = "127.0.0.1:5656"
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRequestTimeout  = 30 * time.Second
	DefaultHealthTimeout   = 5 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// Timeouts of the HTTP server itself, against slow or idle clients.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	idleTimeout       = 2 * time.Minute
	// writeSlack is added to RequestTimeout for the write timeout, so a
	// Service call that uses its whole budget can still be answered.
	writeSlack = 10 * time.Second
)

// Config is the REST API's configuration.
type Config struct {
	// Addr is the TCP address Run listens on (the --http flag).
	Addr string
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64
	// RequestTimeout bounds each call into the Service.
	RequestTimeout time.Duration
	// HealthTimeout bounds the Service's health check.
	HealthTimeout time.Duration
	// ShutdownTimeout is how long Run waits for in-flight requests when
	// its context ends before it closes their connections.
	ShutdownTimeout time.Duration
	// EventHeartbeat is how often an idle GET /v1/events stream gets a
	// heartbeat comment.
	EventHeartbeat time.Duration
	// Tokens are the bearer tokens the API accepts; nil turns
	// authentication off (every request may do everything). With tokens,
	// every route but the health check needs one: a read token for GET, an
	// admin token for anything else.
	Tokens *Tokens
	// TLS, if not nil, makes Run and Serve speak HTTPS with it.
	TLS *tls.Config
}

// NewConfig returns the defaults: 127.0.0.1:5656, 1 MiB bodies, 30 s per
// request, 5 s for health, 10 s to shut down, event heartbeats every 15 s.
func NewConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		MaxBodyBytes:    DefaultMaxBodyBytes,
		RequestTimeout:  DefaultRequestTimeout,
		HealthTimeout:   DefaultHealthTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		EventHeartbeat:  DefaultEventHeartbeat,
	}
}

// Validate reports the first setting that cannot work, by name.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("http address %q: want host:port: %w", c.Addr, err)
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("max body bytes must be positive, got %d", c.MaxBodyBytes)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"request timeout", c.RequestTimeout},
		{"health timeout", c.HealthTimeout},
		{"shutdown timeout", c.ShutdownTimeout},
		{"event heartbeat", c.EventHeartbeat},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive, got %s", d.name, d.v)
		}
	}
	return nil
}

// Registry is where the API registers its metrics and what /metrics serves;
// *prometheus.Registry is one. The framework passes the registry the other
// parts register their gauges on, so /metrics shows them all.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Server is the REST API. It is safe for concurrent use and holds no state
// besides its dependencies and metrics.
type Server struct {
	cfg      Config
	svc      Service
	gatherer prometheus.Gatherer
	metrics  *metrics
	router   *mux.Router
	routes   []apiRoute
	handler  http.Handler
}

type apiRoute struct {
	method, path string
	route        *mux.Route
}

// New returns the REST API over svc. reg receives the API's metrics and is
// served on /metrics; nil means a private registry with the Go and process
// collectors.
func New(cfg Config, svc Service, reg Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("httplib: %w", err)
	}
	if svc == nil {
		return nil, errors.New("httplib: no service")
	}
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("httplib: %w", err)
	}
	s := &Server{cfg: cfg, svc: svc, gatherer: reg, metrics: m, router: mux.NewRouter()}

	s.handle(http.MethodPost, "/v1/instances", s.createInstance)
	s.handle(http.MethodGet, "/v1/instances", s.listInstances)
	s.handle(http.MethodGet, "/v1/instances/{name}", s.getInstance)
	s.handle(http.MethodPatch, "/v1/instances/{name}", s.patchInstance)
	s.handle(http.MethodDelete, "/v1/instances/{name}", s.deleteInstance)
	s.handle(http.MethodPost, "/v1/instances/{name}/switchover", s.switchover)
	s.handle(http.MethodPost, "/v1/instances/{name}/rollout/pause", s.rollout(true))
	s.handle(http.MethodPost, "/v1/instances/{name}/rollout/resume", s.rollout(false))
	s.handle(http.MethodPost, "/v1/instances/{name}/rollout/abort", s.abortRollout)
	s.handleAccess(http.MethodGet, "/v1/health", accessOpen, s.health)
	s.handle(http.MethodGet, "/v1/events", s.streamEvents)
	s.handle(http.MethodGet, "/v1/openapi.json", s.openAPI)
	// The dashboard's files hold no data: the page asks for a token.
	s.handleAccess(http.MethodGet, "/ui", accessOpen, s.uiRedirect)
	s.handleAccess(http.MethodGet, "/ui/", accessOpen, s.uiFile)
	s.handleAccess(http.MethodGet, "/ui/{file}", accessOpen, s.uiFile)
	s.handle(http.MethodGet, "/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
		ErrorLog: glogPrinter{}, ErrorHandling: promhttp.ContinueOnError,
	}).ServeHTTP)
	s.router.NotFoundHandler = http.HandlerFunc(s.notFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)

	s.handler = http.HandlerFunc(s.serve)
	return s, nil
}

// handle routes method and path to h, for read tokens if the method is GET
// and admin tokens otherwise.
func (s *Server) handle(method, path string, h http.HandlerFunc) {
	s.handleAccess(method, path, accessFor(method), h)
}

// handleAccess routes method and path to h for requests with need.
func (s *Server) handleAccess(method, path string, need access, h http.HandlerFunc) {
	named := func(w http.ResponseWriter, r *http.Request) {
		info := requestInfoOf(r)
		info.route = path
		if !authorize(w, r, need, info.role, info.valid) {
			return
		}
		h(w, r)
	}
	// Path before Methods: mux 1.8.1 loses a method mismatch (405 becomes
	// 404) when a later route's method matches but its path does not.
	route := s.router.Path(path).Methods(method).HandlerFunc(named)
	s.routes = append(s.routes, apiRoute{method: method, path: path, route: route})
}

// Handler returns the API's handler, with its recovery, metrics and access
// log; Run serves it.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on Config.Addr and serves the API until ctx ends, then shuts
// down gracefully (see Serve).
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httplib: listening on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln (which it closes) until ctx ends. Then it stops
// accepting connections and waits up to Config.ShutdownTimeout for
// in-flight requests (their Service calls are not cancelled by ctx: a create
// that is being written finishes and is answered) before closing the rest.
// It returns nil after a shutdown in time, and an error if serving failed or
// requests had to be cut off.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      s.cfg.RequestTimeout + writeSlack,
		IdleTimeout:       idleTimeout,
		ErrorLog:          log.New(glogWriter{}, "", 0),
	}
	base, endStreams := withShutdown()
	srv.BaseContext = func(net.Listener) context.Context { return base }
	srv.RegisterOnShutdown(endStreams)
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	auth := "no authentication"
	if s.cfg.Tokens != nil {
		auth = "bearer tokens"
	}
	if s.cfg.TLS != nil && s.cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert {
		auth += " and client certificates"
	}
	glog.Infof("httplib: serving the REST API on %s://%s (%s)", scheme, ln.Addr(), auth)

	select {
	case err := <-served:
		return fmt.Errorf("httplib: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	glog.Infof("httplib: shutting down the REST API on %s", ln.Addr())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("httplib: requests still running after %s were cut off: %w", s.cfg.ShutdownTimeout, err)
	}
	<-served // http.ErrServerClosed, now that Serve has returned
	return err
}

// requestInfo carries what the outer middleware learns from the router,
// and the caller's role to the handlers.
type requestInfo struct {
	route string
	// role is the bearer token's; valid is false if a token was sent that
	// is not one.
	role  Role
	valid bool
}

type infoKey struct{}

// requestInfoOf returns r's requestInfo; a request that did not come
// through Server.serve (there is none) has no rights.
func requestInfoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// serve wraps the router: it recovers panics into a 500, counts and times
// the request and writes the access log.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{route: "unmatched"}
	info.role, info.valid = s.authenticate(r)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		p := recover()
		if p != nil && p != http.ErrAbortHandler {
			glog.Errorf("httplib: panic serving %s %q: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
			if !rec.wrote {
				writeError(rec, http.StatusInternalServerError, "internal error", "")
				p = nil
			}
		}
		code := rec.code()
		if p != nil {
			// The answer is half sent; abort the connection so the client
			// sees a failure rather than a truncated document.
			code = http.StatusInternalServerError
		}
		elapsed := time.Since(start)
		s.metrics.observe(info.route, r.Method, code, elapsed)
		if glog.V(1) {
			// Never the Authorization header: the role says who called.
			glog.Infof("httplib: %s %q %d %s role=%s", r.Method, r.URL.Path, code, elapsed.Round(time.Microsecond), info.role)
		}
		if p != nil {
			panic(http.ErrAbortHandler)
		}
	}()
	s.router.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	// Which routes exist is no business of a caller without a token.
	info := requestInfoOf(r)
	if !authorize(w, r, accessRead, info.role, info.valid) {
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such route: %s %s", r.Method, echo(r.URL.Path)), "")
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	info := requestInfoOf(r)
	if !authorize(w, r, accessRead, info.role, info.valid) {
		return
	}
	allowed := s.allowedMethods(r)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed,
		fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", echo(r.Method), echo(r.URL.Path), strings.Join(allowed, ", ")), "")
}

// allowedMethods returns the methods some route would take for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allowed []string
	for _, rt := range s.routes {
		probe := &http.Request{Method: rt.method, URL: r.URL, Host: r.Host, Header: r.Header}
		if rt.route.Match(probe, &mux.RouteMatch{}) && !slices.Contains(allowed, rt.method) {
			allowed = append(allowed, rt.method)
		}
	}
	slices.Sort(allowed)
	return allowed
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusRecorder) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// metrics are the API's own: requests by route, method and code.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "stateful", Subsystem: "http", Name: "requests_total",
			Help: "REST API requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "stateful", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "REST API request latency, by route template, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "code"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(route, method string, code int, elapsed time.Duration) {
	// Label values come from a fixed set: a client inventing methods must
	// not create new series.
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	c := fmt.Sprint(code)
	m.requests.WithLabelValues(route, method, c).Inc()
	m.duration.WithLabelValues(route, method, c).Observe(elapsed.Seconds())
}

// glogWriter sends net/http's own error log (TLS handshakes, bad requests
// it answers itself) to glog.
type glogWriter struct{}

func (glogWriter) Write(p []byte) (int, error) {
	glog.WarningDepth(1, "httplib: ", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// glogPrinter is promhttp's error log.
type glogPrinter struct{}

func (glogPrinter) Println(v ...any) { glog.Warning("httplib: metrics: ", fmt.Sprintln(v...)) }
