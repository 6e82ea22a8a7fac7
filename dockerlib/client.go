// Package dockerlib is the project's thin layer over the Docker Engine API
// client (github.com/docker/docker/client). It runs a workload task as a
// container described by a ContainerSpec, watches it (Wait, Inspect, Stats,
// Logs), runs commands in it (Exec), and finds and removes the containers a
// framework left behind (List, Cleanup) through a fixed label scheme.
//
// Every method takes a context.Context and returns errors that name the
// container or image involved; a Client holds no state beyond its connection
// and is safe for concurrent use.
package dockerlib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// DefaultPingTimeout bounds Ping and Available when Options.PingTimeout is 0:
// a local engine answers in milliseconds, and runtime=auto must not hang on a
// socket nobody serves.
const DefaultPingTimeout = 2 * time.Second

// ErrUnavailable is wrapped by the error Available returns when no Docker
// engine answers.
var ErrUnavailable = errors.New("docker engine unavailable")

// Options configures New. The zero value connects to the engine named by the
// environment (DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY, default
// unix:///var/run/docker.sock).
type Options struct {
	// Host overrides DOCKER_HOST, e.g. "unix:///var/run/docker.sock" or
	// "tcp://127.0.0.1:2375".
	Host string
	// PingTimeout bounds Ping and Available; 0 means DefaultPingTimeout.
	PingTimeout time.Duration
}

// Client talks to one Docker engine. Create it with New.
type Client struct {
	api         *client.Client
	pingTimeout time.Duration
}

// New returns a Client for the engine opts name, with API version negotiation
// so a current client works with older engines (e.g. API 1.41 of Docker 20.10).
// New fails only on invalid options: it tries to negotiate within PingTimeout
// and, when no engine answers, still returns a Client (negotiation is retried on
// the first call). Call Available to learn whether an engine answers and why not.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.PingTimeout < 0 {
		return nil, fmt.Errorf("dockerlib: ping timeout %v is negative", opts.PingTimeout)
	}
	clientOpts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.Host))
	}
	api, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("dockerlib: docker client for %q: %w", hostOrEnv(opts.Host), err)
	}
	c := &Client{api: api, pingTimeout: opts.PingTimeout}
	if c.pingTimeout == 0 {
		c.pingTimeout = DefaultPingTimeout
	}
	// Negotiating now keeps the version fixed for the calls that follow;
	// failure is not an error here (see Available).
	_ = c.Ping(ctx)
	return c, nil
}

func hostOrEnv(host string) string {
	if host == "" {
		return "from environment"
	}
	return host
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	return c.api.Close()
}

// Host is the engine address the client talks to.
func (c *Client) Host() string {
	return c.api.DaemonHost()
}

// APIVersion is the Engine API version in use (negotiated once an engine has
// answered).
func (c *Client) APIVersion() string {
	return c.api.ClientVersion()
}

// Ping asks the engine whether it is up, within the ping timeout, and
// negotiates the API version on the first answer.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.pingTimeout)
	defer cancel()
	ping, err := c.api.Ping(ctx)
	if err != nil {
		return err
	}
	c.api.NegotiateAPIVersionPing(ping)
	return nil
}

// Available returns nil when the engine answers a ping within the ping
// timeout, and otherwise an error wrapping ErrUnavailable that says which
// engine was asked and, where it can tell, why it did not answer.
func (c *Client) Available(ctx context.Context) error {
	err := c.Ping(ctx)
	if err == nil {
		return nil
	}
	cause := err
	if client.IsErrConnectionFailed(err) {
		// The client's message drops the reason; dialling again finds it.
		if dialErr := c.dial(ctx); dialErr != nil {
			cause = dialErr
		}
	}
	hint := ""
	switch {
	case errors.Is(cause, syscall.ENOENT):
		hint = " (no socket there: is dockerd installed and running?)"
	case errors.Is(cause, syscall.EACCES) || errors.Is(cause, syscall.EPERM):
		hint = " (permission denied: run as root or add this user to the docker group)"
	case errors.Is(cause, syscall.ECONNREFUSED):
		hint = " (connection refused: is dockerd running?)"
	case errors.Is(cause, context.DeadlineExceeded) && ctx.Err() == nil:
		hint = fmt.Sprintf(" (no answer within %v)", c.pingTimeout)
	}
	return fmt.Errorf("%w: no Docker engine answers at %s%s: %w", ErrUnavailable, c.Host(), hint, cause)
}

// dial connects to the engine's address the way the client would.
func (c *Client) dial(ctx context.Context) error {
	u, err := client.ParseHostURL(c.Host())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.pingTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, u.Scheme, u.Host) // for unix://, Host is the socket path
	if err != nil {
		return err
	}
	return conn.Close()
}

// IsNotFound reports whether err says a container or image does not exist.
func IsNotFound(err error) bool {
	return cerrdefs.IsNotFound(err)
}

// IsConflict reports whether err says the container's state does not allow
// the operation, e.g. an exec in a container that is not running (any
// more).
func IsConflict(err error) bool {
	return cerrdefs.IsConflict(err)
}
