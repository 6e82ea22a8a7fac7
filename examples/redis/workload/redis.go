// Package workload is the Redis example's stateful.Workload: master/slave
// Redis with append-only persistence in each task's volume and automatic
// failover to the most up-to-date slave.
//
// Every task runs redis-server bound to its agent's address on the port the
// offer gave it. The master (and the single task of an S instance) starts on
// its own; a slave starts with --replicaof pointing at the master. When the
// master is lost, MasterLost asks every running slave how far it has
// replicated, promotes the furthest (REPLICAOF NO ONE), records the promotion
// and re-points the other slaves; the toolkit then relaunches the lost
// ordinal, which comes back as a slave of the new master.
//
// Health and stats run in the executor, next to the task: a task is healthy
// when redis-server answers PING and, for a slave, once its link to the
// master is up (the initial sync is done). Stats are taken from INFO.
package workload

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/internal/secretfile"
)

// Defaults of Options.
const (
	DefaultImage       = "redis:7"
	DefaultCommand     = "redis-server"
	DefaultCLI         = "redis-cli"
	DefaultExecTimeout = 10 * time.Second
)

// PasswordEnv is the spec env variable holding an instance's password:
// generated for each new instance by Defaults, stored with the instance (in
// etcd), given to its tasks as their environment, and shown by the REST
// API to admin tokens only. Clients AUTH with it; redis-cli inside the
// tasks finds it as REDISCLI_AUTH.
const PasswordEnv = "REDIS_PASSWORD"

// PortName is the port every task asks for and redis-server listens on.
const PortName = "redis"

// DefaultVolume is where a task's data lives inside the task.
const DefaultVolume = "/data"

// Options configure the workload.
type Options struct {
	// Image is the Docker image tasks run when the framework runs them in
	// containers; DefaultImage if empty. The image must have redis-server
	// and redis-cli on its PATH, a shell (the spec's command is a shell
	// line) and /data as its working directory, like the official image.
	Image string
	// Command is the program tasks run: redis-server in the container, or
	// on the agent when the framework runs plain processes; DefaultCommand
	// if empty.
	Command string
	// CLI is the redis-cli program run inside tasks for health, stats and
	// failover; DefaultCLI (looked up in the task's PATH) if empty.
	CLI string
	// ExecTimeout bounds each command run inside a task; DefaultExecTimeout
	// if zero.
	ExecTimeout time.Duration
	// AllowedImages are the images a request may ask for (spec.image);
	// only Image if empty.
	AllowedImages []string
}

// Redis is the workload. Create it with New.
type Redis struct {
	stateful.BaseWorkload
	opts Options

	// handle is the Handle Init gave, for Config to read the master's
	// placement when inst.Tasks does not carry the tasks.
	handle atomic.Pointer[stateful.Handle]
}

var (
	_ stateful.Workload          = (*Redis)(nil)
	_ stateful.StatsReporter     = (*Redis)(nil)
	_ stateful.HealthChecker     = (*Redis)(nil)
	_ stateful.InstanceValidator = (*Redis)(nil)
	_ stateful.SpecPolicy        = (*Redis)(nil)
	_ stateful.Initializer       = (*Redis)(nil)
	_ stateful.Switchoverer      = (*Redis)(nil)
)

// New returns the workload with opts, defaults filled in.
func New(opts Options) (*Redis, error) {
	r := &Redis{opts: opts}
	if err := r.fillDefaults(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Redis) fillDefaults() error {
	if r.opts.Image == "" {
		r.opts.Image = DefaultImage
	}
	if r.opts.Command == "" {
		r.opts.Command = DefaultCommand
	}
	if r.opts.CLI == "" {
		r.opts.CLI = DefaultCLI
	}
	if r.opts.ExecTimeout < 0 {
		return fmt.Errorf("redis workload: negative exec timeout %v", r.opts.ExecTimeout)
	}
	if r.opts.ExecTimeout == 0 {
		r.opts.ExecTimeout = DefaultExecTimeout
	}
	return nil
}

// allowedImages are the images requests may name.
func (r *Redis) allowedImages() []string {
	if len(r.opts.AllowedImages) > 0 {
		return r.opts.AllowedImages
	}
	return []string{r.opts.Image}
}

// AllowSpec is the example's stateful.SpecPolicy: a request may not choose
// the program tasks run (spec.command: it would run anything, as the
// agent's user, on every agent) but may reset it with null to the
// scheduler's -redis-command, may name only an allowed image, and may not
// set the env (which holds the instance's password, and whose replacement
// by a PATCH, even a reset to the defaults, would change the password
// under a running instance).
func (r *Redis) AllowSpec(given []string, requested stateful.Spec) error {
	for _, f := range given {
		switch f {
		case "command":
			if requested.Command == "" { // null: back to the scheduler's own command
				continue
			}
			return &stateful.ValidationError{Field: "spec.command", Msg: "may not be set by a request: the Redis example runs redis-server (the scheduler's -redis-command)"}
		case "env":
			return &stateful.ValidationError{Field: "spec.env", Msg: "may not be set by a request: the Redis example sets its tasks' environment (" + PasswordEnv + ") itself"}
		case "image":
			if requested.Image != "" && !slices.Contains(r.allowedImages(), requested.Image) {
				return &stateful.ValidationError{Field: "spec.image", Msg: fmt.Sprintf("%q is not an allowed image (allowed: %s; the scheduler's -redis-allowed-images)", requested.Image, strings.Join(r.allowedImages(), ", "))}
			}
		}
	}
	return nil
}

// RegisterFlags binds the options that shape new instances' defaults to
// flags of fs (-redis-image, -redis-command), for a main that parses fs
// before the first request, as framework.Main does. The other options are
// used in the executor too, which is started without these flags.
func (r *Redis) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("redis-image", fmt.Sprintf("Docker image of new instances' tasks when they run in containers (default %q)", r.opts.Image), setString(&r.opts.Image))
	fs.Func("redis-command", fmt.Sprintf("redis-server command line of new instances' tasks (default %q)", r.opts.Command), setString(&r.opts.Command))
	fs.Func("redis-allowed-images", "comma-separated images a create or update request may name in spec.image (default: -redis-image only)", func(v string) error {
		var images []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				images = append(images, s)
			}
		}
		if len(images) == 0 {
			return errors.New("no image")
		}
		r.opts.AllowedImages = images
		return nil
	})
}

func setString(p *string) func(string) error {
	return func(v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		*p = v
		return nil
	}
}

// Options returns the options in use, defaults filled in.
func (r *Redis) Options() Options { return r.opts }

// Defaults asks for half a core, 256 MB of memory, 1 GB of disk, one port
// named "redis", a volume at /data, Options.Image (the docker runtime's)
// and Options.Command (run in the image, or alone by the process runtime),
// and a TCP health check on the port; CheckHealth adds PING and the
// replication link. Its env holds a new random password on every call, so
// that each instance created gets its own (requests may not set env, see
// AllowSpec).
func (r *Redis) Defaults() stateful.Spec {
	return stateful.Spec{
		Env:     map[string]string{PasswordEnv: secretfile.Generate(24)},
		CPU:     0.5,
		Mem:     256,
		Disk:    1024,
		Image:   r.opts.Image,
		Command: r.opts.Command,
		Network: stateful.NetworkHost,
		Ports:   []string{PortName},
		Volume:  DefaultVolume,
		Health: &stateful.HealthCheck{
			TCP:       PortName,
			IntervalS: 5,
			GraceS:    60,
			TimeoutS:  3,
			// A slave fails CheckHealth while its master is lost, until the
			// failover re-points it; a real Mesos master takes up to 75 s to
			// declare an agent lost. Killing the slaves the failover needs
			// would lose data, so only a server unhealthy for 2 minutes is
			// replaced.
			ConsecutiveFailures: ptr(24),
		},
	}
}

// errUnsupportedType is returned for C instances: Redis peers would need
// Redis Cluster, which this example does not set up.
var errUnsupportedType = errors.New("the Redis example runs S and MS instances; C (Redis Cluster) is not supported")

// Init keeps h for Config.
func (r *Redis) Init(h stateful.Handle) { r.handle.Store(&h) }

// Start refuses instance shapes the example cannot run.
func (r *Redis) Start(_ context.Context, _ stateful.Handle, inst *stateful.Instance) error {
	return checkInstance(inst)
}

func ptr[T any](v T) *T { return &v }

// ValidateInstance refuses, at request time (400), instances this example
// cannot run.
func (r *Redis) ValidateInstance(inst *stateful.Instance) error {
	return checkInstance(inst)
}

func checkInstance(inst *stateful.Instance) error {
	if inst.Type == stateful.TypeCluster {
		return &stateful.ValidationError{Field: "type", Msg: errUnsupportedType.Error()}
	}
	if inst.Spec.Network == stateful.NetworkBridge {
		// Health, stats and failover run redis-cli inside the task against
		// the agent address the server binds; on a bridge the server cannot
		// bind it.
		return &stateful.ValidationError{Field: "spec.network", Msg: fmt.Sprintf("the Redis example needs host networking, not %q", inst.Spec.Network)}
	}
	if !inst.Spec.HasPort(PortName) {
		return &stateful.ValidationError{Field: "spec.ports", Msg: fmt.Sprintf("must name %q, the port redis-server listens on", PortName)}
	}
	return nil
}

// Config makes the launch's redis-server arguments: its address, persistence
// and, for a slave, its master.
func (r *Redis) Config(_ context.Context, inst *stateful.Instance, task *stateful.Task) (stateful.LaunchConfig, error) {
	if err := checkInstance(inst); err != nil {
		return stateful.LaunchConfig{}, err
	}
	port, ok := task.Ports[PortName]
	if !ok || port <= 0 {
		return stateful.LaunchConfig{}, fmt.Errorf("task %s: no %q port in this launch's placement", task.Name, PortName)
	}
	if task.Host == "" {
		return stateful.LaunchConfig{}, fmt.Errorf("task %s: no host in this launch's placement", task.Name)
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", task.Host,
		// Every task persists: a slave may be promoted at any time.
		"--appendonly", "yes",
	}
	var env map[string]string
	if pw := inst.Spec.Env[PasswordEnv]; pw != "" {
		// masterauth too: every server may become a replica. redis-server
		// replaces its process title, so the arguments do not stay in ps.
		args = append(args, "--requirepass", pw, "--masterauth", pw)
		env = map[string]string{"REDISCLI_AUTH": pw}
	} else {
		// An instance created before passwords: clients come from other
		// hosts, and it has none.
		args = append(args, "--protected-mode", "no")
	}
	if !strings.Contains(inst.Spec.Command, "repl-diskless-sync-delay") {
		// Redis waits 5 s for more replicas before a diskless sync; a
		// new or relaunched slave would be that much later healthy.
		args = append(args, "--repl-diskless-sync-delay", "0")
	}
	if inst.Spec.Volume != "" {
		dir, err := dataDir(inst)
		if err != nil {
			return stateful.LaunchConfig{}, err
		}
		args = append(args, "--dir", dir)
	}
	switch task.Role {
	case stateful.RoleMaster:
	case stateful.RoleSlave:
		master, err := r.masterFor(inst)
		if err != nil {
			return stateful.LaunchConfig{}, fmt.Errorf("task %s: %w", task.Name, err)
		}
		if master.Ordinal == task.Ordinal {
			return stateful.LaunchConfig{}, fmt.Errorf("task %s is stored as a slave and as the master of %s", task.Name, inst.Name)
		}
		host, mport, err := addrOf(master)
		if err != nil {
			return stateful.LaunchConfig{}, fmt.Errorf("task %s: master not placed yet: %w", task.Name, err)
		}
		args = append(args, "--replicaof", host, strconv.Itoa(mport))
	default:
		return stateful.LaunchConfig{}, fmt.Errorf("task %s: role %q: %w", task.Name, task.Role, errUnsupportedType)
	}
	return stateful.LaunchConfig{Args: args, Env: env}, nil
}

// dataDir is the volume as redis-server sees it. A spec with no command
// runs the image's entrypoint in a container, where the volume is mounted at
// the spec's path. With a command, the framework may run a process, whose
// working directory is its volume, or run the command in the image, whose
// working directory is /data (as in the official image); both are ".".
func dataDir(inst *stateful.Instance) (string, error) {
	if inst.Spec.Command == "" {
		return inst.Spec.Volume, nil
	}
	if inst.Spec.Image != "" && path.Clean(inst.Spec.Volume) != DefaultVolume {
		return "", fmt.Errorf("instance %s: volume %q: with both an image and a command the volume must be %s, the image's working directory; leave the command out to use another path", inst.Name, inst.Spec.Volume, DefaultVolume)
	}
	return ".", nil
}

// masterFor returns inst's master task: from inst.Tasks when the toolkit
// filled them, otherwise from the stored tasks through the last Handle.
func (r *Redis) masterFor(inst *stateful.Instance) (*stateful.Task, error) {
	tasks := inst.Tasks
	if len(tasks) == 0 {
		h := r.handle.Load()
		if h == nil {
			return nil, errors.New("the master's placement is unknown: Init has not handed the workload a Handle yet")
		}
		tasks = (*h).Tasks(inst)
	}
	master := masterOf(inst, tasks)
	if master == nil {
		return nil, fmt.Errorf("instance %s has no master task", inst.Name)
	}
	return master, nil
}

// masterOf returns the task holding the master role, nil if none does.
func masterOf(inst *stateful.Instance, tasks []*stateful.Task) *stateful.Task {
	var byRole *stateful.Task
	for _, t := range tasks {
		if t.Role != stateful.RoleMaster {
			continue
		}
		if t.Ordinal == inst.MasterOrdinal {
			return t
		}
		byRole = t
	}
	return byRole
}

// addrOf returns where task's redis-server listens.
func addrOf(task *stateful.Task) (string, int, error) {
	port := task.Ports[PortName]
	if task.Host == "" || port <= 0 {
		return "", 0, fmt.Errorf("task %s has no address (state %s)", task.Name, task.State)
	}
	return task.Host, port, nil
}
