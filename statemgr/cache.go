package statemgr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/mesos-stateful/stateful"
)

// record is one document as last seen in etcd.
type record struct {
	raw    []byte
	modRev int64
	inst   *stateful.Instance // kindInstance
	task   *stateful.Task     // kindTask
}

// cache mirrors the framework's keys. Writers are the Store's own successful
// transactions (write-through) and the watch loop; both go through put and
// del, which only ever move a key forward in revision order, so the two
// sources can interleave freely.
type cache struct {
	keys keys

	mu          sync.RWMutex
	instances   map[string]record
	tasks       map[string]map[int]record
	frameworkID record
	// tombs remembers keys deleted (by us, or seen absent in a conflict
	// reply) at a revision the watch has not reached yet, so a late watch
	// event carrying an older value cannot resurrect them.
	tombs map[string]int64
	// rev is the highest revision applied.
	rev int64

	// observe, if set, is told of every document the cache takes in or
	// drops, with the lock held (see WithObserver).
	observe func(Change)
}

// Change is one document the cache took in or dropped: Old is what it held
// before (nil for a new key), New what it holds now (nil once deleted).
// Either the instance pair or the task pair is set. The documents are the
// cache's own and must be neither modified nor kept.
type Change struct {
	// Rev is the etcd revision of the change.
	Rev                      int64
	OldInstance, NewInstance *stateful.Instance
	OldTask, NewTask         *stateful.Task
}

// notifyLocked tells the observer that key went from old to new.
func (c *cache) notifyLocked(kind keyKind, old, new record, rev int64) {
	if c.observe == nil {
		return
	}
	switch kind {
	case kindInstance:
		c.observe(Change{Rev: rev, OldInstance: old.inst, NewInstance: new.inst})
	case kindTask:
		c.observe(Change{Rev: rev, OldTask: old.task, NewTask: new.task})
	}
}

func newCache(k keys) *cache {
	return &cache{
		keys:      k,
		instances: map[string]record{},
		tasks:     map[string]map[int]record{},
		tombs:     map[string]int64{},
	}
}

// decode turns a stored value into a record, checking that the document
// agrees with the key it is stored under.
func (c *cache) decode(pk parsedKey, raw []byte, modRev int64) (record, error) {
	r := record{raw: bytes.Clone(raw), modRev: modRev}
	switch pk.kind {
	case kindInstance:
		var inst stateful.Instance
		if err := json.Unmarshal(raw, &inst); err != nil {
			return record{}, err
		}
		if inst.Name != pk.instance {
			return record{}, fmt.Errorf("document names instance %q", inst.Name)
		}
		inst.Tasks = nil
		r.inst = &inst
	case kindTask:
		var t stateful.Task
		if err := json.Unmarshal(raw, &t); err != nil {
			return record{}, err
		}
		if t.Instance != pk.instance || t.Ordinal != pk.ordinal {
			return record{}, fmt.Errorf("document names task %s ordinal %d", t.Instance, t.Ordinal)
		}
		r.task = &t
	}
	return r, nil
}

// current returns the revision at which key was last written, 0 if absent.
func (c *cache) currentLocked(pk parsedKey) (record, bool) {
	switch pk.kind {
	case kindFrameworkID:
		return c.frameworkID, c.frameworkID.modRev != 0
	case kindInstance:
		r, ok := c.instances[pk.instance]
		return r, ok
	case kindTask:
		r, ok := c.tasks[pk.instance][pk.ordinal]
		return r, ok
	}
	return record{}, false
}

// putLocked records key's value as of modRev unless the cache already holds
// something newer (a later write or a later delete).
func (c *cache) putLocked(key string, raw []byte, modRev int64) error {
	pk := c.keys.parse(key)
	if pk.kind == kindOther {
		return nil
	}
	c.rev = max(c.rev, modRev)
	if tomb, ok := c.tombs[key]; ok && tomb >= modRev {
		return nil
	}
	cur, ok := c.currentLocked(pk)
	if ok && cur.modRev >= modRev {
		return nil
	}
	r, err := c.decode(pk, raw, modRev)
	if err != nil {
		return fmt.Errorf("key %s at revision %d: %w", key, modRev, err)
	}
	defer c.notifyLocked(pk.kind, cur, r, modRev)
	delete(c.tombs, key)
	switch pk.kind {
	case kindFrameworkID:
		c.frameworkID = r
	case kindInstance:
		c.instances[pk.instance] = r
	case kindTask:
		m := c.tasks[pk.instance]
		if m == nil {
			m = map[int]record{}
			c.tasks[pk.instance] = m
		}
		m[pk.ordinal] = r
	}
	return nil
}

// delLocked records that key does not exist as of rev, unless the cache
// holds a value written after rev.
func (c *cache) delLocked(key string, rev int64) {
	pk := c.keys.parse(key)
	if pk.kind == kindOther {
		return
	}
	c.rev = max(c.rev, rev)
	cur, ok := c.currentLocked(pk)
	if ok && cur.modRev > rev {
		return
	}
	if c.tombs[key] < rev {
		c.tombs[key] = rev
	}
	if ok {
		defer c.notifyLocked(pk.kind, cur, record{}, rev)
	}
	switch pk.kind {
	case kindFrameworkID:
		c.frameworkID = record{}
	case kindInstance:
		delete(c.instances, pk.instance)
	case kindTask:
		if m := c.tasks[pk.instance]; m != nil {
			delete(m, pk.ordinal)
			if len(m) == 0 {
				delete(c.tasks, pk.instance)
			}
		}
	}
}

// pruneTombsLocked forgets deletions at or below rev: the watch has
// delivered every event up to rev, so nothing older can arrive any more.
func (c *cache) pruneTombsLocked(rev int64) {
	for k, r := range c.tombs {
		if r <= rev {
			delete(c.tombs, k)
		}
	}
}

// replace swaps in a freshly loaded cache taken at loadRev, keeping what
// this cache learnt after loadRev (writes of ours that committed while the
// load was in flight), so a reload never loses a write already returned to a
// caller.
func (c *cache) replace(fresh *cache, loadRev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	newer := func(r record) bool { return r.modRev > loadRev }
	if newer(c.frameworkID) {
		fresh.frameworkID = c.frameworkID
	}
	for name, r := range c.instances {
		if newer(r) {
			fresh.instances[name] = r
		}
	}
	for name, m := range c.tasks {
		for n, r := range m {
			if newer(r) {
				if fresh.tasks[name] == nil {
					fresh.tasks[name] = map[int]record{}
				}
				fresh.tasks[name][n] = r
			}
		}
	}
	for key, rev := range c.tombs {
		if rev > loadRev {
			fresh.delLocked(key, rev)
		}
	}
	if c.rev > 0 {
		// A reload after the watch fell behind: what changed meanwhile
		// was never seen one key at a time.
		c.notifyReloadLocked(fresh, loadRev)
	}
	c.instances, c.tasks, c.frameworkID, c.tombs = fresh.instances, fresh.tasks, fresh.frameworkID, fresh.tombs
	c.rev = max(c.rev, fresh.rev)
}

// notifyReloadLocked tells the observer how fresh differs from what the
// cache holds, as if each difference had been watched.
func (c *cache) notifyReloadLocked(fresh *cache, rev int64) {
	if c.observe == nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(c.instances)) {
		if _, ok := fresh.instances[name]; !ok {
			c.notifyLocked(kindInstance, c.instances[name], record{}, rev)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fresh.instances)) {
		if r, old := fresh.instances[name], c.instances[name]; r.modRev != old.modRev {
			c.notifyLocked(kindInstance, old, r, rev)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.tasks)) {
		for _, n := range slices.Sorted(maps.Keys(c.tasks[name])) {
			if _, ok := fresh.tasks[name][n]; !ok {
				c.notifyLocked(kindTask, c.tasks[name][n], record{}, rev)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fresh.tasks)) {
		for _, n := range slices.Sorted(maps.Keys(fresh.tasks[name])) {
			if r, old := fresh.tasks[name][n], c.tasks[name][n]; r.modRev != old.modRev {
				c.notifyLocked(kindTask, old, r, rev)
			}
		}
	}
}

// snapshot is a consistent copy of one instance and its tasks, with the
// revisions a transaction must find unchanged.
type snapshot struct {
	inst     *stateful.Instance // with Tasks filled, sorted by ordinal
	instRev  int64
	instRaw  []byte
	taskRevs map[int]int64
	taskRaws map[int][]byte
}

func (c *cache) snapshot(name string) (snapshot, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.instances[name]
	if !ok {
		return snapshot{}, false
	}
	s := snapshot{
		inst:     r.inst.Clone(),
		instRev:  r.modRev,
		instRaw:  r.raw,
		taskRevs: map[int]int64{},
		taskRaws: map[int][]byte{},
	}
	s.inst.Tasks = c.tasksLocked(name)
	for n, tr := range c.tasks[name] {
		s.taskRevs[n] = tr.modRev
		s.taskRaws[n] = tr.raw
	}
	return s, true
}

// tasksLocked returns copies of name's tasks, ordered by ordinal.
func (c *cache) tasksLocked(name string) []*stateful.Task {
	m := c.tasks[name]
	out := make([]*stateful.Task, 0, len(m))
	for _, n := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[n].task.Clone())
	}
	return out
}

func (c *cache) instance(name string) (*stateful.Instance, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.instances[name]
	if !ok {
		return nil, false
	}
	return r.inst.Clone(), true
}

func (c *cache) instanceWithTasks(name string) (*stateful.Instance, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.instances[name]
	if !ok {
		return nil, false
	}
	inst := r.inst.Clone()
	inst.Tasks = c.tasksLocked(name)
	return inst, true
}

func (c *cache) instanceList() []*stateful.Instance {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*stateful.Instance, 0, len(c.instances))
	for _, name := range slices.Sorted(maps.Keys(c.instances)) {
		out = append(out, c.instances[name].inst.Clone())
	}
	return out
}

func (c *cache) taskList(name string) []*stateful.Task {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tasksLocked(name)
}

func (c *cache) allTasks() []*stateful.Task {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*stateful.Task
	for _, name := range slices.Sorted(maps.Keys(c.tasks)) {
		out = append(out, c.tasksLocked(name)...)
	}
	return out
}

func (c *cache) task(name string, ordinal int) (*stateful.Task, int64, []byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.tasks[name][ordinal]
	if !ok {
		return nil, 0, nil, false
	}
	return r.task.Clone(), r.modRev, r.raw, true
}

func (c *cache) framework() (string, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return string(c.frameworkID.raw), c.frameworkID.modRev
}
