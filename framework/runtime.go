package framework

import (
	"context"
	"fmt"

	"github.com/mesos-stateful/stateful/dockerlib"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/httplib"
)

// chooseRuntime says what --runtime comes to. auto is decided by each
// executor, per task: Docker when the task names an image and an engine
// answers on its agent, else a process. The scheduler asks the engine of
// its own host the same way, which is the agents' host with the embedded
// cluster, so that the log and /v1/health say which one tasks will get.
func chooseRuntime(ctx context.Context, runtime string, local bool) httplib.RuntimeInfo {
	info := httplib.RuntimeInfo{Configured: runtime, Chosen: runtime, Reason: "--runtime " + runtime}
	if runtime != protocol.RuntimeAuto {
		return info
	}
	where := "on this host"
	if !local {
		where = "on the scheduler's host (each agent's executors ask their own)"
	}
	c, err := dockerlib.New(ctx, dockerlib.Options{})
	if err == nil {
		defer c.Close()
		err = c.Available(ctx)
	}
	if err != nil {
		info.Chosen = protocol.RuntimeProcess
		info.Reason = fmt.Sprintf("%s: %v", where, err)
		return info
	}
	info.Chosen = protocol.RuntimeDocker
	info.Reason = fmt.Sprintf("a Docker engine answers at %s %s (API %s); tasks without an image run as processes", c.Host(), where, c.APIVersion())
	return info
}
