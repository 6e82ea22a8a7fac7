// Package redistest runs the Redis example for its end-to-end tests and its
// benchmark: a localmesos cluster with short timers in the calling process,
// the framework on it, and a small client of the REST API.
//
// The framework runs its executor by starting its own binary again, so the
// program using this package (a test binary, a benchmark command) must hand
// such a start to the framework first thing in TestMain or main:
//
//	if executor.IsExecutorInvocation(os.Args) {
//		framework.Main(w)
//	}
package redistest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
	"github.com/mesos-stateful/stateful/examples/redis/workload"
	"github.com/mesos-stateful/stateful/framework"
	"github.com/mesos-stateful/stateful/framework/frameworktest"
	"github.com/mesos-stateful/stateful/localmesos"
)

// FrameworkName is the framework's name in Mesos, etcd and container
// labels.
const FrameworkName = "redis-e2e"

// Options describe an environment.
type Options struct {
	// Runtime is the framework's runtime: "process" or "docker".
	Runtime string
	// Agents is the number of local agents; 3 if zero.
	Agents int
	// WorkDir holds the cluster's sandboxes and the framework's data.
	WorkDir string
	// Workload is what the framework runs.
	Workload stateful.Workload
}

// Env is a local cluster with the framework running on it.
type Env struct {
	Cluster *localmesos.Cluster
	// WorkDir holds everything the cluster and the framework write.
	WorkDir string
	// API is the REST API's base URL, http://127.0.0.1:port.
	API string
	api *client.Client

	cancel  context.CancelFunc
	stopped chan struct{}
	err     error
}

// Start starts the cluster and the framework and waits until the
// framework's health check passes.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if opts.Agents == 0 {
		opts.Agents = 3
	}
	if opts.WorkDir == "" || opts.Workload == nil {
		return nil, errors.New("redistest: a work dir and a workload are required")
	}
	lcfg := localmesos.NewConfig()
	lcfg.Port = 0
	lcfg.Agents = opts.Agents
	lcfg.Resources = "cpus:4;mem:4096;disk:8192;ports:[31000-31899]"
	// Other clusters on this host (other test binaries) use 127.0.0.x with
	// the same ports; a server of theirs on our address would pass our
	// health checks. A range of our own, varied by process, avoids them.
	lcfg.FirstAgentIP = fmt.Sprintf("127.77.%d.2", os.Getpid()%250)
	lcfg.WorkDir = filepath.Join(opts.WorkDir, "mesos")
	lcfg.AllocationInterval = 50 * time.Millisecond
	lcfg.HeartbeatInterval = time.Second
	// Host loss is noticed after this long.
	lcfg.AgentPingTimeout = 2 * time.Second
	lcfg.ExecutorShutdownGracePeriod = time.Second
	lcfg.StatusUpdateRetryInterval = time.Second
	// The cluster lives until Close, not until ctx (a start timeout) ends.
	cluster, err := localmesos.Start(context.WithoutCancel(ctx), lcfg)
	if err != nil {
		return nil, fmt.Errorf("redistest: localmesos: %w", err)
	}
	cfg := FastConfig(cluster.MasterURL(), filepath.Join(opts.WorkDir, "framework"), "127.0.0.1:0", opts.Runtime)
	apiAddr := make(chan string, 1)
	cfg.APIReady = func(addr string) { apiAddr <- addr }
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &Env{Cluster: cluster, WorkDir: opts.WorkDir, cancel: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(e.stopped)
		e.err = framework.Run(runCtx, cfg, opts.Workload)
	}()
	select {
	case addr := <-apiAddr:
		e.API = "http://" + addr
		e.api, err = client.New(e.API, nil)
	case <-e.stopped:
	case <-ctx.Done():
		err = fmt.Errorf("redistest: the REST API never listened: %w", ctx.Err())
	}
	if err == nil && e.api != nil {
		err = Poll(ctx, "the framework to be healthy", func() (bool, string) {
			select {
			case <-e.stopped:
				return true, ""
			default:
			}
			h, err := e.api.Health(ctx)
			if err != nil {
				return false, err.Error()
			}
			return h.OK(), fmt.Sprint(h.Problems)
		})
	}
	select {
	case <-e.stopped:
		err = fmt.Errorf("redistest: the framework stopped at start: %w", e.err)
	default:
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close stops the framework and then the cluster (and every process it
// started); it returns the framework's error, if any.
func (e *Env) Close() error {
	e.cancel()
	var err error
	select {
	case <-e.stopped:
		err = e.err
	case <-time.After(30 * time.Second):
		err = errors.New("redistest: the framework still runs 30 s after it was told to stop")
	}
	e.Cluster.Close()
	return err
}

// FastConfig is the framework's configuration for tests: a master at
// masterURL, embedded etcd in dataDir, the REST API on httpAddr, the executor
// run from this binary's path, and timers short enough for tests.
func FastConfig(masterURL, dataDir, httpAddr, runtime string) framework.Config {
	cfg := frameworktest.Config(masterURL, dataDir)
	cfg.HTTPAddr = httpAddr
	cfg.Runtime = runtime
	cfg.Name = FrameworkName
	cfg.Creator.CallbackTimeout = 30 * time.Second
	return cfg
}

// Poll calls check every 50 ms until it reports done, or fails with its
// last message when ctx ends.
func Poll(ctx context.Context, what string, check func() (done bool, msg string)) error {
	for {
		done, msg := check()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; last: %s", what, ctx.Err(), msg)
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// Create posts an instance and expects 202; body is a create request in
// the API's JSON shape (name, type, masters, slaves, spec).
func (e *Env) Create(ctx context.Context, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var req client.CreateRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	_, err = e.api.Create(ctx, req)
	return err
}

// Delete destroys an instance and expects 202.
func (e *Env) Delete(ctx context.Context, name string) error {
	_, err := e.api.Delete(ctx, name)
	return err
}

// Get returns the instance with its tasks; nil and the status code when it
// is not 200.
func (e *Env) Get(ctx context.Context, name string) (*stateful.Instance, int, error) {
	inst, err := e.api.Get(ctx, name)
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr):
		return nil, apiErr.StatusCode, nil
	case err != nil:
		return nil, 0, err
	}
	return inst, http.StatusOK, nil
}

// WaitHealthy waits until the instance is RUNNING with every task running
// and healthy, and returns it.
func (e *Env) WaitHealthy(ctx context.Context, name string) (*stateful.Instance, error) {
	var inst *stateful.Instance
	err := Poll(ctx, name+" RUNNING and healthy", func() (bool, string) {
		got, code, err := e.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint("status ", code, " ", err)
		}
		inst = got
		return AllHealthy(got), Describe(got)
	})
	return inst, err
}

// WaitUpdated waits until the instance is RUNNING with every task running,
// healthy and at the instance's generation (a rolling update done), and
// returns it.
func (e *Env) WaitUpdated(ctx context.Context, name string) (*stateful.Instance, error) {
	var inst *stateful.Instance
	err := Poll(ctx, name+" RUNNING with every task updated and healthy", func() (bool, string) {
		got, code, err := e.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint("status ", code, " ", err)
		}
		inst = got
		if !AllHealthy(got) {
			return false, Describe(got)
		}
		for _, t := range got.Tasks {
			if t.Generation != got.Generation {
				return false, Describe(got)
			}
		}
		return true, ""
	})
	return inst, err
}

// WaitNewMaster waits until GET names a running master of the instance
// other than old (by ordinal), and returns it.
func (e *Env) WaitNewMaster(ctx context.Context, name string, old *stateful.Task) (*stateful.Task, error) {
	var next *stateful.Task
	err := Poll(ctx, "GET to name a new running master of "+name, func() (bool, string) {
		got, code, err := e.Get(ctx, name)
		if err != nil || got == nil {
			return false, fmt.Sprint("status ", code, " ", err)
		}
		next = Master(got)
		return next != nil && next.Ordinal != old.Ordinal && next.State == stateful.TaskRunning, Describe(got)
	})
	return next, err
}

// AllHealthy reports whether inst is RUNNING with exactly its expected
// tasks, all running and healthy.
func AllHealthy(inst *stateful.Instance) bool {
	if inst.Status != stateful.StatusRunning || len(inst.Tasks) != inst.TaskCount() {
		return false
	}
	for _, t := range inst.Tasks {
		if t.State != stateful.TaskRunning || !t.Healthy {
			return false
		}
	}
	return true
}

// Master returns the task GET shows as the master, nil if none.
func Master(inst *stateful.Instance) *stateful.Task {
	for _, t := range inst.Tasks {
		if t.Role == stateful.RoleMaster {
			return t
		}
	}
	return nil
}

// Addr is host:port of task's redis-server.
func Addr(t *stateful.Task) string {
	return net.JoinHostPort(t.Host, strconv.Itoa(t.Ports[workload.PortName]))
}

// Server is task's redis-server with inst's password (which GET shows to
// admin tokens and to APIs without authentication), for resp.
func Server(inst *stateful.Instance, t *stateful.Task) resp.Server {
	return resp.Server{Addr: Addr(t), Password: inst.Spec.Env[workload.PasswordEnv]}
}

// Describe is a one-line account of inst for failure messages.
func Describe(inst *stateful.Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", inst.Name, inst.Status, inst.Message)
	for _, t := range inst.Tasks {
		fmt.Fprintf(&b, "; %s %s %s healthy=%t %s stats=%v %s %s", t.Name, t.Role, t.State, t.Healthy, Addr(t), t.Stats, t.Message, t.Unplaced)
	}
	return b.String()
}

// Client returns the API client the environment uses.
func (e *Env) Client() *client.Client { return e.api }
