package mesoslib

import (
	"errors"
	"fmt"
	"net/url"
	"os/user"
	"strings"
	"time"
	"unicode"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
)

// Defaults for Config.
const (
	DefaultMaster          = "http://127.0.0.1:5050"
	DefaultName            = "stateful"
	DefaultRole            = "*"
	DefaultFailoverTimeout = 7 * 24 * time.Hour
	DefaultCodec           = CodecProtobuf
	// DefaultMissedHeartbeats: Mesos' own advice is to treat five missed
	// heartbeats as a partition.
	DefaultMissedHeartbeats = 5
	DefaultSubscribeBackoff = time.Second
	// DefaultSubscribeMaxBackoff caps the wait between re-subscriptions
	// (Mesos' recommendation is "around 15 s").
	DefaultSubscribeMaxBackoff = 15 * time.Second
	DefaultReconcileInterval   = 10 * time.Minute
	DefaultReconcileBackoff    = 2 * time.Second
	DefaultReconcileMaxBackoff = time.Minute
)

// Codec names for Config.Codec.
const (
	CodecProtobuf = "protobuf"
	CodecJSON     = "json"
)

// schedulerPath is where a Mesos master serves the v1 scheduler API.
const schedulerPath = "/api/v1/scheduler"

// Config describes the framework and how to reach its master.
type Config struct {
	// Master is the base URL of the Mesos master, e.g.
	// http://mesos-master:5050. Several masters may be given separated by
	// commas; subscriptions try them in turn until one accepts (a
	// non-leading master redirects to the leader, which is followed).
	Master string
	// Name, User, Role, Principal, Hostname and WebUIURL go into the
	// FrameworkInfo. Role is the single (non-MULTI_ROLE) role the
	// framework subscribes with.
	Name      string
	User      string
	Role      string
	Principal string
	Hostname  string
	WebUIURL  string
	// Secret, with Principal, authenticates every call to the master with
	// HTTP Basic (Mesos' --authenticate_http_frameworks). Empty: no
	// authentication. Never logged.
	Secret string
	// FailoverTimeout is how long Mesos keeps the framework's tasks
	// running while no scheduler is subscribed. It must be positive: zero
	// means Mesos kills every task the moment the scheduler disconnects,
	// and mesos-go then forgets the framework ID.
	FailoverTimeout time.Duration
	// Checkpoint lets executors survive an agent restart. Fixed by Mesos
	// at the first subscription.
	Checkpoint bool
	// Codec is CodecProtobuf (default) or CodecJSON. mesos-go's JSON
	// decoder rejects enum values it does not know, such as the QUOTA_V2
	// master capability of Mesos 1.12, so JSON only works with older
	// masters and localmesos.
	Codec string

	// MissedHeartbeats is how many heartbeat intervals (as announced in
	// SUBSCRIBED) may pass without any event before the stream is
	// considered dead, closed and re-subscribed.
	MissedHeartbeats int
	// SubscribeBackoff and SubscribeMaxBackoff bound the wait between
	// subscription attempts.
	SubscribeBackoff    time.Duration
	SubscribeMaxBackoff time.Duration

	// ReconcileInterval is the period of implicit reconciliation (asking
	// Mesos for every task it knows of this framework).
	ReconcileInterval time.Duration
	// ReconcileBackoff and ReconcileMaxBackoff bound the wait before the
	// explicit reconciliation after a subscription is resent for tasks
	// that got no answer yet.
	ReconcileBackoff    time.Duration
	ReconcileMaxBackoff time.Duration
}

// NewConfig returns the defaults: a framework named "stateful" in role "*"
// run as the current OS user, a one-week failover timeout, checkpointing on
// and the protobuf codec.
func NewConfig() Config {
	return Config{
		Master:              DefaultMaster,
		Name:                DefaultName,
		User:                currentUser(),
		Role:                DefaultRole,
		FailoverTimeout:     DefaultFailoverTimeout,
		Checkpoint:          true,
		Codec:               DefaultCodec,
		MissedHeartbeats:    DefaultMissedHeartbeats,
		SubscribeBackoff:    DefaultSubscribeBackoff,
		SubscribeMaxBackoff: DefaultSubscribeMaxBackoff,
		ReconcileInterval:   DefaultReconcileInterval,
		ReconcileBackoff:    DefaultReconcileBackoff,
		ReconcileMaxBackoff: DefaultReconcileMaxBackoff,
	}
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "root"
}

// Validate explains the first setting that cannot work.
func (c Config) Validate() error {
	if _, err := c.endpoints(); err != nil {
		return err
	}
	if strings.TrimSpace(c.Name) == "" {
		return errors.New("name: must not be empty")
	}
	if c.Secret != "" && c.Principal == "" {
		return errors.New("secret: needs a principal")
	}
	if strings.Contains(c.Principal, ":") && c.Secret != "" {
		return fmt.Errorf("principal %q: HTTP Basic cannot carry a ':' in it", c.Principal)
	}
	if strings.TrimSpace(c.User) == "" {
		return errors.New("user: must not be empty")
	}
	if err := validateRole(c.Role); err != nil {
		return fmt.Errorf("role %q: %w", c.Role, err)
	}
	if c.WebUIURL != "" {
		if u, err := url.Parse(c.WebUIURL); err != nil || u.Host == "" {
			return fmt.Errorf("web UI URL %q: not an absolute URL", c.WebUIURL)
		}
	}
	if c.FailoverTimeout <= 0 {
		return fmt.Errorf("failover timeout %v: must be positive (0 makes Mesos kill every task when the scheduler disconnects)", c.FailoverTimeout)
	}
	if _, err := c.codec(); err != nil {
		return err
	}
	if c.MissedHeartbeats < 2 {
		return fmt.Errorf("missed heartbeats %d: must be at least 2", c.MissedHeartbeats)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"subscribe backoff", c.SubscribeBackoff},
		{"subscribe max backoff", c.SubscribeMaxBackoff},
		{"reconcile interval", c.ReconcileInterval},
		{"reconcile backoff", c.ReconcileBackoff},
		{"reconcile max backoff", c.ReconcileMaxBackoff},
	} {
		if d.d <= 0 {
			return fmt.Errorf("%s %v: must be positive", d.name, d.d)
		}
	}
	if c.SubscribeMaxBackoff < c.SubscribeBackoff {
		return fmt.Errorf("subscribe max backoff %v: must not be below subscribe backoff %v", c.SubscribeMaxBackoff, c.SubscribeBackoff)
	}
	if c.ReconcileMaxBackoff < c.ReconcileBackoff {
		return fmt.Errorf("reconcile max backoff %v: must not be below reconcile backoff %v", c.ReconcileMaxBackoff, c.ReconcileBackoff)
	}
	return nil
}

// endpoints turns Master into scheduler API URLs.
func (c Config) endpoints() ([]string, error) {
	var out []string
	for _, m := range strings.Split(c.Master, ",") {
		m = strings.TrimSpace(m)
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("master %q: want http://host:port or https://host:port", m)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("master %q: no user, query or fragment allowed", m)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + schedulerPath
		u.RawPath = ""
		out = append(out, u.String())
	}
	return out, nil
}

func (c Config) codec() (encoding.Codec, error) {
	switch c.Codec {
	case CodecProtobuf:
		return codecs.ByMediaType[codecs.MediaTypeProtobuf], nil
	case CodecJSON:
		return codecs.ByMediaType[codecs.MediaTypeJSON], nil
	}
	return encoding.Codec{}, fmt.Errorf("codec %q: want %q or %q", c.Codec, CodecProtobuf, CodecJSON)
}

// validateRole applies Mesos' role name rules (roles.cpp): "*" or one or
// more '/'-separated segments, none empty, ".", ".." or "*", none starting
// with '-', and no whitespace, control characters or backslashes.
func validateRole(role string) error {
	if role == "*" {
		return nil
	}
	if role == "" {
		return errors.New("must not be empty")
	}
	for _, seg := range strings.Split(role, "/") {
		switch {
		case seg == "":
			return errors.New("empty path segment")
		case seg == "." || seg == ".." || seg == "*":
			return fmt.Errorf("segment %q is reserved", seg)
		case strings.HasPrefix(seg, "-"):
			return errors.New("a segment must not start with '-'")
		}
		for _, r := range seg {
			if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\\' {
				return fmt.Errorf("character %q is not allowed", r)
			}
		}
	}
	return nil
}

// Capabilities the framework announces. PARTITION_AWARE makes Mesos report
// an agent partition as TASK_UNREACHABLE (which may come back RUNNING)
// rather than TASK_LOST, and reports TASK_DROPPED, TASK_GONE,
// TASK_GONE_BY_OPERATOR and TASK_UNKNOWN instead of lumping them into
// TASK_LOST. TASK_KILLING_STATE lets executors report a graceful stop in
// progress (a database flushing to disk) as TASK_KILLING, which is not
// terminal. Neither MULTI_ROLE nor RESERVATION_REFINEMENT is announced, so
// offers keep the single-role resource format.
var capabilities = []mesos.FrameworkInfo_Capability_Type{
	mesos.FrameworkInfo_Capability_PARTITION_AWARE,
	mesos.FrameworkInfo_Capability_TASK_KILLING_STATE,
}

// frameworkInfo builds the FrameworkInfo to subscribe with; the framework
// ID is added per subscription by controller.Run.
func (c Config) frameworkInfo() *mesos.FrameworkInfo {
	failover := c.FailoverTimeout.Seconds()
	checkpoint := c.Checkpoint
	role := c.Role
	fi := &mesos.FrameworkInfo{
		User:            c.User,
		Name:            c.Name,
		FailoverTimeout: &failover,
		Checkpoint:      &checkpoint,
		Role:            &role,
	}
	if c.Principal != "" {
		p := c.Principal
		fi.Principal = &p
	}
	if c.Hostname != "" {
		h := c.Hostname
		fi.Hostname = &h
	}
	if c.WebUIURL != "" {
		w := c.WebUIURL
		fi.WebUiURL = &w
	}
	for _, t := range capabilities {
		fi.Capabilities = append(fi.Capabilities, mesos.FrameworkInfo_Capability{Type: t})
	}
	return fi
}
