package agent

import (
	"bytes"
	"sort"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// The task status update manager: one stream per task. Only the head of a
// stream is sent to the master, and resent with a doubling interval until
// the scheduler acknowledges it; then the next one goes out. A stream ends
// once its terminal update is acknowledged. (src/status_update_manager in
// Mesos.)

type streamKey struct {
	framework string
	task      string
}

type updateStream struct {
	key         streamKey
	frameworkID mesos.FrameworkID
	pending     []mesos.TaskStatus
	// ackedRecent are the latest acknowledged uuids, for the checkpoint.
	ackedRecent []string
	received    map[string]bool // uuids ever received
	acked       map[string]bool
	terminated  bool // a terminal update was acknowledged
	retry       *timer
}

func (s *updateStream) head() *mesos.TaskStatus {
	if len(s.pending) == 0 {
		return nil
	}
	return &s.pending[0]
}

// enqueueUpdate hands a complete status (agent_id, source, uuid,
// timestamp, container_status set) to its task's stream. It returns false
// for a duplicate, which is ignored.
func (a *Agent) enqueueUpdate(frameworkID mesos.FrameworkID, status mesos.TaskStatus) bool {
	key := streamKey{frameworkID.Value, status.TaskID.Value}
	s := a.streams[key]
	if s == nil {
		s = &updateStream{key: key, frameworkID: frameworkID, received: map[string]bool{}, acked: map[string]bool{}}
		a.streams[key] = s
	}
	id := string(status.UUID)
	if s.acked[id] {
		glog.Warningf("agent %s: ignoring status update %s that has already been acknowledged", a.cfg.ID.Value, describe(status))
		return false
	}
	if s.received[id] {
		glog.Warningf("agent %s: ignoring duplicate status update %s", a.cfg.ID.Value, describe(status))
		return false
	}
	s.received[id] = true
	s.pending = append(s.pending, status)
	a.checkpointStream(s)
	glog.V(2).Infof("agent %s: received status update %s", a.cfg.ID.Value, describe(status))
	if len(s.pending) == 1 && a.state == stateRunning {
		a.forward(s, a.cfg.StatusUpdateRetryInterval)
	}
	return true
}

// forward sends the stream's head to the master and arms its retry.
func (a *Agent) forward(s *updateStream, interval time.Duration) {
	head := s.head()
	if head == nil {
		return
	}
	u := wire.StatusUpdate{
		FrameworkID: s.frameworkID,
		Status:      cloneTaskStatus(*head),
		LatestState: s.pending[len(s.pending)-1].GetState(),
	}
	// The agent's own view of the task is the latest state, which may
	// already be terminal while the head is not.
	if fw := a.frameworks[s.key.framework]; fw != nil {
		if ex := fw.executorOfTask(s.key.task); ex != nil {
			t := ex.launched[s.key.task]
			if t == nil {
				t = ex.terminated[s.key.task]
			}
			if t != nil {
				st := head.GetState()
				t.StatusUpdateState = &st
				t.StatusUpdateUUID = append([]byte(nil), head.UUID...)
				u.LatestState = t.GetState()
			}
		}
	}
	glog.V(2).Infof("agent %s: forwarding status update %s (latest state %s)", a.cfg.ID.Value, describe(*head), u.LatestState)
	a.master.StatusUpdate(a.cfg.ID, u)
	s.retry.stop()
	s.retry = a.after(interval, func() {
		s.retry = nil
		if a.streams[s.key] != s || a.state != stateRunning || s.head() == nil {
			return
		}
		next := 2 * interval
		if next > statusUpdateRetryMax {
			next = statusUpdateRetryMax
		}
		glog.V(1).Infof("agent %s: resending unacknowledged status update %s", a.cfg.ID.Value, describe(*s.head()))
		a.forward(s, next)
	})
}

// acknowledgeUpdate pops the head of a stream on the scheduler's ACK. It
// reports whether the ACK was accepted and whether the stream has now
// ended (its terminal update acknowledged).
func (a *Agent) acknowledgeUpdate(frameworkID mesos.FrameworkID, taskID mesos.TaskID, uuid []byte) (ok, ended bool) {
	key := streamKey{frameworkID.Value, taskID.Value}
	s := a.streams[key]
	if s == nil {
		glog.Warningf("agent %s: acknowledgement %s for task %s of framework %s: no status update stream", a.cfg.ID.Value, formatUUID(uuid), taskID.Value, frameworkID.Value)
		return false, false
	}
	head := s.head()
	if head == nil {
		glog.Warningf("agent %s: unexpected acknowledgement %s for task %s: nothing pending", a.cfg.ID.Value, formatUUID(uuid), taskID.Value)
		return false, false
	}
	if s.acked[string(uuid)] {
		glog.Warningf("agent %s: duplicate acknowledgement %s for task %s", a.cfg.ID.Value, formatUUID(uuid), taskID.Value)
		return false, false
	}
	if !bytes.Equal(head.UUID, uuid) {
		glog.Warningf("agent %s: unexpected acknowledgement %s for task %s (expecting %s)", a.cfg.ID.Value, formatUUID(uuid), taskID.Value, formatUUID(head.UUID))
		return false, false
	}
	glog.V(2).Infof("agent %s: status update %s acknowledged", a.cfg.ID.Value, describe(*head))
	s.acked[string(uuid)] = true
	s.ackedRecent = append(s.ackedRecent, string(uuid))
	if len(s.ackedRecent) > ackedKept {
		s.ackedRecent = s.ackedRecent[len(s.ackedRecent)-ackedKept:]
	}
	if isTerminal(head.GetState()) {
		s.terminated = true
	}
	s.pending = s.pending[1:]
	s.retry.stop()
	s.retry = nil
	a.checkpointStream(s)
	if s.terminated {
		if len(s.pending) > 0 {
			glog.Warningf("agent %s: acknowledged a terminal status update of task %s but updates are still pending", a.cfg.ID.Value, taskID.Value)
		}
		delete(a.streams, key)
		return true, true
	}
	if a.state == stateRunning {
		a.forward(s, a.cfg.StatusUpdateRetryInterval)
	}
	return true, false
}

// resumeStreams sends every stream's head at once, as the status update
// manager's resume() does after (re-)registration or a framework's
// re-subscription.
func (a *Agent) resumeStreams() {
	for _, s := range a.sortedStreams() {
		if s.head() != nil {
			a.forward(s, a.cfg.StatusUpdateRetryInterval)
		}
	}
}

// cleanupStreams forgets a framework's streams: it will not acknowledge
// anything any more.
func (a *Agent) cleanupStreams(frameworkID mesos.FrameworkID) {
	for key, s := range a.streams {
		if key.framework == frameworkID.Value {
			s.retry.stop()
			delete(a.streams, key)
		}
	}
}

func (a *Agent) sortedStreams() []*updateStream {
	out := make([]*updateStream, 0, len(a.streams))
	for _, s := range a.streams {
		out = append(out, s)
	}
	sortStreams(out)
	return out
}

func sortStreams(ss []*updateStream) {
	sort.Slice(ss, func(i, j int) bool {
		x, y := ss[i].key, ss[j].key
		if x.framework != y.framework {
			return x.framework < y.framework
		}
		return x.task < y.task
	})
}

// describe names an update in logs the way Mesos does.
func describe(s mesos.TaskStatus) string {
	return s.GetState().String() + " (Status UUID: " + formatUUID(s.UUID) + ") for task " + s.TaskID.Value
}
