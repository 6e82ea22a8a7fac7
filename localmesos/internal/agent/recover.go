package agent

import (
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Recovery of what a previous agent process left running, as Mesos' posix
// launcher recovers containers from their checkpointed pids. The new agent
// is not the parent of these processes, so it learns of their end by
// watching their pids, and not how they ended.

// adoptedPollInterval is how often an adopted process is checked; Mesos'
// reaper polls non-children once a second.
const adoptedPollInterval = 100 * time.Millisecond

// adoptContainers runs on the mailbox at the first Start after New
// recovered the checkpoint: every executor process still alive is watched
// again, and a command task's built-in executor is started again around
// its running command.
func (a *Agent) adoptContainers() {
	for _, fw := range a.sortedFrameworks() {
		for _, ex := range fw.sortedExecutors() {
			c := ex.container
			if c == nil || !c.adopted || c.hasExited() {
				continue
			}
			if !ex.command {
				a.watchAdopted(c)
				continue
			}
			task, state := recoveredCommandTask(ex)
			if task == nil {
				// Its task is over (the executor was waiting for the
				// acknowledgement of its last update): the executor is
				// done, and whatever it left goes with it.
				killContainerProcesses(c.executorPID(), c.sandbox)
				c.report(a, -1, "")
				continue
			}
			env, _ := a.executorEnv(fw, ex, c.sandbox)
			ce := newCommandExecutor(a, c, fw, ex, env, *task)
			ce.adopt(*task, state, c.executorPID(), c.pidStart)
			c.cmd = ce
			a.cmdExecs[ce] = struct{}{}
			glog.Infof("agent %s: recovered command executor %s around pid %d", a.cfg.ID.Value, ex, c.executorPID())
			ce.start()
		}
	}
}

// recoveredCommandTask is the command task of a recovered command
// executor, as far as the executor needs it (to kill it).
func recoveredCommandTask(ex *executorEntry) (*mesos.TaskInfo, mesos.TaskState) {
	for _, t := range sortedTasks(ex.launched) {
		return &mesos.TaskInfo{
			Name:       t.Name,
			TaskID:     t.TaskID,
			AgentID:    t.AgentID,
			Resources:  t.Resources,
			KillPolicy: t.KillPolicy,
		}, t.GetState()
	}
	return nil, 0
}

// watchAdopted reports an adopted executor's container exited once its
// process is gone, with an unknown status.
func (a *Agent) watchAdopted(c *container) {
	pid, start := c.executorPID(), c.pidStart
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		waitGone(pid, start, a.quit)
		select {
		case <-a.quit:
			return
		default:
		}
		// Whatever the executor left behind goes with it.
		killContainerProcesses(pid, c.sandbox)
		c.report(a, -1, "")
	}()
}

// waitGone returns once pid no longer runs the process started at start,
// or when quit is closed.
func waitGone(pid int, start int64, quit <-chan struct{}) {
	t := time.NewTicker(adoptedPollInterval)
	defer t.Stop()
	for processAlive(pid, start) {
		select {
		case <-quit:
			return
		case <-t.C:
		}
	}
}
