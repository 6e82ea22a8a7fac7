package feed

import (
	"maps"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/statemgr"
)

// Observe publishes the events one stored change makes; it is the hub's
// statemgr.WithObserver. It runs with statemgr's cache locked, so it only
// compares the two documents and publishes (which never blocks).
func (h *Hub) Observe(c statemgr.Change) {
	switch {
	case c.OldInstance != nil || c.NewInstance != nil:
		h.Publish(instanceEvents(c.OldInstance, c.NewInstance)...)
	case c.OldTask != nil || c.NewTask != nil:
		h.Publish(taskEvents(c.OldTask, c.NewTask)...)
	}
}

// instanceEvents compares two versions of an instance document; old is nil
// for a new instance, new nil for a deleted one.
func instanceEvents(old, new *stateful.Instance) []Event {
	switch {
	case new == nil:
		return []Event{{Type: InstanceDeleted, Instance: old.Name, Details: map[string]any{"status": old.Status}}}
	case old == nil:
		return []Event{{Type: InstanceCreated, Instance: new.Name, Details: map[string]any{
			"type": new.Type, "masters": new.Masters, "slaves": new.Slaves,
			"generation": new.Generation, "status": new.Status,
		}}}
	}
	var out []Event
	if changed := specChanges(old, new); len(changed) > 0 {
		out = append(out, Event{Type: InstanceUpdated, Instance: new.Name, Details: map[string]any{
			"generation": new.Generation, "masters": new.Masters, "slaves": new.Slaves, "changed": changed,
		}})
	}
	if old.MasterOrdinal != new.MasterOrdinal && new.Type != stateful.TypeCluster {
		out = append(out, Event{Type: InstanceFailover, Instance: new.Name, Details: map[string]any{
			"from_ordinal": old.MasterOrdinal, "to_ordinal": new.MasterOrdinal,
			"from_task": stateful.TaskName(new.Name, old.MasterOrdinal),
			"to_task":   stateful.TaskName(new.Name, new.MasterOrdinal),
		}})
	}
	if old.Status != new.Status {
		out = append(out, Event{Type: InstanceStatus, Instance: new.Name, Details: map[string]any{
			"from": old.Status, "to": new.Status, "message": new.Message,
		}})
	}
	return out
}

// specChanges names what a user changed: the counts, the spec.
func specChanges(old, new *stateful.Instance) []string {
	var changed []string
	if old.Masters != new.Masters {
		changed = append(changed, "masters")
	}
	if old.Slaves != new.Slaves {
		changed = append(changed, "slaves")
	}
	if old.Generation != new.Generation {
		changed = append(changed, "generation")
	}
	return changed
}

// taskEvents compares two versions of a task document.
func taskEvents(old, new *stateful.Task) []Event {
	switch {
	case new == nil:
		return []Event{{Type: TaskDeleted, Instance: old.Instance, Task: old.Name, Details: map[string]any{
			"ordinal": old.Ordinal, "state": old.State,
		}}}
	case old == nil:
		return []Event{taskState(new, "")}
	}
	var out []Event
	if old.Role != new.Role {
		typ := TaskRole
		if new.Role == stateful.RoleMaster {
			typ = TaskPromoted
		}
		out = append(out, Event{Type: typ, Instance: new.Instance, Task: new.Name, Details: map[string]any{
			"ordinal": new.Ordinal, "from": old.Role, "to": new.Role, "attempt": new.Attempt,
		}})
	}
	// A new attempt is a change of state even when both are QUEUED.
	if old.State != new.State || old.Attempt != new.Attempt {
		out = append(out, taskState(new, old.State))
	}
	if old.Healthy != new.Healthy && old.Attempt == new.Attempt {
		out = append(out, Event{Type: TaskHealth, Instance: new.Instance, Task: new.Name, Details: map[string]any{
			"ordinal": new.Ordinal, "healthy": new.Healthy, "attempt": new.Attempt,
		}})
	}
	return out
}

func taskState(t *stateful.Task, from stateful.TaskState) Event {
	d := map[string]any{
		"ordinal": t.Ordinal, "role": t.Role, "from": from, "to": t.State,
		"attempt": t.Attempt, "task_id": t.TaskID, "healthy": t.Healthy,
	}
	if t.Host != "" {
		d["host"] = t.Host
	}
	if len(t.Ports) > 0 {
		d["ports"] = maps.Clone(t.Ports)
	}
	for k, v := range map[string]string{"message": t.Message, "reason": t.Reason} {
		if v != "" {
			d[k] = v
		}
	}
	return Event{Type: TaskState, Instance: t.Instance, Task: t.Name, Details: d}
}
