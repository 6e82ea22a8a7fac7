package dockerlib

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"
)

// Network modes a ContainerSpec accepts.
const (
	NetworkBridge = "bridge"
	NetworkHost   = "host"
)

// minMemoryMB is the smallest memory limit the engine accepts (6 MiB).
const minMemoryMB = 6

// ContainerSpec describes one container to create and start with Run.
type ContainerSpec struct {
	// Name is the container's name; empty lets the engine pick one.
	Name string
	// Image is the image reference, e.g. "redis:7". Required; it must be
	// present locally (see EnsureImage).
	Image string
	// Entrypoint and Cmd replace the image's when not nil.
	Entrypoint []string
	Cmd        []string
	Env        map[string]string
	Labels     map[string]string
	// CPUs limits the container to this many cores (0.5 = half a core);
	// 0 means no limit.
	CPUs float64
	// MemoryMB limits memory (and memory plus swap, so the workload cannot
	// swap) in MiB; 0 means no limit.
	MemoryMB int64
	// Network is NetworkBridge (the default when empty) or NetworkHost.
	Network string
	// Ports publishes container TCP ports on the host; bridge network only.
	Ports []PortBinding
	// Mounts bind host directories into the container.
	Mounts     []Mount
	WorkingDir string
	// User is "uid", "uid:gid" or a name the image's /etc/passwd knows.
	User string
	// StopSignal replaces SIGTERM as the signal Stop sends first, e.g. "SIGINT".
	StopSignal string
	// StopTimeout is the grace Stop uses when given a negative grace;
	// 0 leaves the engine's default (10s). Whole seconds.
	StopTimeout time.Duration
}

// PortBinding publishes a container TCP port on the host.
type PortBinding struct {
	ContainerPort uint16
	// HostIP is the host address to listen on; empty means all addresses.
	HostIP string
	// HostPort is the host port; 0 lets the engine pick a free one (Inspect
	// reports it).
	HostPort uint16
}

// Mount binds a host directory into the container.
type Mount struct {
	// HostPath is an absolute path on the engine's host; Run creates it
	// (mode 0750) when missing. dockerlib talks to a local engine, so this is
	// also a path on the caller's machine.
	HostPath string
	// ContainerPath is the absolute path inside the container.
	ContainerPath string
	ReadOnly      bool
}

// Docker's own rule for container names.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// validate checks every field and reports all problems at once, so a bad
// task description is fixed in one round.
func (s *ContainerSpec) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if s.Name != "" && !containerNameRE.MatchString(s.Name) {
		bad("name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]+", s.Name)
	}
	if strings.TrimSpace(s.Image) == "" {
		bad("image is required")
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			bad("env name %q: must be non-empty without '=' or NUL", k)
		}
	}
	for k := range s.Labels {
		if strings.TrimSpace(k) == "" {
			bad("label name must be non-empty")
		}
	}
	if math.IsNaN(s.CPUs) || math.IsInf(s.CPUs, 0) || s.CPUs < 0 {
		bad("cpus %v: must be a finite number >= 0", s.CPUs)
	} else if s.CPUs > 0 && s.CPUs*1e9 < 1e7 {
		bad("cpus %v: must be at least 0.01 when set", s.CPUs)
	}
	if s.MemoryMB < 0 || (s.MemoryMB > 0 && s.MemoryMB < minMemoryMB) {
		bad("memory %d MB: must be 0 (no limit) or at least %d MB", s.MemoryMB, minMemoryMB)
	}
	if s.MemoryMB > math.MaxInt64>>20 {
		bad("memory %d MB: too large", s.MemoryMB)
	}
	switch s.Network {
	case "", NetworkBridge:
	case NetworkHost:
		if len(s.Ports) > 0 {
			bad("ports: a host-network container uses host ports directly; publish ports only on the bridge network")
		}
	default:
		bad("network %q: want %q or %q", s.Network, NetworkBridge, NetworkHost)
	}
	seenPorts := map[uint16]bool{}
	for _, p := range s.Ports {
		if p.ContainerPort == 0 {
			bad("port binding: container port must be 1-65535")
		}
		if seenPorts[p.ContainerPort] {
			bad("port binding: container port %d published twice", p.ContainerPort)
		}
		seenPorts[p.ContainerPort] = true
		if p.HostIP != "" {
			if _, err := netip.ParseAddr(p.HostIP); err != nil {
				bad("port binding %d: host IP %q is not an IP address", p.ContainerPort, p.HostIP)
			}
		}
	}
	seenTargets := map[string]bool{}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.HostPath) || path.Clean(m.HostPath) != m.HostPath || m.HostPath == "/" {
			bad("mount %q: host path must be absolute, clean and not /", m.HostPath)
		}
		if !path.IsAbs(m.ContainerPath) || path.Clean(m.ContainerPath) != m.ContainerPath || m.ContainerPath == "/" {
			bad("mount %q: container path %q must be absolute, clean and not /", m.HostPath, m.ContainerPath)
		}
		if seenTargets[m.ContainerPath] {
			bad("mount: container path %q mounted twice", m.ContainerPath)
		}
		seenTargets[m.ContainerPath] = true
	}
	if s.WorkingDir != "" && !path.IsAbs(s.WorkingDir) {
		bad("working dir %q must be absolute", s.WorkingDir)
	}
	if s.StopSignal != "" && !strings.HasPrefix(s.StopSignal, "SIG") {
		if _, err := strconv.Atoi(s.StopSignal); err != nil {
			bad("stop signal %q: want a name like SIGINT or a number", s.StopSignal)
		}
	}
	if s.StopTimeout < 0 {
		bad("stop timeout %v is negative", s.StopTimeout)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid container spec: %w", errors.Join(errs...))
}

// configs translates a validated spec into the engine's create request.
func (s *ContainerSpec) configs() (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:      s.Image,
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Env:        envList(s.Env),
		Labels:     s.Labels,
		WorkingDir: s.WorkingDir,
		User:       s.User,
		StopSignal: s.StopSignal,
	}
	if s.StopTimeout > 0 {
		secs := seconds(s.StopTimeout)
		cfg.StopTimeout = &secs
	}
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(NetworkBridge),
	}
	if s.Network == NetworkHost {
		host.NetworkMode = container.NetworkMode(NetworkHost)
	}
	if s.CPUs > 0 {
		host.NanoCPUs = int64(math.Round(s.CPUs * 1e9))
	}
	if s.MemoryMB > 0 {
		host.Memory = s.MemoryMB << 20
		host.MemorySwap = host.Memory
	}
	if len(s.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		host.PortBindings = nat.PortMap{}
		for _, p := range s.Ports {
			port := tcpPort(p.ContainerPort)
			cfg.ExposedPorts[port] = struct{}{}
			hostPort := ""
			if p.HostPort != 0 {
				hostPort = strconv.Itoa(int(p.HostPort))
			}
			host.PortBindings[port] = []nat.PortBinding{{HostIP: p.HostIP, HostPort: hostPort}}
		}
	}
	for _, m := range s.Mounts {
		host.Mounts = append(host.Mounts, mount.Mount{
			Type:     mount.TypeBind,
			Source:   m.HostPath,
			Target:   m.ContainerPath,
			ReadOnly: m.ReadOnly,
		})
	}
	return cfg, host
}

func tcpPort(p uint16) nat.Port {
	return nat.Port(strconv.Itoa(int(p)) + "/tcp")
}

// envList renders env sorted, so the same spec always yields the same request.
func envList(env map[string]string) []string {
	if len(env) == 0 {
		return nil
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// seconds rounds d up to whole seconds, the engine's unit for timeouts.
func seconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
