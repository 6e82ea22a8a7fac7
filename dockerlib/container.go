package dockerlib

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/golang/glog"
)

// Run creates and starts a container from spec and returns its ID. It either
// fully succeeds or leaves nothing behind: a container that was created but
// would not start is removed. Errors name the image and the reason.
func (c *Client) Run(ctx context.Context, spec ContainerSpec) (string, error) {
	if err := spec.validate(); err != nil {
		return "", err
	}
	for _, m := range spec.Mounts {
		// Not world-readable: a volume holds the task's data.
		if err := os.MkdirAll(m.HostPath, 0o750); err != nil {
			return "", fmt.Errorf("run image %s: create mount source: %w", spec.Image, err)
		}
	}
	cfg, hostCfg := spec.configs()
	created, err := c.api.ContainerCreate(ctx, cfg, hostCfg, nil, nil, spec.Name)
	if err != nil {
		if IsNotFound(err) {
			return "", fmt.Errorf("run image %s: image not present locally (pull or build it first, see EnsureImage): %w", spec.Image, err)
		}
		return "", fmt.Errorf("run image %s: create container %s: %w", spec.Image, nameOrAnon(spec.Name), err)
	}
	for _, w := range created.Warnings {
		glog.Warningf("dockerlib: creating container %s from %s: %s", shortID(created.ID), spec.Image, w)
	}
	if err := c.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		// A fresh context: the caller's may be what just failed.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rmErr := c.api.ContainerRemove(cleanupCtx, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); rmErr != nil && !IsNotFound(rmErr) {
			glog.Errorf("dockerlib: removing container %s that failed to start: %v", shortID(created.ID), rmErr)
		}
		return "", fmt.Errorf("run image %s: start container %s: %w", spec.Image, nameOrAnon(spec.Name), err)
	}
	glog.Infof("dockerlib: started container %s (%s) from image %s", shortID(created.ID), nameOrAnon(spec.Name), spec.Image)
	return created.ID, nil
}

func nameOrAnon(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return name
}

// shortID is the 12-character form docker ps shows.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Stop sends the container's stop signal (SIGTERM unless ContainerSpec.StopSignal
// set another), waits up to grace for it to exit, then sends SIGKILL. grace is
// rounded up to whole seconds; a negative grace uses the container's
// StopTimeout (engine default 10s). Stopping a container that is not running
// is not an error.
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	opts := container.StopOptions{}
	if grace >= 0 {
		secs := seconds(grace)
		opts.Timeout = &secs
	}
	if err := c.api.ContainerStop(ctx, id, opts); err != nil {
		return fmt.Errorf("stop container %s: %w", shortID(id), err)
	}
	glog.V(1).Infof("dockerlib: stopped container %s", shortID(id))
	return nil
}

// Kill sends signal (e.g. "SIGKILL", "SIGHUP") to the container's main process.
func (c *Client) Kill(ctx context.Context, id, signal string) error {
	if signal == "" {
		return fmt.Errorf("kill container %s: signal is required", shortID(id))
	}
	if err := c.api.ContainerKill(ctx, id, signal); err != nil {
		return fmt.Errorf("kill container %s with %s: %w", shortID(id), signal, err)
	}
	return nil
}

// Remove deletes the container and its anonymous volumes (bind-mounted host
// directories stay). With force a running container is killed first. Removing
// a container that no longer exists is not an error.
func (c *Client) Remove(ctx context.Context, id string, force bool) error {
	err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: force, RemoveVolumes: true})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", shortID(id), err)
	}
	glog.V(1).Infof("dockerlib: removed container %s", shortID(id))
	return nil
}

// ContainerState is what Inspect reports about a container.
type ContainerState struct {
	ID     string
	Name   string
	Image  string
	Labels map[string]string
	// Status is the engine's word: created, running, paused, restarting,
	// removing, exited or dead.
	Status  string
	Running bool
	// ExitCode, OOMKilled and FinishedAt describe the last exit; a container
	// killed by a signal exits 128+signal (137 for SIGKILL).
	ExitCode  int
	OOMKilled bool
	// Error is the engine's message when the container could not run.
	Error      string
	Pid        int
	StartedAt  time.Time
	FinishedAt time.Time
	// IPAddress is the container's address on its bridge network; empty on
	// the host network.
	IPAddress string
	// Ports lists published ports with the host port the engine bound.
	Ports []PortBinding
}

// Inspect reports the container's state. A missing container gives an error
// for which IsNotFound is true.
func (c *Client) Inspect(ctx context.Context, id string) (ContainerState, error) {
	resp, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return ContainerState{}, fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	st := ContainerState{ID: resp.ID, Name: strings.TrimPrefix(resp.Name, "/")}
	if resp.Config != nil {
		st.Image = resp.Config.Image
		st.Labels = resp.Config.Labels
	}
	if s := resp.State; s != nil {
		st.Status = string(s.Status)
		st.Running = s.Running
		st.ExitCode = s.ExitCode
		st.OOMKilled = s.OOMKilled
		st.Error = s.Error
		st.Pid = s.Pid
		st.StartedAt = parseEngineTime(s.StartedAt)
		st.FinishedAt = parseEngineTime(s.FinishedAt)
	}
	if ns := resp.NetworkSettings; ns != nil {
		names := make([]string, 0, len(ns.Networks))
		for name := range ns.Networks {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if ep := ns.Networks[name]; ep != nil && ep.IPAddress != "" {
				st.IPAddress = ep.IPAddress
				break
			}
		}
		for port, bindings := range ns.Ports {
			if port.Proto() != "tcp" {
				continue
			}
			for _, b := range bindings {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					continue
				}
				st.Ports = append(st.Ports, PortBinding{ContainerPort: uint16(port.Int()), HostIP: b.HostIP, HostPort: uint16(hp)})
			}
		}
		sort.Slice(st.Ports, func(i, j int) bool {
			a, b := st.Ports[i], st.Ports[j]
			if a.ContainerPort != b.ContainerPort {
				return a.ContainerPort < b.ContainerPort
			}
			return a.HostIP < b.HostIP
		})
	}
	return st, nil
}

// parseEngineTime reads the engine's RFC 3339 times; the zero time the engine
// writes for "never" ("0001-01-01T00:00:00Z") stays zero.
func parseEngineTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// ExitStatus is how a container ended.
type ExitStatus struct {
	// Code is the main process's exit code; 128+N when killed by signal N.
	Code      int
	OOMKilled bool
	// Error is the engine's message when the container could not run.
	Error string
}

// String reads like "exited with code 137 (OOM killed)".
func (e ExitStatus) String() string {
	s := fmt.Sprintf("exited with code %d", e.Code)
	if e.OOMKilled {
		s += " (OOM killed)"
	}
	if e.Error != "" {
		s += ": " + e.Error
	}
	return s
}

// Wait blocks until the container is not running and reports how it exited;
// it returns as soon as the engine sees the exit, and at once for a container
// that has already stopped. It ends early with ctx's error.
func (c *Client) Wait(ctx context.Context, id string) (ExitStatus, error) {
	resultC, errC := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	var res container.WaitResponse
	select {
	case res = <-resultC:
	case err := <-errC:
		return ExitStatus{}, fmt.Errorf("wait for container %s: %w", shortID(id), err)
	case <-ctx.Done():
		// The client's reader sends exactly one value, on an unbuffered
		// channel when it has a result; take it so that goroutine can end.
		go func() {
			select {
			case <-resultC:
			case <-errC:
			}
		}()
		return ExitStatus{}, fmt.Errorf("wait for container %s: %w", shortID(id), ctx.Err())
	}
	exit := ExitStatus{Code: int(res.StatusCode)}
	if res.Error != nil {
		exit.Error = res.Error.Message
	}
	// The wait answer lacks the OOM flag; the state has it. A container
	// removed meanwhile simply leaves it unknown.
	if st, err := c.Inspect(ctx, id); err == nil {
		exit.OOMKilled = st.OOMKilled
		if exit.Error == "" {
			exit.Error = st.Error
		}
	} else if !IsNotFound(err) {
		glog.V(1).Infof("dockerlib: after wait: %v", err)
	}
	return exit, nil
}
