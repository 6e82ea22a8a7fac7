package agent

import (
	"errors"
	"os"
	"syscall"
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
				killContainerProcesses(c.executorPID())
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
		killContainerProcesses(pid)
		c.report(a, -1, "")
	}()
}

// waitGone returns once pid no longer runs the process started at start,
// or when quit is closed. It waits on a pidfd through the runtime's
// poller, which costs nothing while the process lives; without pidfds
// (Linux before 5.10) it polls.
func waitGone(pid int, start int64, quit <-chan struct{}) {
	if waitPidfd(pid, start, quit) {
		return
	}
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

// sysPidfdOpen is pidfd_open(2), the same number on every architecture.
const sysPidfdOpen = 434

// waitPidfd is waitGone on a pidfd; false if pidfds cannot be used.
func waitPidfd(pid int, start int64, quit <-chan struct{}) bool {
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), uintptr(syscall.O_NONBLOCK), 0)
	if errno != 0 {
		return errno == syscall.ESRCH
	}
	f := os.NewFile(fd, "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-quit:
			_ = f.SetReadDeadline(time.Unix(1, 0))
		case <-stop:
		}
	}()
	// The pidfd reads ready once the process has exited; the check also
	// covers a pid reused before the pidfd was opened.
	err = rc.Read(func(uintptr) bool { return !processAlive(pid, start) })
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return true
}
