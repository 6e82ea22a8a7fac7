package localmesos

// mesos-go client conformance: the scheduler stack the project's frameworks
// use (httpcli + httpsched + extras/scheduler/controller) against a real
// cluster, over protobuf (what our scheduler speaks) and JSON.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/backoff"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/callrules"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/extras/store"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/events"
)

// schedClient is one framework run by controller.Run.
type schedClient struct {
	t      *testing.T
	caller calls.Caller
	fid    store.Singleton
	events chan *scheduler.Event
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	backlog []*scheduler.Event
}

// schedRunClient subscribes info with mesos-go's controller. It
// acknowledges every update that carries a uuid and records all events.
// fid, if not empty, is the framework ID to re-subscribe with.
func schedRunClient(t *testing.T, c interface{ MasterURL() string }, codec encoding.MediaType, info mesos.FrameworkInfo, fid string) *schedClient {
	t.Helper()
	cli := httpcli.New(
		httpcli.Endpoint(c.MasterURL()+"/api/v1/scheduler"),
		httpcli.Codec(codecs.ByMediaType[codec]),
		httpcli.Do(httpcli.With(httpcli.Timeout(10*time.Second))),
	)
	ids := store.NewInMemorySingleton()
	if fid != "" {
		_ = ids.Set(fid)
	}
	caller := callrules.WithFrameworkID(store.GetIgnoreErrors(ids)).Caller(httpsched.NewCaller(cli))
	ctx, cancel := context.WithCancel(context.Background())
	sc := &schedClient{t: t, caller: caller, fid: ids, events: make(chan *scheduler.Event, 1000), cancel: cancel, done: make(chan struct{})}
	handler := events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
		switch e.Type {
		case scheduler.Event_SUBSCRIBED:
			_ = ids.Set(e.Subscribed.FrameworkID.Value)
		case scheduler.Event_UPDATE:
			st := e.Update.Status
			if len(st.UUID) > 0 {
				ack := calls.Acknowledge(st.GetAgentID().GetValue(), st.TaskID.Value, st.UUID)
				if resp, err := caller.Call(ctx, ack); err != nil {
					t.Errorf("acknowledge %s: %v", st.TaskID.Value, err)
				} else if resp != nil {
					resp.Close()
				}
			}
		}
		sc.events <- e
		return nil
	})
	go func() {
		defer close(sc.done)
		_ = controller.Run(ctx, &info, caller,
			controller.WithEventHandler(handler),
			controller.WithFrameworkID(store.GetIgnoreErrors(ids)),
			controller.WithRegistrationTokens(backoff.Notifier(50*time.Millisecond, 200*time.Millisecond, ctx.Done())),
		)
	}()
	t.Cleanup(sc.stop)
	return sc
}

// stop ends the subscription (the scheduler process "dies").
func (sc *schedClient) stop() {
	sc.cancel()
	<-sc.done
}

// call sends a call and returns the client's error.
func (sc *schedClient) call(call *scheduler.Call) error {
	resp, err := sc.caller.Call(context.Background(), call)
	if resp != nil {
		resp.Close()
	}
	return err
}

func (sc *schedClient) mustCall(call *scheduler.Call) {
	sc.t.Helper()
	if err := sc.call(call); err != nil {
		sc.t.Fatalf("%s: %v", call.Type, err)
	}
}

// await returns the first event that match accepts; others are kept.
func (sc *schedClient) await(what string, match func(*scheduler.Event) bool) *scheduler.Event {
	sc.t.Helper()
	sc.mu.Lock()
	for i, e := range sc.backlog {
		if match(e) {
			sc.backlog = append(sc.backlog[:i:i], sc.backlog[i+1:]...)
			sc.mu.Unlock()
			return e
		}
	}
	sc.mu.Unlock()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-sc.events:
			if match(e) {
				return e
			}
			if e.Type != scheduler.Event_HEARTBEAT {
				sc.mu.Lock()
				sc.backlog = append(sc.backlog, e)
				sc.mu.Unlock()
			}
		case <-deadline:
			sc.t.Fatalf("no %s within 15s", what)
		}
	}
}

func (sc *schedClient) awaitType(typ scheduler.Event_Type) *scheduler.Event {
	sc.t.Helper()
	return sc.await(typ.String(), func(e *scheduler.Event) bool { return e.Type == typ })
}

// awaitUpdate waits for an update of task in state.
func (sc *schedClient) awaitUpdate(task string, state mesos.TaskState) mesos.TaskStatus {
	sc.t.Helper()
	e := sc.await("UPDATE "+task+" "+state.String(), func(e *scheduler.Event) bool {
		return e.Type == scheduler.Event_UPDATE && e.Update.Status.TaskID.Value == task && e.Update.Status.GetState() == state
	})
	return e.Update.Status
}

// noEvent asserts that no event of typ arrives within d.
func (sc *schedClient) noEvent(typ scheduler.Event_Type, d time.Duration) {
	sc.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-sc.events:
			if e.Type == typ {
				sc.t.Fatalf("unexpected %s: %v", typ, e)
			}
			if e.Type != scheduler.Event_HEARTBEAT {
				sc.mu.Lock()
				sc.backlog = append(sc.backlog, e)
				sc.mu.Unlock()
			}
		case <-deadline:
			return
		}
	}
}

func (sc *schedClient) frameworkID() string {
	id, _ := sc.fid.Get()
	return id
}

func schedFrameworkInfo(name string, failover time.Duration) mesos.FrameworkInfo {
	info := mesos.FrameworkInfo{
		User:         "root",
		Name:         name,
		Roles:        []string{"*"},
		Capabilities: []mesos.FrameworkInfo_Capability{{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE}},
	}
	if failover > 0 {
		info.FailoverTimeout = proto.Float64(failover.Seconds())
	}
	return info
}

// schedCommandTask is a command task using all of (cpus 0.1, mem 32) of
// offer o.
func schedCommandTask(o mesos.Offer, id, command string) mesos.TaskInfo {
	return mesos.TaskInfo{
		Name:    id,
		TaskID:  mesos.TaskID{Value: id},
		AgentID: o.AgentID,
		Resources: []mesos.Resource{
			{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.1}},
			{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 32}},
		},
		Command: &mesos.CommandInfo{Value: proto.String(command)},
	}
}

func (sc *schedClient) launch(o mesos.Offer, tasks ...mesos.TaskInfo) {
	sc.t.Helper()
	sc.mustCall(calls.Accept(calls.OfferOperations{calls.OpLaunch(tasks...)}.WithOffers(o.ID)).With(calls.RefuseSeconds(0)))
}

func (sc *schedClient) offer() mesos.Offer {
	sc.t.Helper()
	return sc.awaitType(scheduler.Event_OFFERS).Offers.Offers[0]
}

// wholeOffer declines, without a filter, every offer of fewer than cpus
// cpus until one offers them all (the agent's resources, once nothing
// runs, are offered together).
func (sc *schedClient) wholeOffer(cpus float64) mesos.Offer {
	sc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		o := sc.offer()
		var n float64
		for _, r := range o.Resources {
			if r.Name == "cpus" {
				n += r.GetScalar().GetValue()
			}
		}
		if n >= cpus {
			return o
		}
		sc.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	}
	sc.t.Fatalf("no offer of %v cpus within 15s", cpus)
	return mesos.Offer{}
}

// TestSchedulerClient runs the whole scheduler API through mesos-go, once
// per codec.
func TestSchedulerClient(t *testing.T) {
	for _, codec := range []encoding.MediaType{codecs.MediaTypeProtobuf, codecs.MediaTypeJSON} {
		t.Run(strings.TrimPrefix(string(codec), "application/"), func(t *testing.T) {
			c := startCluster(t, schedConfig(t))
			sc := schedRunClient(t, c, codec, schedFrameworkInfo("client", time.Minute), "")
			sub := sc.awaitType(scheduler.Event_SUBSCRIBED)
			if sub.Subscribed.MasterInfo == nil || sub.Subscribed.MasterInfo.ID == "" {
				t.Fatalf("SUBSCRIBED without master_info: %v", sub)
			}

			// A command task: STARTING, RUNNING, FINISHED, each acknowledged
			// (the next comes only after the previous ACK).
			o := sc.offer()
			sc.launch(o, schedCommandTask(o, "quick", "true"))
			for _, s := range []mesos.TaskState{mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_FINISHED} {
				st := sc.awaitUpdate("quick", s)
				if len(st.UUID) != 16 || st.GetSource() != mesos.SOURCE_EXECUTOR {
					t.Fatalf("%s update: %v", s, st)
				}
				if s == mesos.TASK_FINISHED && st.GetMessage() != "Command exited with status 0" {
					t.Errorf("FINISHED message %q", st.GetMessage())
				}
			}

			// DECLINE with a filter, then REVIVE brings the offer back. The
			// filter must cover the whole agent: the launch's leftovers may
			// have been offered before the task's own resources came back,
			// and those would then come in an offer of their own. Declining
			// partial offers without a filter merges them into one.
			o = sc.wholeOffer(2)
			sc.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(time.Hour)))
			sc.noEvent(scheduler.Event_OFFERS, 500*time.Millisecond)
			sc.mustCall(calls.Revive())
			o = sc.offer()

			// SUPPRESS: nothing even after a DECLINE without filter.
			sc.mustCall(calls.Suppress())
			sc.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
			sc.noEvent(scheduler.Event_OFFERS, 500*time.Millisecond)
			sc.mustCall(calls.Revive())
			o = sc.offer()

			// KILL of a long task.
			sc.launch(o, schedCommandTask(o, "sleeper", "sleep 60"))
			sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)
			agent := o.AgentID.Value

			// Explicit and implicit reconciliation.
			sc.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleeper": agent, "gone": ""})))
			st := sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)
			if st.GetReason() != mesos.REASON_RECONCILIATION || len(st.UUID) != 0 || st.GetMessage() != "Reconciliation: Latest task state" {
				t.Fatalf("reconciliation: %v", st)
			}
			if st := sc.awaitUpdate("gone", mesos.TASK_LOST); st.GetMessage() != "Reconciliation: Task is unknown" {
				t.Fatalf("unknown task: %v", st)
			}
			sc.mustCall(calls.Reconcile())
			if st := sc.awaitUpdate("sleeper", mesos.TASK_RUNNING); st.GetReason() != mesos.REASON_RECONCILIATION {
				t.Fatalf("implicit reconciliation: %v", st)
			}

			sc.mustCall(calls.Kill("sleeper", agent))
			if st := sc.awaitUpdate("sleeper", mesos.TASK_KILLED); st.GetMessage() != "Command terminated with signal Terminated" {
				t.Errorf("KILLED message %q", st.GetMessage())
			}

			// Bad calls come back as errors. mesos-go v0.0.11's httpsched
			// treats every failed call as a lost subscription (against a
			// real master too): it drops the stream, and the controller
			// re-subscribes with the framework ID (failover_timeout > 0).
			fid := sc.frameworkID()
			resubscribed := func() {
				t.Helper()
				if e := sc.awaitType(scheduler.Event_SUBSCRIBED); e.Subscribed.FrameworkID.Value != fid {
					t.Fatalf("re-subscribed as %s, want %s", e.Subscribed.FrameworkID.Value, fid)
				}
			}
			err := sc.call(calls.Acknowledge(agent, "sleeper", []byte("AAA")))
			if err == nil || !strings.Contains(err.Error(), "Failed to validate scheduler::Call: Not a valid UUID") {
				t.Errorf("ACKNOWLEDGE with a 3-byte uuid: %v", err)
			}
			resubscribed()
			err = sc.call(&scheduler.Call{Type: scheduler.Call_RECONCILE})
			if err == nil || !strings.Contains(err.Error(), "Failed to validate scheduler::Call: Expecting 'reconcile' to be present") {
				t.Errorf("RECONCILE without reconcile: %v", err)
			}
			resubscribed()

			// UPDATE_FRAMEWORK succeeds, with mesos-go's complaint about the
			// missing Content-Type (as against a real master).
			info := schedFrameworkInfo("client-renamed", time.Minute)
			info.ID = &mesos.FrameworkID{Value: fid}
			err = sc.call(calls.UpdateFramework(info))
			if err == nil || !strings.Contains(err.Error(), `unexpected content type: ""`) {
				t.Errorf("UPDATE_FRAMEWORK: %v", err)
			}
			resubscribed()

			sc.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
			var apiErr error
			deadline := time.Now().Add(5 * time.Second)
			for apiErr == nil && time.Now().Before(deadline) {
				apiErr = sc.call(calls.Revive())
			}
			if apiErr == nil {
				t.Fatal("calls still accepted after TEARDOWN")
			}
		})
	}
}

// TestSchedulerClientFailover: a scheduler that dies and comes back within
// failover_timeout keeps its framework and tasks; after the timeout the
// framework is gone ("Framework has been removed").
func TestSchedulerClientFailover(t *testing.T) {
	c := startCluster(t, schedConfig(t))
	info := schedFrameworkInfo("failover", 30*time.Second)
	a := schedRunClient(t, c, codecs.MediaTypeProtobuf, info, "")
	a.awaitType(scheduler.Event_SUBSCRIBED)
	o := a.offer()
	a.launch(o, schedCommandTask(o, "sleeper", "sleep 60"))
	a.awaitUpdate("sleeper", mesos.TASK_RUNNING)
	fid := a.frameworkID()
	a.stop()

	b := schedRunClient(t, c, codecs.MediaTypeProtobuf, info, fid)
	sub := b.awaitType(scheduler.Event_SUBSCRIBED)
	if sub.Subscribed.FrameworkID.Value != fid {
		t.Fatalf("re-subscribed as %s, want %s", sub.Subscribed.FrameworkID.Value, fid)
	}
	b.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleeper": ""})))
	if st := b.awaitUpdate("sleeper", mesos.TASK_RUNNING); st.GetReason() != mesos.REASON_RECONCILIATION {
		t.Fatalf("task lost across the failover: %v", st)
	}
	b.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	b.stop()

	short := schedFrameworkInfo("short", 300*time.Millisecond)
	d := schedRunClient(t, c, codecs.MediaTypeProtobuf, short, "")
	d.awaitType(scheduler.Event_SUBSCRIBED)
	fid = d.frameworkID()
	d.stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e := schedRunClient(t, c, codecs.MediaTypeProtobuf, short, fid)
		ev := e.await("SUBSCRIBED or ERROR", func(ev *scheduler.Event) bool {
			return ev.Type == scheduler.Event_SUBSCRIBED || ev.Type == scheduler.Event_ERROR
		})
		e.stop()
		if ev.Type == scheduler.Event_ERROR {
			if ev.Error.Message != "Framework has been removed" {
				t.Fatalf("ERROR %q", ev.Error.Message)
			}
			break
		}
		// Subscribed again before the timeout expired: try again later.
		if time.Now().After(deadline) {
			t.Fatal("framework never removed after its failover_timeout")
		}
		time.Sleep(400 * time.Millisecond)
	}
}

// TestSchedulerClientAgentRemoval: losing the agent of a running task
// gives TASK_LOST (REASON_AGENT_REMOVED, no uuid) and FAILURE{agent_id}.
func TestSchedulerClientAgentRemoval(t *testing.T) {
	c := startCluster(t, schedConfig(t))
	info := schedFrameworkInfo("loss", time.Minute)
	info.Checkpoint = proto.Bool(true)
	sc := schedRunClient(t, c, codecs.MediaTypeProtobuf, info, "")
	sc.awaitType(scheduler.Event_SUBSCRIBED)
	o := sc.offer()
	sc.launch(o, schedCommandTask(o, "sleeper", "sleep 60"))
	sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)
	if err := c.RemoveAgent(o.AgentID.Value); err != nil {
		t.Fatal(err)
	}
	st := sc.awaitUpdate("sleeper", mesos.TASK_LOST)
	if st.GetReason() != mesos.REASON_AGENT_REMOVED || len(st.UUID) != 0 || st.UnreachableTime == nil {
		t.Fatalf("TASK_LOST %v", st)
	}
	f := sc.awaitType(scheduler.Event_FAILURE)
	if f.Failure.GetAgentID().GetValue() != o.AgentID.Value || f.Failure.ExecutorID != nil {
		t.Fatalf("FAILURE %v", f)
	}
	sc.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleeper": o.AgentID.Value})))
	if st := sc.awaitUpdate("sleeper", mesos.TASK_LOST); st.GetMessage() != "Reconciliation: Task is unreachable" {
		t.Fatalf("reconciliation after removal: %v", st)
	}
}

// TestSchedulerClientMasterFailover: after FailoverMaster the controller
// re-subscribes with its framework ID (failover_timeout > 0) to the new
// master, explicit reconciliation goes unanswered until the agent has
// re-registered, and then reports the task still running.
func TestSchedulerClientMasterFailover(t *testing.T) {
	c := startCluster(t, schedConfig(t))
	info := schedFrameworkInfo("master-failover", time.Minute)
	info.Checkpoint = proto.Bool(true)
	sc := schedRunClient(t, c, codecs.MediaTypeProtobuf, info, "")
	first := sc.awaitType(scheduler.Event_SUBSCRIBED)
	o := sc.offer()
	sc.launch(o, schedCommandTask(o, "sleeper", "sleep 60"))
	sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)
	fid := sc.frameworkID()

	c.FailoverMaster()
	again := sc.awaitType(scheduler.Event_SUBSCRIBED)
	if again.Subscribed.FrameworkID.Value != fid {
		t.Fatalf("re-subscribed as %s, want %s", again.Subscribed.FrameworkID.Value, fid)
	}
	if again.Subscribed.MasterInfo.ID == first.Subscribed.MasterInfo.ID {
		t.Fatal("the master ID did not change")
	}
	// Reconcile with backoff until the agent is back, as a framework must.
	answered := func() bool {
		sc.mustCall(calls.Reconcile(calls.ReconcileTasks(map[string]string{"sleeper": o.AgentID.Value})))
		wait := time.After(300 * time.Millisecond)
		for {
			select {
			case e := <-sc.events:
				if e.Type != scheduler.Event_UPDATE || e.Update.Status.TaskID.Value != "sleeper" {
					continue
				}
				if st := e.Update.Status; st.GetState() != mesos.TASK_RUNNING || st.GetReason() != mesos.REASON_RECONCILIATION {
					t.Fatalf("after master failover: %v", st)
				}
				return true
			case <-wait:
				return false
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !answered() {
		if time.Now().After(deadline) {
			t.Fatal("reconciliation never answered after the master failover")
		}
	}
	sc.mustCall(calls.Kill("sleeper", o.AgentID.Value))
	sc.awaitUpdate("sleeper", mesos.TASK_KILLED)
}

// TestSchedulerClientCustomExecutor: a custom executor is charged once and
// listed in executor_ids while it lives, MESSAGE goes both ways, and
// SHUTDOWN ends it with FAILURE{agent_id, executor_id, status 0}.
func TestSchedulerClientCustomExecutor(t *testing.T) {
	c := startCluster(t, schedConfig(t))
	sc := schedRunClient(t, c, codecs.MediaTypeProtobuf, schedFrameworkInfo("custom", time.Minute), "")
	sc.awaitType(scheduler.Event_SUBSCRIBED)
	var command mesos.CommandInfo
	if err := command.UnmarshalJSON([]byte(schedExecutorCommand(t))); err != nil {
		t.Fatal(err)
	}
	exec := mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: "custom"},
		Command:    &command,
		Resources: []mesos.Resource{
			{Name: "cpus", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 0.05}},
			{Name: "mem", Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: 32}},
		},
	}
	task := func(o mesos.Offer, id string) mesos.TaskInfo {
		ti := schedCommandTask(o, id, "")
		ti.Command = nil
		ti.Executor = &exec
		return ti
	}
	o := sc.offer()
	sc.launch(o, task(o, "t1"))
	sc.awaitUpdate("t1", mesos.TASK_FINISHED)
	// The launch's leftovers (1.85 cpus) may have been offered before t1's
	// resources came back in an offer of their own; declined, they come
	// back together.
	o = sc.wholeOffer(1.9)
	cpus := 0.0
	for _, r := range o.Resources {
		if r.Name == "cpus" {
			cpus += r.GetScalar().GetValue()
		}
	}
	if cpus != 1.95 || len(o.ExecutorIDs) != 1 || o.ExecutorIDs[0].Value != "custom" {
		t.Fatalf("offer while the executor lives: cpus %v executor_ids %v (want 1.95 and [custom])", cpus, o.ExecutorIDs)
	}
	sc.launch(o, task(o, "t2"))
	sc.awaitUpdate("t2", mesos.TASK_FINISHED)

	sc.mustCall(calls.Message(o.AgentID.Value, "custom", []byte("hello")))
	m := sc.awaitType(scheduler.Event_MESSAGE)
	if string(m.Message.Data) != "echo:hello" || m.Message.ExecutorID.Value != "custom" || m.Message.AgentID.Value != o.AgentID.Value {
		t.Fatalf("MESSAGE %v", m.Message)
	}

	sc.mustCall(calls.Shutdown("custom", o.AgentID.Value))
	f := sc.awaitType(scheduler.Event_FAILURE)
	if f.Failure.GetExecutorID().GetValue() != "custom" || f.Failure.GetAgentID().GetValue() != o.AgentID.Value || f.Failure.Status == nil || *f.Failure.Status != 0 {
		t.Fatalf("FAILURE %v", f.Failure)
	}
	// Its resources come back: the whole agent is offered again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		o := sc.offer()
		total := 0.0
		for _, r := range o.Resources {
			if r.Name == "cpus" {
				total += r.GetScalar().GetValue()
			}
		}
		if len(o.ExecutorIDs) == 0 && total > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("executor resources never offered again")
		}
		sc.mustCall(calls.Decline(o.ID).With(calls.RefuseSeconds(0)))
	}
}
