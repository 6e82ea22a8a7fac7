package agent

import (
	"sort"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Messages cross between the master's and the agent's goroutines, and the
// generated types are full of pointers and slices. Everything the agent
// keeps or hands over is therefore a deep copy, made by a protobuf round
// trip.

type protoMessage[T any] interface {
	*T
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func deepCopy[T any, P protoMessage[T]](v T) T {
	b, err := P(&v).Marshal()
	if err != nil {
		glog.Errorf("agent: copying %T: %v", v, err)
		return v
	}
	var out T
	if err := P(&out).Unmarshal(b); err != nil {
		// A message missing a required field cannot be read back; the
		// shallow copy is the best there is.
		glog.Errorf("agent: copying %T: %v", v, err)
		return v
	}
	return out
}

func cloneTaskInfo(v mesos.TaskInfo) mesos.TaskInfo { return deepCopy(v) }

func cloneTaskGroupInfo(v mesos.TaskGroupInfo) mesos.TaskGroupInfo { return deepCopy(v) }

func cloneExecutorInfo(v mesos.ExecutorInfo) mesos.ExecutorInfo { return deepCopy(v) }

func cloneFrameworkInfo(v mesos.FrameworkInfo) mesos.FrameworkInfo { return deepCopy(v) }

func cloneTask(v mesos.Task) mesos.Task { return deepCopy(v) }

func cloneTaskStatus(v mesos.TaskStatus) mesos.TaskStatus { return deepCopy(v) }

func cloneKillPolicy(v *mesos.KillPolicy) *mesos.KillPolicy {
	if v == nil {
		return nil
	}
	c := deepCopy(*v)
	return &c
}

func cloneResources(rs mesos.Resources) mesos.Resources {
	if rs == nil {
		return nil
	}
	out := make(mesos.Resources, len(rs))
	for i := range rs {
		out[i] = deepCopy(rs[i])
	}
	return out
}

func sortFrameworks(fws []*framework) {
	sort.Slice(fws, func(i, j int) bool { return fws[i].id().Value < fws[j].id().Value })
}

func sortedTasks(m map[string]*mesos.Task) []*mesos.Task {
	out := make([]*mesos.Task, 0, len(m))
	for _, t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID.Value < out[j].TaskID.Value })
	return out
}
