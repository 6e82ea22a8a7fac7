package creator

import (
	"context"
	"errors"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor/protocol"
	"github.com/mesos-stateful/stateful/internal/reconcile"
	"github.com/mesos-stateful/stateful/offermgr"
	"github.com/mesos-stateful/stateful/statemgr"
)

// acceptor records ACCEPTs, checking what the store says at that moment.
type acceptor struct {
	store   *statemgr.Store
	fail    error
	infos   []mesos.TaskInfo
	atStake []stateful.TaskState // the stored states of the launched tasks when ACCEPT was sent
}

func (a *acceptor) Accept(_ context.Context, _ []mesos.OfferID, ops []mesos.Offer_Operation, _ time.Duration) error {
	for _, info := range ops[0].Launch.TaskInfos {
		a.infos = append(a.infos, info)
		t, _ := a.store.TaskByID(info.TaskID.Value)
		a.atStake = append(a.atStake, t.State)
	}
	return a.fail
}

type configWorkload struct {
	workload
	configured []string
}

func (w *configWorkload) Config(_ context.Context, _ *stateful.Instance, t *stateful.Task) (stateful.LaunchConfig, error) {
	w.configured = append(w.configured, t.TaskID+"@"+t.AgentID)
	return stateful.LaunchConfig{Args: []string{"--role", string(t.Role)}, Env: map[string]string{"EXTRA": "1"}}, nil
}

func launcherFixture(t *testing.T) (*fixture, *Launcher, *acceptor, *configWorkload) {
	t.Helper()
	f := newFixture(t)
	w := &configWorkload{workload: workload{fail: map[string]int{}}}
	acc := &acceptor{store: f.store}
	shell := false
	l, err := NewLauncher(LauncherConfig{
		Framework: "test", Runtime: protocol.RuntimeProcess, VolumeRoot: "/data/volumes",
		Executor: mesos.CommandInfo{Value: ptr("/bin/fw"), Shell: &shell, Arguments: []string{"/bin/fw", "executor"}},
		Refuse:   time.Second, CallbackTimeout: time.Second, ConfigWait: time.Second,
	}, f.store, w, f.queue, acc, &reconcile.Locks{}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Create(ctx, &stateful.Instance{Name: "l", Type: stateful.TypeMasterSlave, Masters: 1, Slaves: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Reconcile(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	return f, l, acc, w
}

func placement(f *fixture, ord int, agent string, port uint32) offermgr.Placement {
	for _, e := range f.queue.Snapshot() {
		if e.Value.Key.Ordinal == ord {
			return offermgr.Placement{Demand: e.Value, AgentID: mesos.AgentID{Value: agent}, Hostname: agent + ".host", Ports: map[string]uint32{"p": port}}
		}
	}
	panic("not queued")
}

func TestLaunchRecordsStagingBeforeAccept(t *testing.T) {
	f, l, acc, w := launcherFixture(t)
	launch := offermgr.Launch{AgentID: mesos.AgentID{Value: "a1"}, OfferIDs: []mesos.OfferID{{Value: "o1"}},
		Placements: []offermgr.Placement{placement(f, 0, "a1", 31000), placement(f, 1, "a1", 31001)}}
	if err := l.Launch(ctx, launch); err != nil {
		t.Fatal(err)
	}
	if len(acc.infos) != 2 || acc.atStake[0] != stateful.TaskStaging || acc.atStake[1] != stateful.TaskStaging {
		t.Fatalf("ACCEPT of %d tasks, stored states then %v; want STAGING recorded first", len(acc.infos), acc.atStake)
	}
	if f.queue.Len() != 0 {
		t.Errorf("launched tasks still queued: %v", f.queued())
	}
	if len(w.configured) != 2 || w.configured[0] != "l-0.1@a1" {
		t.Errorf("Config saw %v", w.configured)
	}
	info := acc.infos[0]
	if info.TaskID.Value != "l-0.1" || info.GetExecutor().ExecutorID.Value != "l-0.1" || info.GetExecutor().GetCommand().GetValue() != "/bin/fw" {
		t.Errorf("task info %+v", info)
	}
	d, err := protocol.DecodeTaskData(info.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d.Command != "sleep 100 --role master" || d.Env["EXTRA"] != "1" || d.Ports["p"] != 31000 ||
		d.Volume == nil || d.Volume.HostPath != "/data/volumes/l/0" || d.Role != "master" || d.Framework != "test" {
		t.Errorf("task data %+v", d)
	}
	stored, _ := f.store.Task("l", 0)
	if stored.TaskID != "l-0.1" || stored.Attempt != 1 || stored.AgentID != "a1" || stored.Host != "a1.host" || stored.Ports["p"] != 31000 || stored.Generation != 1 {
		t.Errorf("stored %+v", stored)
	}

	// A stale placement of a task already launched is not launched again.
	f.queue.Put("l-0", launch.Placements[0].Demand)
	if err := l.Launch(ctx, offermgr.Launch{AgentID: mesos.AgentID{Value: "a2"}, Placements: launch.Placements[:1]}); err == nil {
		t.Error("a second launch of l-0 was accepted")
	}
	if len(acc.infos) != 2 || f.queue.Len() != 0 {
		t.Errorf("second launch: %d task infos, queue %v", len(acc.infos), f.queued())
	}
}

func TestLaunchFailedAcceptGoesBackToTheQueue(t *testing.T) {
	f, l, acc, _ := launcherFixture(t)
	acc.fail = errors.New("master gone")
	p := placement(f, 1, "a1", 31000)
	if err := l.Launch(ctx, offermgr.Launch{AgentID: mesos.AgentID{Value: "a1"}, Placements: []offermgr.Placement{p}}); err == nil {
		t.Fatal("a failed ACCEPT must fail the launch")
	}
	stored, _ := f.store.Task("l", 1)
	if stored.State != stateful.TaskQueued || stored.Attempt != 1 || stored.PreparedAttempt != 2 || stored.AgentID != "" {
		t.Errorf("after a failed ACCEPT: %+v", stored)
	}
}

func TestLaunchSkipsDeletingInstances(t *testing.T) {
	f, l, acc, _ := launcherFixture(t)
	p := placement(f, 0, "a1", 31000)
	if _, err := f.store.UpdateInstance(ctx, "l", func(inst *stateful.Instance) error {
		inst.Status = stateful.StatusDeleting
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Launch(ctx, offermgr.Launch{AgentID: mesos.AgentID{Value: "a1"}, Placements: []offermgr.Placement{p}}); err == nil {
		t.Fatal("launched a task of a deleting instance")
	}
	if len(acc.infos) != 0 {
		t.Errorf("ACCEPT sent: %v", acc.infos)
	}
}
