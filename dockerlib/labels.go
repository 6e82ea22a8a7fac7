package dockerlib

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/golang/glog"
	"golang.org/x/sync/errgroup"
)

// The label scheme: every container the toolkit starts carries these labels,
// so a new executor can find what a dead one left and SHUTDOWN can remove
// everything of its executor.
const (
	// LabelFramework is the framework's name (e.g. "redis").
	LabelFramework = "io.stateful.framework"
	// LabelFrameworkID is the Mesos framework ID, which tells apart two
	// registrations of frameworks with the same name.
	LabelFrameworkID = "io.stateful.framework-id"
	// LabelInstance is the instance name (e.g. "cache1").
	LabelInstance = "io.stateful.instance"
	// LabelOrdinal is the task's stable ordinal within its instance, in decimal.
	LabelOrdinal = "io.stateful.ordinal"
	// LabelTaskID is the Mesos task ID of this attempt (e.g. "cache1-0.3").
	LabelTaskID = "io.stateful.task-id"
	// LabelExecutorID is the Mesos executor ID that started the container.
	LabelExecutorID = "io.stateful.executor-id"
)

// TaskLabels holds the values of the label scheme for one task's container.
type TaskLabels struct {
	Framework   string
	FrameworkID string
	Instance    string
	Ordinal     int
	TaskID      string
	ExecutorID  string
}

// Map renders the labels for ContainerSpec.Labels. Empty fields are left
// out; the ordinal is written whenever Instance is set, since 0 is a real
// ordinal.
func (l TaskLabels) Map() map[string]string {
	m := map[string]string{}
	add := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	add(LabelFramework, l.Framework)
	add(LabelFrameworkID, l.FrameworkID)
	add(LabelInstance, l.Instance)
	if l.Instance != "" {
		m[LabelOrdinal] = strconv.Itoa(l.Ordinal)
	}
	add(LabelTaskID, l.TaskID)
	add(LabelExecutorID, l.ExecutorID)
	return m
}

// ContainerInfo is one entry of List.
type ContainerInfo struct {
	ID      string
	Name    string
	Image   string
	Labels  map[string]string
	Status  string // created, running, exited ...
	Created time.Time
}

// List returns every container (running or not) that carries all the given
// labels with exactly the given values, oldest first. Empty selector values
// are refused: an empty string usually means a caller forgot to fill it in,
// and matching "any value" would widen the selection by accident.
func (c *Client) List(ctx context.Context, selector map[string]string) ([]ContainerInfo, error) {
	args, err := labelFilter(selector)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	found, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers with labels %s: %w", formatSelector(selector), err)
	}
	out := make([]ContainerInfo, 0, len(found))
	for _, s := range found {
		info := ContainerInfo{
			ID:      s.ID,
			Image:   s.Image,
			Labels:  s.Labels,
			Status:  string(s.State),
			Created: time.Unix(s.Created, 0),
		}
		if len(s.Names) > 0 {
			info.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

func labelFilter(selector map[string]string) (filters.Args, error) {
	args := filters.NewArgs()
	for k, v := range selector {
		if strings.TrimSpace(k) == "" || strings.Contains(k, "=") {
			return args, fmt.Errorf("label selector key %q: must be non-empty without '='", k)
		}
		if v == "" {
			return args, fmt.Errorf("label selector %s: value is empty", k)
		}
		args.Add("label", k+"="+v)
	}
	return args, nil
}

func formatSelector(selector map[string]string) string {
	parts := make([]string, 0, len(selector))
	for k, v := range selector {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

// cleanupParallelism bounds concurrent stops in Cleanup: each may wait out a
// grace period, but the engine serialises much of the work anyway.
const cleanupParallelism = 4

// Cleanup stops (within grace, then SIGKILL) and removes every container
// carrying all the given labels, and returns the IDs it removed. It keeps
// going past a failing container and reports every failure. The selector must
// name at least one label: an empty one would remove every container on the
// host.
func (c *Client) Cleanup(ctx context.Context, selector map[string]string, grace time.Duration) ([]string, error) {
	if len(selector) == 0 {
		return nil, errors.New("cleanup containers: label selector is empty (it would match every container on the host)")
	}
	found, err := c.List(ctx, selector)
	if err != nil {
		return nil, fmt.Errorf("cleanup: %w", err)
	}
	var (
		mu      sync.Mutex
		removed []string
		errs    []error
	)
	var g errgroup.Group
	g.SetLimit(cleanupParallelism)
	for _, info := range found {
		g.Go(func() error {
			err := c.Stop(ctx, info.ID, grace)
			if err == nil || IsNotFound(err) {
				err = c.Remove(ctx, info.ID, true)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("container %s (%s): %w", shortID(info.ID), info.Name, err))
				return nil
			}
			removed = append(removed, info.ID)
			glog.Infof("dockerlib: cleanup removed container %s (%s)", shortID(info.ID), info.Name)
			return nil
		})
	}
	_ = g.Wait() // the workers report through errs, never through the group
	sort.Strings(removed)
	if len(errs) > 0 {
		return removed, fmt.Errorf("cleanup containers with labels %s: %w", formatSelector(selector), errors.Join(errs...))
	}
	return removed, nil
}
