package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/executor/protocol"
)

// LabelExecutorProcess identifies the executor process that started a
// container: "<pid namespace>/<pid>/<start time>". The executor ID alone
// cannot tell a dead executor from a live one (IDs may be reused, and all
// agents of a local cluster share one host); a process's pid and start time
// can.
const LabelExecutorProcess = "io.stateful.executor-process"

const (
	// waitRetries bounds how often a lost Wait on a container is retried
	// (one per second) before the workload is given up as ended.
	waitRetries = 60
	// removeTimeout bounds removing an ended container.
	removeTimeout = 30 * time.Second
	// orphanGrace is the stop grace for containers of dead executors.
	orphanGrace = time.Second
)

// dockerClient is what the docker runtime needs of *dockerlib.Client.
type dockerClient interface {
	EnsureImage(ctx context.Context, ref string) error
	Run(ctx context.Context, spec dockerlib.ContainerSpec) (string, error)
	Wait(ctx context.Context, id string) (dockerlib.ExitStatus, error)
	Stop(ctx context.Context, id string, grace time.Duration) error
	Kill(ctx context.Context, id, signal string) error
	Remove(ctx context.Context, id string, force bool) error
	Exec(ctx context.Context, id string, cmd []string, env map[string]string) (dockerlib.ExecResult, error)
	Stats(ctx context.Context, id string) (dockerlib.Stats, error)
	LogsSince(ctx context.Context, id string, since time.Time, stdout, stderr io.Writer) error
	List(ctx context.Context, selector map[string]string) ([]dockerlib.ContainerInfo, error)
	Inspect(ctx context.Context, id string) (dockerlib.ContainerState, error)
	Cleanup(ctx context.Context, selector map[string]string, grace time.Duration) ([]string, error)
}

// DockerRuntime runs a task as a Docker container: the task's image with
// its command (Command through /bin/sh -c replacing the entrypoint, or Args
// as the container's command after the image's entrypoint), CPU and memory
// limits, host networking or bridge networking with each named port
// published on the agent's IP at the same port number inside, the volume
// bind-mounted, the task's environment, and labels naming the framework,
// instance, ordinal, task, executor and executor process. Output is
// streamed into the sandbox. An ended container is removed.
type DockerRuntime struct {
	client dockerClient
	owner  string // this process's LabelExecutorProcess value
}

// NewDockerRuntime returns a docker runtime using client.
func NewDockerRuntime(client *dockerlib.Client) (*DockerRuntime, error) {
	return newDockerRuntime(client)
}

func newDockerRuntime(client dockerClient) (*DockerRuntime, error) {
	owner, err := processIdentity(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("docker runtime: identify this process: %w", err)
	}
	return &DockerRuntime{client: client, owner: owner}, nil
}

// connectDocker connects to the engine named by the environment and
// checks that it answers.
func connectDocker(ctx context.Context) (Runtime, error) {
	c, err := dockerlib.New(ctx, dockerlib.Options{})
	if err != nil {
		return nil, err
	}
	if err := c.Available(ctx); err != nil {
		c.Close()
		return nil, err
	}
	rt, err := NewDockerRuntime(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	glog.Infof("executor: docker engine at %s answers (API %s)", c.Host(), c.APIVersion())
	return rt, nil
}

// Name implements Runtime.
func (*DockerRuntime) Name() string { return protocol.RuntimeDocker }

// Start implements Runtime.
func (r *DockerRuntime) Start(ctx context.Context, spec StartSpec) (Workload, error) {
	d := spec.Data
	if d.Image == "" {
		return nil, errors.New("the docker runtime needs an image")
	}
	if err := r.client.EnsureImage(ctx, d.Image); err != nil {
		return nil, err
	}
	cs, err := r.containerSpec(spec)
	if err != nil {
		return nil, err
	}
	id, err := r.client.Run(ctx, cs)
	if err != nil {
		return nil, err
	}
	logCtx, stopLogs := context.WithCancel(context.Background())
	c := &container{
		client:   r.client,
		id:       id,
		tail:     newTailBuffer(stderrTailBytes),
		exited:   make(chan struct{}),
		done:     make(chan struct{}),
		logsDone: make(chan struct{}),
		stopLogs: stopLogs,
	}
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	go c.streamLogs(logCtx, stdout, io.MultiWriter(stderr, c.tail))
	go c.wait()
	glog.V(1).Infof("docker runtime: task %s runs in container %s (%s)", spec.TaskID, shortContainerID(id), cs.Name)
	return c, nil
}

var containerNameChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

func (r *DockerRuntime) containerSpec(spec StartSpec) (dockerlib.ContainerSpec, error) {
	d := spec.Data
	labels := make(map[string]string, len(d.Labels)+8)
	for k, v := range d.Labels {
		labels[k] = v
	}
	for k, v := range (dockerlib.TaskLabels{
		Framework:   d.Framework,
		FrameworkID: spec.FrameworkID,
		Instance:    d.Instance,
		Ordinal:     d.Ordinal,
		TaskID:      spec.TaskID,
		ExecutorID:  spec.ExecutorID,
	}).Map() {
		labels[k] = v
	}
	labels[LabelExecutorProcess] = r.owner

	volume := ""
	if d.Volume != nil {
		volume = d.Volume.ContainerPath
		if volume == "" {
			return dockerlib.ContainerSpec{}, errors.New("the docker runtime needs volume.container_path")
		}
	}
	// Task IDs may hold characters a container name may not; the random
	// suffix keeps two frameworks' equal task IDs apart.
	name := "stateful-" + containerNameChars.ReplaceAllString(spec.TaskID, "-") + "-" + fmt.Sprintf("%x", newUUID()[:4])
	cs := dockerlib.ContainerSpec{
		Name:     name,
		Image:    d.Image,
		Env:      taskEnv(spec, volume),
		Labels:   labels,
		CPUs:     d.CPU,
		MemoryMB: int64(math.Ceil(d.MemMB)),
		Network:  dockerlib.NetworkHost,
	}
	switch {
	case d.Command != "":
		cs.Entrypoint = []string{"/bin/sh", "-c"}
		cs.Cmd = []string{shellCommand(d.Command)}
	case len(d.Args) > 0:
		cs.Cmd = d.Args
	}
	if d.Network == protocol.NetworkBridge {
		cs.Network = dockerlib.NetworkBridge
		names := make([]string, 0, len(d.Ports))
		for n := range d.Ports {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			// Same number inside and out: the STATEFUL_PORT_* variables
			// then hold the port to listen on and the one to advertise.
			p := uint16(d.Ports[n])
			cs.Ports = append(cs.Ports, dockerlib.PortBinding{ContainerPort: p, HostIP: spec.Host, HostPort: p})
		}
	}
	if d.Volume != nil {
		cs.Mounts = []dockerlib.Mount{{HostPath: d.Volume.HostPath, ContainerPath: d.Volume.ContainerPath}}
	}
	return cs, nil
}

// CleanupOrphans stops and removes the containers of this framework whose
// executor process is dead. Containers of live executors, and of executors
// in another pid namespace (whose liveness cannot be judged from here), are
// left alone.
func (r *DockerRuntime) CleanupOrphans(ctx context.Context, frameworkID string) error {
	if frameworkID == "" {
		return nil
	}
	found, err := r.client.List(ctx, map[string]string{dockerlib.LabelFrameworkID: frameworkID})
	if err != nil {
		return fmt.Errorf("list containers of framework %s: %w", frameworkID, err)
	}
	dead := map[string]bool{}
	for _, c := range found {
		owner := c.Labels[LabelExecutorProcess]
		if owner == "" || owner == r.owner || dead[owner] {
			continue
		}
		if alive, known := processAlive(owner); known && !alive {
			glog.Infof("executor: container %s (task %s) belongs to dead executor %s (%s); removing it",
				shortContainerID(c.ID), c.Labels[dockerlib.LabelTaskID], c.Labels[dockerlib.LabelExecutorID], owner)
			dead[owner] = true
		}
	}
	var errs []error
	for owner := range dead {
		if _, err := r.client.Cleanup(ctx, map[string]string{dockerlib.LabelFrameworkID: frameworkID, LabelExecutorProcess: owner}, orphanGrace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveOwn stops and removes whatever containers of the framework this
// executor process started are still there. It is the last sweep before
// the executor exits: every task has been stopped by then, and a stopped
// task's container is removed, but a container the engine created while
// its start was being cancelled, or one whose removal failed, would
// otherwise outlive us (nobody removes it until another executor of the
// framework starts on this host).
func (r *DockerRuntime) RemoveOwn(ctx context.Context, frameworkID string) error {
	if frameworkID == "" {
		return nil
	}
	removed, err := r.client.Cleanup(ctx, map[string]string{dockerlib.LabelFrameworkID: frameworkID, LabelExecutorProcess: r.owner}, 0)
	if len(removed) > 0 {
		glog.Warningf("executor: removed %d container(s) of ours that outlived their task", len(removed))
	}
	return err
}

// processIdentity is LabelExecutorProcess's value for pid.
func processIdentity(pid int) (string, error) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return "", err
	}
	start, _, err := procStartTime(pid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/%d/%d", ns, pid, start), nil
}

// processAlive says whether the process an identity names still runs;
// known is false when it lives in another pid namespace than ours.
func processAlive(identity string) (alive, known bool) {
	parts := strings.Split(identity, "/")
	if len(parts) != 3 {
		return false, false
	}
	ours, err := os.Readlink("/proc/self/ns/pid")
	if err != nil || ours != parts[0] {
		return false, false
	}
	pid, err1 := strconv.Atoi(parts[1])
	start, err2 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return false, false
	}
	got, zombie, err := procStartTime(pid)
	if err != nil {
		return false, true // no such process
	}
	return got == start && !zombie, true
}

// procStartTime reads a process's start time (field 22 of
// /proc/<pid>/stat, clock ticks since boot) and whether it is a zombie.
func procStartTime(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, false, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z", err
}

func shortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// container is a task running in a Docker container.
type container struct {
	client   dockerClient
	id       string
	tail     *tailBuffer
	exited   chan struct{} // closed once Wait has answered
	done     chan struct{}
	logsDone chan struct{}
	stopLogs context.CancelFunc
	exit     ExitStatus

	listeners ownedListeners // for checkListener
}

func (c *container) streamLogs(ctx context.Context, stdout, stderr io.Writer) {
	defer close(c.logsDone)
	if err := c.client.LogsSince(ctx, c.id, time.Time{}, stdout, stderr); err != nil && ctx.Err() == nil {
		glog.Warningf("docker runtime: output of container %s: %v", shortContainerID(c.id), err)
	}
}

// wait waits for the container to end, lets its last output arrive,
// removes it and records the exit.
func (c *container) wait() {
	exit := ExitStatus{Code: -1}
	for attempt := 0; ; attempt++ {
		st, err := c.client.Wait(context.Background(), c.id)
		if err == nil {
			// Docker reports a death by signal N as 128+N, which a plain
			// exit could also produce: report the code as it is.
			exit = ExitStatus{Code: st.Code}
			var notes []string
			if st.OOMKilled {
				notes = append(notes, "OOM killed")
			}
			if st.Error != "" {
				notes = append(notes, st.Error)
			}
			exit.Detail = strings.Join(notes, "; ")
			break
		}
		if dockerlib.IsNotFound(err) || attempt >= waitRetries {
			exit.Err = fmt.Errorf("lost track of container %s: %w", shortContainerID(c.id), err)
			break
		}
		glog.Warningf("docker runtime: %v (retrying)", err)
		time.Sleep(time.Second)
	}
	close(c.exited)
	select {
	case <-c.logsDone:
	case <-time.After(drainWait):
	}
	c.stopLogs()
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	if err := c.client.Remove(ctx, c.id, true); err != nil {
		glog.Warningf("docker runtime: %v", err)
	}
	cancel()
	c.exit = exit
	close(c.done)
}

func (c *container) Exited() <-chan struct{} { return c.exited }

// Alive implements Workload by asking the engine, which learns of an exit
// before our Wait does.
func (c *container) Alive(ctx context.Context) bool {
	select {
	case <-c.exited:
		return false
	default:
	}
	st, err := c.client.Inspect(ctx, c.id)
	if err != nil {
		return !dockerlib.IsNotFound(err)
	}
	return st.Running
}

func (c *container) Done() <-chan struct{} { return c.done }

func (c *container) Exit() ExitStatus {
	<-c.done
	return c.exit
}

func (c *container) StderrTail() string { return c.tail.Lines(stderrTailLines) }

func (c *container) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	glog.V(1).Infof("docker runtime: stopping container %s (grace %v)", shortContainerID(c.id), grace)
	var err error
	if grace >= time.Second {
		// The engine counts whole seconds and dockerlib rounds up; round
		// down, so that a stop never outlasts the budget it was given
		// (SHUTDOWN must end within the agent's grace period).
		err = c.client.Stop(ctx, c.id, grace.Truncate(time.Second))
	} else {
		// Below a second: SIGTERM and our own timer.
		if kerr := c.client.Kill(ctx, c.id, "SIGTERM"); kerr != nil {
			glog.V(1).Infof("docker runtime: %v", kerr)
		}
		t := time.NewTimer(grace)
		select {
		case <-c.done:
			t.Stop()
			return nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		err = fmt.Errorf("container %s still running after %v", shortContainerID(c.id), grace)
	}
	if err != nil {
		// Cut short (a forced kill) or the engine failed: kill outright.
		kctx, cancel := context.WithTimeout(context.Background(), killWait)
		kerr := c.client.Kill(kctx, c.id, "SIGKILL")
		cancel()
		if kerr != nil && !dockerlib.IsNotFound(kerr) {
			glog.Warningf("docker runtime: %v", kerr)
		}
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(killWait + removeTimeout):
		return fmt.Errorf("container %s did not end: %v", shortContainerID(c.id), err)
	}
}

func (c *container) Exec(ctx context.Context, argv []string) (ExecOutput, error) {
	select {
	case <-c.exited:
		return ExecOutput{ExitCode: -1}, fmt.Errorf("exec: %w", errNotRunning)
	default:
	}
	res, err := c.client.Exec(ctx, c.id, argv, nil)
	if err != nil {
		// The engine knows of an exit before our Wait hears of it: say
		// so, so that the TaskMon waits for the exit rather than counting
		// a health failure.
		if dockerlib.IsConflict(err) || dockerlib.IsNotFound(err) {
			return ExecOutput{ExitCode: -1}, fmt.Errorf("%w: %w", errNotRunning, err)
		}
		return ExecOutput{ExitCode: -1}, err
	}
	out := ExecOutput{ExitCode: res.ExitCode, Truncated: res.Truncated}
	out.Stdout, out.Truncated = capOutput(res.Stdout, out.Truncated)
	out.Stderr, out.Truncated = capOutput(res.Stderr, out.Truncated)
	return out, nil
}

func capOutput(b []byte, truncated bool) (string, bool) {
	if len(b) > protocol.MaxExecOutput {
		b, truncated = b[:protocol.MaxExecOutput], true
	}
	return strings.ToValidUTF8(string(b), "?"), truncated
}

func (c *container) Usage(ctx context.Context) (Usage, error) {
	s, err := c.client.Stats(ctx, c.id)
	if err != nil {
		return Usage{}, err
	}
	return Usage{CPUSeconds: s.CPUSeconds, MemBytes: s.MemoryBytes}, nil
}
