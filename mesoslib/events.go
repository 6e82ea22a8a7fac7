package mesoslib

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/controller"
	"github.com/mesos/mesos-go/api/v1/lib/extras/scheduler/eventrules"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/events"
)

// eventHandler is what controller.Run feeds every decoded event to.
func (c *Client) eventHandler() events.Handler {
	return eventrules.Rules{
		c.watchEvents,       // heartbeat watchdog; paused while an event is handled
		logEvents,           // -v=2
		c.trackSubscription, // SUBSCRIBED: store or check the framework ID first
		eventrules.DropOnError(),
		eventrules.Handle(events.Handlers{
			scheduler.Event_SUBSCRIBED: events.HandlerFunc(c.subscribed),
			scheduler.Event_OFFERS: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
				c.handler.Offers(ctx, e.GetOffers().GetOffers())
				return nil
			}),
			scheduler.Event_RESCIND: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
				c.handler.Rescind(ctx, e.GetRescind().GetOfferID())
				return nil
			}),
			scheduler.Event_UPDATE: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
				c.update(ctx, e.GetUpdate().GetStatus())
				return nil
			}),
			scheduler.Event_MESSAGE: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
				m := e.GetMessage()
				c.handler.Message(ctx, m.GetAgentID(), m.GetExecutorID(), m.GetData())
				return nil
			}),
			scheduler.Event_FAILURE: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
				f := e.GetFailure()
				c.handler.Failure(ctx, Failure{AgentID: f.AgentID, ExecutorID: f.ExecutorID, Status: f.Status})
				return nil
			}),
			scheduler.Event_UPDATE_OPERATION_STATUS: events.HandlerFunc(func(ctx context.Context, e *scheduler.Event) error {
				c.operationStatus(ctx, e.GetUpdateOperationStatus().GetStatus())
				return nil
			}),
			scheduler.Event_ERROR: events.HandlerFunc(c.errorEvent),
		}),
	}
}

func (c *Client) watchEvents(ctx context.Context, e *scheduler.Event, err error, ch eventrules.Chain) (context.Context, *scheduler.Event, error) {
	c.lastHeard.Store(time.Now().UnixNano())
	c.watchdog.handling(true)
	defer c.watchdog.handling(false)
	return ch(ctx, e, err)
}

func logEvents(ctx context.Context, e *scheduler.Event, err error, ch eventrules.Chain) (context.Context, *scheduler.Event, error) {
	if glog.V(2) {
		switch e.GetType() {
		case scheduler.Event_UPDATE:
			s := e.GetUpdate().GetStatus()
			glog.Infof("mesoslib: event UPDATE task %s %s on agent %s (source %s, reason %s, uuid %t): %s",
				s.TaskID.Value, s.GetState(), s.GetAgentID().GetValue(), s.GetSource(), s.GetReason(), len(s.UUID) > 0, s.GetMessage())
		case scheduler.Event_OFFERS:
			for _, o := range e.GetOffers().GetOffers() {
				glog.Infof("mesoslib: event OFFER %s from agent %s (%s): %s", o.ID.Value, o.AgentID.Value, o.Hostname, mesos.Resources(o.Resources))
			}
		case scheduler.Event_HEARTBEAT:
			glog.Infof("mesoslib: event HEARTBEAT")
		default:
			glog.Infof("mesoslib: event %s", e)
		}
	}
	return ch(ctx, e, err)
}

// trackSubscription stores a new framework ID before anything else happens
// under it, and refuses a changed one.
func (c *Client) trackSubscription(ctx context.Context, e *scheduler.Event, err error, ch eventrules.Chain) (context.Context, *scheduler.Event, error) {
	if err != nil || e.GetType() != scheduler.Event_SUBSCRIBED {
		return ch(ctx, e, err)
	}
	id := e.GetSubscribed().GetFrameworkID().GetValue()
	c.mu.Lock()
	stored := c.frameworkID
	c.mu.Unlock()
	switch {
	case id == "":
		return ch(ctx, e, c.fatal(errors.New("mesoslib: SUBSCRIBED without a framework ID")))
	case stored == "":
		if err := c.storeFrameworkID(ctx, id); err != nil {
			return ch(ctx, e, c.fatal(err))
		}
		c.mu.Lock()
		c.frameworkID = id
		c.mu.Unlock()
		glog.Infof("mesoslib: registered as new framework %s", id)
	case stored != id:
		return ch(ctx, e, c.fatal(fmt.Errorf("%w: subscribed as %s but Mesos answered %s", ErrFrameworkIDChanged, stored, id)))
	}
	return ch(ctx, e, nil)
}

// storeFrameworkID retries a few times: losing a new ID means the next
// start registers yet another framework while this one's tasks linger.
func (c *Client) storeFrameworkID(ctx context.Context, id string) error {
	wait := c.cfg.SubscribeBackoff
	var err error
	for attempt := 1; attempt <= 4; attempt++ {
		if err = c.store.SetFrameworkID(ctx, id); err == nil {
			return nil
		}
		glog.Warningf("mesoslib: store framework ID %s (attempt %d): %v", id, attempt, err)
		if !sleep(ctx, wait) {
			break
		}
		wait *= 2
	}
	return fmt.Errorf("mesoslib: store new framework ID %s: %w", id, err)
}

func (c *Client) subscribed(ctx context.Context, e *scheduler.Event) error {
	s := e.GetSubscribed()
	interval := defaultHeartbeatInterval
	if secs := s.GetHeartbeatIntervalSeconds(); secs > 0 {
		interval = time.Duration(secs * float64(time.Second))
	}
	c.watchdog.setInterval(interval)
	sub := Subscription{FrameworkID: mesos.FrameworkID{Value: s.GetFrameworkID().GetValue()}, HeartbeatInterval: interval}
	if s.MasterInfo != nil {
		sub.Master = *s.MasterInfo
	}
	c.connected.Store(true)
	glog.Infof("mesoslib: subscribed as framework %s to master %s at %s (heartbeat every %v)",
		sub.FrameworkID.Value, sub.Master.ID, masterAddress(sub.Master), interval)
	c.handler.Subscribed(ctx, sub)
	c.subs.Add(1)
	go func() {
		defer c.subs.Done()
		c.reconcile(ctx)
	}()
	return nil
}

func masterAddress(m mesos.MasterInfo) string {
	if a := m.GetAddress(); a != nil {
		return fmt.Sprintf("%s:%d", a.GetIP(), a.GetPort())
	}
	return fmt.Sprintf("%s:%d", m.GetHostname(), m.GetPort())
}

// errorEvent ends the subscription; for an ERROR that a re-subscription
// cannot fix it ends Run.
func (c *Client) errorEvent(ctx context.Context, e *scheduler.Event) error {
	msg := e.GetError().GetMessage()
	glog.Errorf("mesoslib: the master sent ERROR: %s", msg)
	c.handler.Error(ctx, msg)
	switch msg {
	case "Framework has been removed":
		if c.tearingDown.Load() {
			return c.fatal(ErrTornDown)
		}
		return c.fatal(fmt.Errorf("%w (framework ID %s): it was torn down or its failover timeout expired", ErrFrameworkRemoved, c.FrameworkID()))
	case "Framework failed over":
		return c.fatal(fmt.Errorf("%w (framework ID %s)", ErrFailedOver, c.FrameworkID()))
	}
	return controller.ErrEvent(msg)
}

// update hands a status to the consumer and acknowledges it once the
// consumer has it: at once for a plain Handler, later (from the settle
// goroutine) for an AsyncUpdater.
func (c *Client) update(ctx context.Context, s mesos.TaskStatus) {
	c.answered(s.TaskID)
	if c.async != nil {
		c.async.UpdateAsync(ctx, s, c.doneFunc(s))
		return
	}
	err := c.handler.Update(ctx, s)
	if err != nil && !errors.Is(err, ErrUnknownTask) {
		glog.V(1).Infof("mesoslib: update %s of task %s not recorded, not acknowledging (Mesos will resend): %v", s.GetState(), s.TaskID.Value, err)
		return
	}
	c.conclude(ctx, s, err)
}

// conclude acts on an update the consumer recorded (err nil) or has no
// record of (err is ErrUnknownTask): acknowledge it if it carries a uuid,
// and kill an unknown task that is alive.
func (c *Client) conclude(ctx context.Context, s mesos.TaskStatus, err error) {
	if len(s.UUID) > 0 {
		c.acknowledge(ctx, s)
	}
	if errors.Is(err, ErrUnknownTask) {
		c.killUnknown(ctx, s)
	}
}

func (c *Client) acknowledge(ctx context.Context, s mesos.TaskStatus) {
	if s.GetAgentID().GetValue() == "" {
		glog.Errorf("mesoslib: update %s of task %s has a uuid but no agent ID; cannot acknowledge it", s.GetState(), s.TaskID.Value)
		return
	}
	ack := calls.Acknowledge(s.GetAgentID().GetValue(), s.TaskID.Value, s.UUID)
	if err := c.call(ctx, ack); err != nil {
		// Mesos resends unacknowledged updates, after a re-subscription at once.
		glog.Warningf("mesoslib: acknowledge update %s of task %s: %v", s.GetState(), s.TaskID.Value, err)
	}
}

// killUnknown kills a task the consumer has no record of, if it is alive.
func (c *Client) killUnknown(ctx context.Context, s mesos.TaskStatus) {
	switch s.GetState() {
	case mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING:
	default:
		c.kills.forget(s.TaskID.Value)
		return
	}
	if !c.kills.due(s.TaskID.Value, time.Now()) {
		glog.V(2).Infof("mesoslib: unknown task %s still %s; kill already sent", s.TaskID.Value, s.GetState())
		return
	}
	glog.V(1).Infof("mesoslib: killing unknown task %s (%s on agent %s)", s.TaskID.Value, s.GetState(), s.GetAgentID().GetValue())
	if err := c.Kill(ctx, s.TaskID, mesos.AgentID{Value: s.GetAgentID().GetValue()}); err != nil {
		glog.Warningf("mesoslib: kill unknown task %s: %v", s.TaskID.Value, err)
		c.kills.forget(s.TaskID.Value)
	}
}

// killLog remembers recent kills of unknown tasks so that the duplicates
// and reconciliation answers that follow do not each send another KILL.
type killLog struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

// rekillAfter is how long a KILL of an unknown task is given to take effect
// before another one is sent.
const rekillAfter = 30 * time.Second

func newKillLog() *killLog { return &killLog{sent: map[string]time.Time{}} }

// due reports whether a KILL should be sent for the task now, and notes
// it if so.
func (k *killLog) due(taskID string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.sent[taskID]; ok && now.Sub(t) < rekillAfter {
		return false
	}
	if len(k.sent) >= 4096 {
		for id, t := range k.sent {
			if now.Sub(t) >= rekillAfter {
				delete(k.sent, id)
			}
		}
	}
	k.sent[taskID] = now
	return true
}

func (k *killLog) forget(taskID string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.sent, taskID)
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
