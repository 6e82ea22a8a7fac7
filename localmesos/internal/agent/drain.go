package agent

import (
	"context"

	"github.com/golang/glog"
)

// Drain is the graceful half of taking an agent down for good: every
// executor gets SHUTDOWN, as the scheduler's SHUTDOWN call would send it
// (Slave::shutdownExecutor), and Drain returns once all of them have
// exited, or when ctx ends. Close then kills whatever is left. Without
// Drain, Close treats the host as lost and SIGKILLs every executor, which
// never gets to stop its tasks: a custom executor's Docker containers
// outlive it.
//
// The frameworks are not marked terminating (Slave::shutdownFramework
// would): the executors' last updates are still acknowledged, so an
// executor that waits for the acknowledgement of its TASK_KILLED (the
// built-in command executor, ours) leaves as soon as its tasks are gone
// instead of at the end of the grace period. Each executor is destroyed
// after its own shutdown grace period, as always.
//
// An agent that is not serving (stopped by Stop(Restart) and not started
// again, or lost) cannot deliver SHUTDOWN: Drain returns at once.
func (a *Agent) Drain(ctx context.Context) {
	idle := make(chan struct{})
	if !a.await(func() { a.drain(idle) }) {
		return
	}
	select {
	case <-idle:
		glog.V(1).Infof("agent %s: drained", a.cfg.ID.Value)
	case <-ctx.Done():
		glog.Warningf("agent %s: executors still running when the drain ended: %v", a.cfg.ID.Value, context.Cause(ctx))
	}
}

// drain runs on the mailbox; idle is closed once no executor is left.
func (a *Agent) drain(idle chan struct{}) {
	switch a.state {
	case stateRunning, stateRecovering:
	default:
		close(idle)
		return
	}
	glog.Infof("agent %s: draining: SHUTDOWN to every executor", a.cfg.ID.Value)
	for _, fw := range a.sortedFrameworks() {
		for _, ex := range fw.sortedExecutors() {
			// A TERMINATING executor already got SHUTDOWN (or is being
			// destroyed) and has its timer.
			if ex.state == executorRegistering || ex.state == executorRunning {
				a.shutdownExecutor(fw, ex)
			}
		}
	}
	a.idleWaiters = append(a.idleWaiters, idle)
	a.notifyIdle()
}

// notifyIdle wakes the drains once every executor has exited. It runs on
// the mailbox after anything that may end the last executor.
func (a *Agent) notifyIdle() {
	if len(a.idleWaiters) == 0 {
		return
	}
	for _, fw := range a.frameworks {
		for _, ex := range fw.executors {
			if ex.state != executorTerminated {
				return
			}
		}
	}
	for _, w := range a.idleWaiters {
		close(w)
	}
	a.idleWaiters = nil
}
