package dockerlib

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Stats is a resource-usage sample of a running container.
type Stats struct {
	// CPUPercent is CPU use over the engine's sampling interval (about a
	// second), where 100 is one core fully busy (as `docker stats` shows).
	CPUPercent float64
	// CPUSeconds is the CPU time the container has used since it started
	// (user plus system, all cores), as Mesos' cpus_*_time_secs count it.
	CPUSeconds float64
	// MemoryBytes is memory in use excluding reclaimable page cache, the
	// figure the kernel's OOM killer compares with the limit.
	MemoryBytes uint64
	// MemoryLimitBytes is the container's limit, or the host's memory when
	// the container has none.
	MemoryLimitBytes uint64
	// Read is when the engine took the sample.
	Read time.Time
}

// Stats takes one sample of the container's CPU and memory use. It asks the
// engine for a non-streaming sample, which the engine primes with a previous
// reading so CPU use covers a real interval; it therefore takes about a
// second. (The engine's "one-shot" mode answers at once but without the
// previous reading, so no CPU percentage can be computed from it.)
func (c *Client) Stats(ctx context.Context, id string) (Stats, error) {
	resp, err := c.api.ContainerStats(ctx, id, false)
	if err != nil {
		return Stats{}, fmt.Errorf("stats of container %s: %w", shortID(id), err)
	}
	defer resp.Body.Close()
	var raw container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return Stats{}, fmt.Errorf("stats of container %s: decode: %w", shortID(id), err)
	}
	if raw.Read.IsZero() || (raw.CPUStats.CPUUsage.TotalUsage == 0 && raw.MemoryStats.Usage == 0) {
		return Stats{}, fmt.Errorf("stats of container %s: no sample (is it running?)", shortID(id))
	}
	return statsFrom(&raw), nil
}

// statsFrom computes the figures the way the docker CLI does for Linux
// containers.
func statsFrom(s *container.StatsResponse) Stats {
	out := Stats{
		CPUSeconds:       float64(s.CPUStats.CPUUsage.TotalUsage) / 1e9,
		MemoryBytes:      memoryInUse(s.MemoryStats),
		MemoryLimitBytes: s.MemoryStats.Limit,
		Read:             s.Read,
	}
	// Counters can reset, so both deltas must be positive. Without a
	// previous reading (zeros) this is the average since the start.
	cur, prev := s.CPUStats, s.PreCPUStats
	if cur.CPUUsage.TotalUsage > prev.CPUUsage.TotalUsage && cur.SystemUsage > prev.SystemUsage {
		cpuDelta := float64(cur.CPUUsage.TotalUsage - prev.CPUUsage.TotalUsage)
		sysDelta := float64(cur.SystemUsage - prev.SystemUsage)
		cpus := float64(cur.OnlineCPUs)
		if cpus == 0 {
			cpus = float64(len(cur.CPUUsage.PercpuUsage))
		}
		out.CPUPercent = cpuDelta / sysDelta * cpus * 100
	}
	return out
}

// memoryInUse subtracts inactive file cache from usage: cgroup v1 reports it
// as total_inactive_file, cgroup v2 as inactive_file.
func memoryInUse(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok {
		if v < m.Usage {
			return m.Usage - v
		}
		return m.Usage
	}
	if v, ok := m.Stats["inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}
