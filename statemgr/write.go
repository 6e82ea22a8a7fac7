package statemgr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/golang/glog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/mesos-stateful/stateful"
)

// errRetry is commit's internal signal that a guard failed; the cache has
// been refreshed with the current values and the caller may try again.
var errRetry = errors.New("guard failed")

// guard is a key's mod revision a transaction must still find (0: the key
// must not exist).
type guard struct {
	key    string
	modRev int64
}

// write is one document a transaction puts (raw != nil) or deletes.
type write struct {
	key    string
	raw    []byte
	prefix bool // delete every key under key
}

// commit runs one fenced transaction: if the leader fence holds and every
// guard holds, apply the writes. On success it updates the cache and
// returns the transaction's revision. A failed guard refreshes the guarded
// keys in the cache and returns errRetry; a failed fence returns
// ErrNotLeader.
func (s *Store) commit(ctx context.Context, guards []guard, writes []write) (int64, error) {
	fence, err := s.fence()
	if err != nil {
		return 0, err
	}
	size := 0
	for _, w := range writes {
		size += len(w.key) + len(w.raw)
	}
	if size > MaxTxnBytes {
		return 0, fmt.Errorf("documents of %d bytes exceed the %d bytes one transaction may write", size, MaxTxnBytes)
	}
	cmps := make([]clientv3.Cmp, 0, len(guards))
	reads := make([]clientv3.Op, 0, len(guards))
	for _, g := range guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(g.key), "=", g.modRev))
		reads = append(reads, clientv3.OpGet(g.key))
	}
	ops := make([]clientv3.Op, 0, len(writes))
	for _, w := range writes {
		switch {
		case w.raw != nil:
			ops = append(ops, clientv3.OpPut(w.key, string(w.raw)))
		case w.prefix:
			ops = append(ops, clientv3.OpDelete(w.key, clientv3.WithPrefix(), clientv3.WithPrevKV()))
		default:
			ops = append(ops, clientv3.OpDelete(w.key))
		}
	}
	// The guards sit in a nested transaction so that a failure tells which
	// condition failed: the fence (outer) or a guard (inner, which then
	// reads the current values in the same round trip).
	resp, err := s.client.Txn(ctx).If(fence).Then(clientv3.OpTxn(cmps, ops, reads)).Commit()
	if err != nil {
		// The outcome is unknown (the transaction may have committed); the
		// watch will bring the cache up to date either way.
		return 0, fmt.Errorf("etcd: %w: %w", stateful.ErrUnavailable, err)
	}
	s.confirm()
	rev := resp.Header.Revision
	if !resp.Succeeded {
		return 0, fmt.Errorf("leader fence failed at revision %d: %w", rev, ErrNotLeader)
	}
	inner := resp.Responses[0].GetResponseTxn()
	c := s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !inner.Succeeded {
		for i, r := range inner.Responses {
			kvs := r.GetResponseRange().Kvs
			if len(kvs) == 0 {
				c.delLocked(guards[i].key, rev)
				continue
			}
			if err := c.putLocked(string(kvs[0].Key), kvs[0].Value, kvs[0].ModRevision); err != nil {
				glog.Errorf("statemgr: refreshing after a conflict: %v", err)
			}
		}
		return 0, errRetry
	}
	for i, w := range writes {
		switch {
		case w.raw != nil:
			if err := c.putLocked(w.key, w.raw, rev); err != nil {
				// We encoded it ourselves; failing to decode it is a bug.
				glog.Errorf("statemgr: caching own write: %v", err)
			}
		case w.prefix:
			for _, kv := range inner.Responses[i].GetResponseDeleteRange().PrevKvs {
				c.delLocked(string(kv.Key), rev)
			}
		default:
			c.delLocked(w.key, rev)
		}
	}
	return rev, nil
}

func encode(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return raw, nil
}

// encodeInstance encodes the instance document, which never holds tasks.
func encodeInstance(inst *stateful.Instance) ([]byte, error) {
	doc := *inst
	doc.Tasks = nil
	return encode(&doc)
}

// checkTasks validates the tasks of inst: valid documents, of inst, with
// distinct ordinals.
func checkTasks(inst *stateful.Instance, tasks []*stateful.Task) error {
	seen := map[int]bool{}
	for _, t := range tasks {
		if t == nil {
			return errors.New("nil task")
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("task %s: %w", t.Name, err)
		}
		if t.Instance != inst.Name {
			return fmt.Errorf("task %s belongs to instance %q", t.Name, t.Instance)
		}
		if seen[t.Ordinal] {
			return fmt.Errorf("ordinal %d given twice", t.Ordinal)
		}
		seen[t.Ordinal] = true
	}
	return nil
}

// CreateInstance stores a new instance and its initial task documents in one
// transaction that fails with ErrExists, writing nothing, if the instance
// (or any of those task keys) already exists. inst.Tasks is ignored. An
// empty Status becomes CREATING; empty CreatedAt/UpdatedAt become now.
// When etcd does not answer, the error wraps stateful.ErrUnavailable and the
// outcome is unknown: a retry may then meet ErrExists for its own write.
func (s *Store) CreateInstance(ctx context.Context, inst *stateful.Instance, tasks []*stateful.Task) error {
	if inst == nil {
		return errors.New("create instance: nil instance")
	}
	if err := inst.Validate(); err != nil {
		return fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	if err := checkTasks(inst, tasks); err != nil {
		return fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	now := s.opts.now()
	doc := inst.Clone()
	if doc.Status == "" {
		doc.Status = stateful.StatusCreating
	}
	if doc.CreatedAt.IsZero() {
		doc.CreatedAt = now
	}
	if doc.UpdatedAt.IsZero() {
		doc.UpdatedAt = now
	}
	raw, err := encodeInstance(doc)
	if err != nil {
		return fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	guards := []guard{{key: s.keys.instance(inst.Name)}}
	writes := []write{{key: s.keys.instance(inst.Name), raw: raw}}
	for _, t := range tasks {
		t = t.Clone()
		if t.UpdatedAt.IsZero() {
			t.UpdatedAt = now
		}
		traw, err := encode(t)
		if err != nil {
			return fmt.Errorf("create instance %q: task %s: %w", inst.Name, t.Name, err)
		}
		key := s.keys.task(inst.Name, t.Ordinal)
		guards = append(guards, guard{key: key})
		writes = append(writes, write{key: key, raw: traw})
	}
	_, err = s.commit(ctx, guards, writes)
	if errors.Is(err, errRetry) {
		return fmt.Errorf("create instance %q: %w", inst.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create instance %q: %w", inst.Name, err)
	}
	glog.V(1).Infof("statemgr: created instance %s with %d tasks", inst.Name, len(tasks))
	return nil
}

// UpdateInstance changes an instance and its tasks atomically. mutate gets a
// copy of the instance with Tasks filled (ordered by ordinal) and may change
// the instance, change tasks, append new tasks (new ordinals) and remove
// tasks from the slice (which deletes them). The result is validated and
// written in one transaction that requires the instance and every task read
// to be unchanged; if another writer got there first, the cache is
// refreshed and mutate runs again on the new values, up to the retry limit
// (then ErrConflict). mutate may therefore run several times and must only
// change what it is given. An error from mutate is returned (wrapped) and
// nothing is written. UpdatedAt is set on every changed document; when
// nothing changed, nothing is written.
//
// It returns the instance as stored, with its tasks.
func (s *Store) UpdateInstance(ctx context.Context, name string, mutate func(*stateful.Instance) error) (*stateful.Instance, error) {
	// A follower's cache may lag: say it is not the leader rather than
	// answer from that cache (e.g. "not found").
	if _, err := s.fence(); err != nil {
		return nil, fmt.Errorf("update instance %q: %w", name, err)
	}
	for range s.opts.retries {
		snap, ok := s.cache.snapshot(name)
		if !ok {
			return nil, fmt.Errorf("update instance %q: %w", name, ErrNotFound)
		}
		work := snap.inst.Clone()
		if err := mutate(work); err != nil {
			return nil, fmt.Errorf("update instance %q: %w", name, err)
		}
		guards, writes, err := s.diff(name, snap, work)
		if err != nil {
			return nil, fmt.Errorf("update instance %q: %w", name, err)
		}
		if len(writes) == 0 {
			return work, nil
		}
		_, err = s.commit(ctx, guards, writes)
		if errors.Is(err, errRetry) {
			glog.V(2).Infof("statemgr: update instance %s lost a race; retrying", name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update instance %q: %w", name, err)
		}
		return work, nil
	}
	return nil, fmt.Errorf("update instance %q: %d attempts: %w", name, s.opts.retries, ErrConflict)
}

// diff validates the mutated instance and returns the guards and writes
// that turn snap into work. It stamps UpdatedAt on changed documents.
func (s *Store) diff(name string, snap snapshot, work *stateful.Instance) ([]guard, []write, error) {
	if work.Name != name {
		return nil, nil, fmt.Errorf("the name cannot change (to %q)", work.Name)
	}
	if err := work.Validate(); err != nil {
		return nil, nil, err
	}
	if err := checkTasks(work, work.Tasks); err != nil {
		return nil, nil, err
	}
	now := s.opts.now()
	var guards []guard
	var writes []write

	instKey := s.keys.instance(name)
	guards = append(guards, guard{key: instKey, modRev: snap.instRev})
	raw, err := encodeInstance(work)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(raw, snap.instRaw) {
		work.UpdatedAt = now
		if raw, err = encodeInstance(work); err != nil {
			return nil, nil, err
		}
		writes = append(writes, write{key: instKey, raw: raw})
	}

	kept := map[int]bool{}
	for _, t := range work.Tasks {
		kept[t.Ordinal] = true
		key := s.keys.task(name, t.Ordinal)
		guards = append(guards, guard{key: key, modRev: snap.taskRevs[t.Ordinal]})
		traw, err := encode(t)
		if err != nil {
			return nil, nil, err
		}
		if old, ok := snap.taskRaws[t.Ordinal]; ok && bytes.Equal(traw, old) {
			continue
		}
		t.UpdatedAt = now
		if traw, err = encode(t); err != nil {
			return nil, nil, err
		}
		writes = append(writes, write{key: key, raw: traw})
	}
	for _, n := range slices.Sorted(maps.Keys(snap.taskRevs)) {
		if kept[n] {
			continue
		}
		key := s.keys.task(name, n)
		guards = append(guards, guard{key: key, modRev: snap.taskRevs[n]})
		writes = append(writes, write{key: key})
	}
	if len(writes) == 0 {
		return nil, nil, nil
	}
	return guards, writes, nil
}

// UpdateTask changes one task document: mutate gets a copy of the stored
// task; the result is validated and written if changed, guarded by the
// task's mod revision and retried on conflict like UpdateInstance. mutate
// may not change the task's identity. It returns the task as stored.
func (s *Store) UpdateTask(ctx context.Context, name string, ordinal int, mutate func(*stateful.Task) error) (*stateful.Task, error) {
	res, err := s.ApplyTaskUpdates(ctx, []TaskUpdate{{Instance: name, Ordinal: ordinal, Mutate: mutate}})
	if err != nil {
		return nil, err
	}
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	return res[0].Task, nil
}

// TaskUpdate is one change of ApplyTaskUpdates.
type TaskUpdate struct {
	Instance string
	Ordinal  int
	// Mutate changes a copy of the stored task. It may run more than once
	// (after a conflict) and must only change what it is given.
	Mutate func(*stateful.Task) error
}

// TaskResult is the outcome of one TaskUpdate.
type TaskResult struct {
	// Task is the document as stored after the update (nil when Err is set).
	Task *stateful.Task
	// Err is why this update was not applied: ErrNotFound, the Mutate's
	// error, or an invalid result. The batch's other updates are unaffected.
	Err error
}

// ApplyTaskUpdates writes many task changes in as few transactions as
// possible (one per MaxBatch distinct tasks), which is what keeps up with a
// burst of status updates: every transaction costs etcd a disk sync.
// Updates of the same task apply in order. results[i] reports on
// updates[i]. err is set when a transaction could not be committed (not the
// leader, etcd unreachable, conflicts beyond the retry limit); then the
// updates of that transaction and all later ones are not applied (their
// results carry err too), while earlier transactions stay committed.
func (s *Store) ApplyTaskUpdates(ctx context.Context, updates []TaskUpdate) ([]TaskResult, error) {
	results := make([]TaskResult, len(updates))
	if _, err := s.fence(); err != nil {
		for i := range results {
			results[i] = TaskResult{Err: err}
		}
		return results, err
	}
	// Group updates by task, in order of first appearance.
	type group struct {
		name    string
		ordinal int
		idx     []int
	}
	var groups []*group
	byKey := map[string]*group{}
	for i, u := range updates {
		key := s.keys.task(u.Instance, u.Ordinal)
		g := byKey[key]
		if g == nil {
			g = &group{name: u.Instance, ordinal: u.Ordinal}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	for start := 0; start < len(groups); start += MaxBatch {
		chunk := groups[start:min(start+MaxBatch, len(groups))]
		err := s.applyChunk(ctx, len(chunk), func(i int) (string, int, []int) {
			return chunk[i].name, chunk[i].ordinal, chunk[i].idx
		}, updates, results)
		if err != nil {
			for _, g := range groups[start:] {
				for _, i := range g.idx {
					results[i] = TaskResult{Err: err}
				}
			}
			return results, err
		}
	}
	return results, nil
}

// applyChunk commits the updates of n tasks in one transaction, retrying on
// conflict.
func (s *Store) applyChunk(ctx context.Context, n int, group func(int) (string, int, []int), updates []TaskUpdate, results []TaskResult) error {
	for range s.opts.retries {
		var guards []guard
		var writes []write
		type written struct {
			task *stateful.Task
			idx  []int
		}
		var done []written
		now := s.opts.now()
		for gi := range n {
			name, ordinal, idx := group(gi)
			cur, modRev, oldRaw, ok := s.cache.task(name, ordinal)
			if !ok {
				for _, i := range idx {
					results[i] = TaskResult{Err: fmt.Errorf("task %s: %w", stateful.TaskName(name, ordinal), ErrNotFound)}
				}
				continue
			}
			var applied []int
			for _, i := range idx {
				next := cur.Clone()
				if err := s.mutateTask(next, updates[i].Mutate); err != nil {
					results[i] = TaskResult{Err: fmt.Errorf("update task %s: %w", cur.Name, err)}
					continue
				}
				cur = next
				applied = append(applied, i)
			}
			if len(applied) == 0 {
				continue
			}
			raw, err := encode(cur)
			if err != nil {
				return err
			}
			if !bytes.Equal(raw, oldRaw) {
				cur.UpdatedAt = now
				if raw, err = encode(cur); err != nil {
					return err
				}
				key := s.keys.task(name, ordinal)
				guards = append(guards, guard{key: key, modRev: modRev})
				writes = append(writes, write{key: key, raw: raw})
			}
			done = append(done, written{task: cur, idx: applied})
		}
		if len(writes) > 0 {
			_, err := s.commit(ctx, guards, writes)
			if errors.Is(err, errRetry) {
				glog.V(2).Infof("statemgr: task updates lost a race; retrying")
				continue
			}
			if err != nil {
				return fmt.Errorf("update tasks: %w", err)
			}
		}
		for _, w := range done {
			for _, i := range w.idx {
				results[i] = TaskResult{Task: w.task.Clone()}
			}
		}
		return nil
	}
	return fmt.Errorf("update tasks: %d attempts: %w", s.opts.retries, ErrConflict)
}

// mutateTask runs mutate on t and checks the result keeps t's identity and
// is valid.
func (s *Store) mutateTask(t *stateful.Task, mutate func(*stateful.Task) error) error {
	inst, ord, name := t.Instance, t.Ordinal, t.Name
	if mutate == nil {
		return errors.New("nil mutate function")
	}
	if err := mutate(t); err != nil {
		return err
	}
	if t.Instance != inst || t.Ordinal != ord || t.Name != name {
		return fmt.Errorf("the task's identity cannot change (to %s ordinal %d name %q)", t.Instance, t.Ordinal, t.Name)
	}
	return t.Validate()
}

// DeleteInstance removes an instance and all its task documents in one
// transaction. precondition, if not nil, gets a copy of the instance with
// its tasks and may refuse (e.g. "a task is still running"); its error is
// returned wrapped and nothing is deleted. The transaction requires the
// documents precondition saw to be unchanged and is retried on conflict.
func (s *Store) DeleteInstance(ctx context.Context, name string, precondition func(*stateful.Instance) error) error {
	if _, err := s.fence(); err != nil {
		return fmt.Errorf("delete instance %q: %w", name, err)
	}
	for range s.opts.retries {
		snap, ok := s.cache.snapshot(name)
		if !ok {
			return fmt.Errorf("delete instance %q: %w", name, ErrNotFound)
		}
		if precondition != nil {
			if err := precondition(snap.inst.Clone()); err != nil {
				return fmt.Errorf("delete instance %q: %w", name, err)
			}
		}
		guards := []guard{{key: s.keys.instance(name), modRev: snap.instRev}}
		for _, n := range slices.Sorted(maps.Keys(snap.taskRevs)) {
			guards = append(guards, guard{key: s.keys.task(name, n), modRev: snap.taskRevs[n]})
		}
		writes := []write{{key: s.keys.instance(name)}, {key: s.keys.tasksOf(name), prefix: true}}
		_, err := s.commit(ctx, guards, writes)
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete instance %q: %w", name, err)
		}
		glog.V(1).Infof("statemgr: deleted instance %s", name)
		return nil
	}
	return fmt.Errorf("delete instance %q: %d attempts: %w", name, s.opts.retries, ErrConflict)
}

// SetFrameworkID stores the Mesos framework ID; "" removes it (when Mesos
// has forgotten the framework and a new registration is needed).
func (s *Store) SetFrameworkID(ctx context.Context, id string) error {
	key := s.keys.frameworkID()
	for range s.opts.retries {
		cur, modRev := s.cache.framework()
		if cur == id && (id != "" || modRev == 0) {
			return nil
		}
		w := write{key: key}
		if id != "" {
			w.raw = []byte(id)
		}
		_, err := s.commit(ctx, []guard{{key: key, modRev: modRev}}, []write{w})
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return fmt.Errorf("set framework id: %w", err)
		}
		glog.Infof("statemgr: framework id set to %q", id)
		return nil
	}
	return fmt.Errorf("set framework id: %d attempts: %w", s.opts.retries, ErrConflict)
}
