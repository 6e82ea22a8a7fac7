package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The agent's checkpoint, as a Mesos agent keeps it under
// <work_dir>/meta (src/slave/paths.hpp): enough to recover frameworks,
// executors, tasks and unacknowledged status updates after the process
// running the agent died, with the same agent ID. Only frameworks with
// checkpoint=true are written, as on Mesos.
//
//	meta/slaves/latest                                   -> <agent ID> (symlink)
//	meta/slaves/<agent>/slave.info                       AgentInfo (protobuf)
//	  frameworks/<fw>/framework.info                     FrameworkInfo (protobuf)
//	    executors/<ex>/executor.info                     ExecutorInfo (protobuf)
//	    executors/<ex>/command                           present for a command task's executor
//	      runs/<container>/pids/forked.pid               "<pid> <start time>"
//	      runs/<container>/exited                        raw wait status, once the executor ended
//	        tasks/<task>/task.info                       Task (protobuf), as launched
//	        tasks/<task>/task.updates                    the task's status update stream (JSON)
//
// Every file is written whole, to a temporary file that is synced and then
// renamed over the old one, so a crash leaves either version, never half.
// All writes happen on the agent's mailbox, before what they record is
// acknowledged to anyone: an update is checkpointed before the executor
// gets its ACKNOWLEDGED, as Mesos' status update manager does.

func (a *Agent) metaDir() string { return filepath.Join(a.cfg.WorkDir, "meta") }

func (a *Agent) metaAgentDir() string {
	return filepath.Join(a.metaDir(), "slaves", a.cfg.ID.Value)
}

func (a *Agent) metaFrameworkDir(fw mesos.FrameworkID) string {
	return filepath.Join(a.metaAgentDir(), "frameworks", fw.Value)
}

func (a *Agent) metaExecutorDir(fw mesos.FrameworkID, ex mesos.ExecutorID) string {
	return filepath.Join(a.metaFrameworkDir(fw), "executors", ex.Value)
}

func (a *Agent) metaRunDir(fw mesos.FrameworkID, ex mesos.ExecutorID, containerID string) string {
	return filepath.Join(a.metaExecutorDir(fw, ex), "runs", containerID)
}

func (a *Agent) metaTaskDir(ex *executorEntry, taskID string) string {
	return filepath.Join(a.metaRunDir(ex.frameworkID, ex.id(), ex.container.id), "tasks", taskID)
}

// writeAtomic replaces path with data: temporary file, fsync, rename. The
// checkpoint holds task and executor infos (environments, commands), so it
// is as private as the sandboxes: nothing for other users.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// syncDir makes the renames done in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type marshaler interface{ Marshal() ([]byte, error) }

func writeProto(path string, m marshaler) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
}

// checkpointFailed logs a failed write. Mesos' agent aborts on one; here
// the cluster keeps running and only a restart would miss the record.
func (a *Agent) checkpointFailed(what string, err error) {
	if err != nil {
		glog.Errorf("agent %s: checkpointing %s: %v", a.cfg.ID.Value, what, err)
	}
}

// checkpointAgent records the agent's info and makes it the latest agent
// of this work dir.
func (a *Agent) checkpointAgent() {
	info := a.agentInfo()
	if err := writeProto(filepath.Join(a.metaAgentDir(), "slave.info"), &info); err != nil {
		a.checkpointFailed("agent info", err)
		return
	}
	latest := filepath.Join(a.metaDir(), "slaves", "latest")
	tmp := latest + ".tmp"
	os.Remove(tmp)
	err := os.Symlink(a.cfg.ID.Value, tmp)
	if err == nil {
		err = os.Rename(tmp, latest)
	}
	a.checkpointFailed("latest agent", err)
}

// forgetCheckpoint removes the checkpoint: the host is gone, and a later
// start on this work dir is a new agent.
func (a *Agent) forgetCheckpoint() {
	a.checkpointFailed("removal", os.RemoveAll(a.metaDir()))
}

func (a *Agent) checkpointFramework(fw *framework) {
	if !fw.checkpoint() {
		return
	}
	a.checkpointFailed("framework "+fw.id().Value, writeProto(filepath.Join(a.metaFrameworkDir(fw.id()), "framework.info"), &fw.info))
}

// checkpointExecutor records an executor and the run (container) that is
// being launched for it.
func (a *Agent) checkpointExecutor(ex *executorEntry) {
	if !ex.checkpoint {
		return
	}
	dir := a.metaExecutorDir(ex.frameworkID, ex.id())
	if ex.command {
		a.checkpointFailed("executor "+ex.String(), writeAtomic(filepath.Join(dir, "command"), nil))
	}
	a.checkpointFailed("executor "+ex.String(), writeProto(filepath.Join(dir, "executor.info"), &ex.info))
	a.checkpointFailed("executor "+ex.String(), os.MkdirAll(filepath.Join(a.metaRunDir(ex.frameworkID, ex.id(), ex.container.id), "pids"), 0o750))
}

// checkpointPID records the pid of a container's process. It runs in
// startProcess, off the mailbox: the run directory was made on the
// mailbox, and the write fails harmlessly if the executor was removed
// meanwhile.
func checkpointPID(runDir string, pid int) {
	if runDir == "" {
		return
	}
	dir := filepath.Join(runDir, "pids")
	if _, err := os.Stat(dir); err != nil {
		return
	}
	start, _ := processStartTime(pid)
	if err := writeAtomic(filepath.Join(dir, "forked.pid"), []byte(fmt.Sprintf("%d %d", pid, start))); err != nil {
		glog.Errorf("agent: checkpointing pid %d: %v", pid, err)
	}
}

// runDirForPID is where the container's process records its pid, or ""
// for an executor that is not checkpointed.
func (a *Agent) runDirForPID(ex *executorEntry) string {
	if !ex.checkpoint {
		return ""
	}
	return a.metaRunDir(ex.frameworkID, ex.id(), ex.container.id)
}

func (a *Agent) checkpointExited(ex *executorEntry, status int32) {
	if !ex.checkpoint || ex.container == nil {
		return
	}
	dir := a.metaRunDir(ex.frameworkID, ex.id(), ex.container.id)
	if _, err := os.Stat(dir); err != nil {
		return
	}
	a.checkpointFailed("exit of executor "+ex.String(), writeAtomic(filepath.Join(dir, "exited"), []byte(strconv.Itoa(int(status)))))
}

func (a *Agent) checkpointTask(ex *executorEntry, t mesos.Task) {
	if !ex.checkpoint || ex.container == nil {
		return
	}
	a.checkpointFailed("task "+t.TaskID.Value, writeProto(filepath.Join(a.metaTaskDir(ex, t.TaskID.Value), "task.info"), &t))
}

// updatesRecord is task.updates: the task's statuses (one per state it
// went through, as the agent's Task keeps them), the updates not yet
// acknowledged by the scheduler, in order, and the uuids of the latest
// acknowledged ones (an executor replaying an update the agent took over
// just before it died is then recognised). Its size does not grow with
// the task's age.
type updatesRecord struct {
	Statuses   [][]byte `json:"statuses"` // TaskStatus, protobuf
	Pending    [][]byte `json:"pending"`  // TaskStatus, protobuf
	Acked      [][]byte `json:"acked"`    // uuids
	Terminated bool     `json:"terminated"`
}

// ackedKept is how many acknowledged uuids task.updates keeps.
const ackedKept = 64

// checkpointStream records a task's status update stream, if the task
// belongs to a checkpointed executor.
func (a *Agent) checkpointStream(s *updateStream) {
	fw := a.frameworks[s.key.framework]
	if fw == nil || !fw.checkpoint() {
		return
	}
	ex := fw.executorOfTask(s.key.task)
	if ex == nil || !ex.checkpoint || ex.container == nil {
		return
	}
	task := ex.launched[s.key.task]
	if task == nil {
		task = ex.terminated[s.key.task]
	}
	rec := updatesRecord{Terminated: s.terminated}
	var err error
	marshal := func(sts []mesos.TaskStatus) (out [][]byte) {
		for i := range sts {
			b, merr := sts[i].Marshal()
			if merr != nil {
				err = merr
			}
			out = append(out, b)
		}
		return out
	}
	if task != nil {
		rec.Statuses = marshal(task.Statuses)
	}
	rec.Pending = marshal(s.pending)
	for _, u := range s.ackedRecent {
		rec.Acked = append(rec.Acked, []byte(u))
	}
	var b []byte
	if err == nil {
		b, err = json.Marshal(rec)
	}
	if err == nil {
		err = writeAtomic(filepath.Join(a.metaTaskDir(ex, s.key.task), "task.updates"), b)
	}
	a.checkpointFailed("updates of task "+s.key.task, err)
}

// forgetTask removes a completed task's records.
func (a *Agent) forgetTask(ex *executorEntry, taskID string) {
	if !ex.checkpoint || ex.container == nil {
		return
	}
	a.checkpointFailed("removal of task "+taskID, os.RemoveAll(a.metaTaskDir(ex, taskID)))
}

func (a *Agent) forgetExecutor(ex *executorEntry) {
	if !ex.checkpoint {
		return
	}
	a.checkpointFailed("removal of executor "+ex.String(), os.RemoveAll(a.metaExecutorDir(ex.frameworkID, ex.id())))
}

func (a *Agent) forgetFramework(fw *framework) {
	if !fw.checkpoint() {
		return
	}
	a.checkpointFailed("removal of framework "+fw.id().Value, os.RemoveAll(a.metaFrameworkDir(fw.id())))
}

// ErrIncompatibleAgentInfo: the work dir holds an agent whose info differs
// from the configuration (Slave::__recover under --reconfiguration_policy=equal).
var ErrIncompatibleAgentInfo = errors.New("incompatible agent info detected")

// loadCheckpoint reads the work dir's latest agent, if there is one, and
// takes its ID, port and everything it ran. It runs in New, before the
// mailbox does anything.
func (a *Agent) loadCheckpoint() error {
	latest, err := os.Readlink(filepath.Join(a.metaDir(), "slaves", "latest"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the latest agent: %w", err)
	}
	id := filepath.Base(latest)
	b, err := os.ReadFile(filepath.Join(a.metaDir(), "slaves", id, "slave.info"))
	if err != nil {
		return fmt.Errorf("reading agent %s: %w", id, err)
	}
	var info mesos.AgentInfo
	if err := info.Unmarshal(b); err != nil {
		return fmt.Errorf("reading agent %s: %w", id, err)
	}
	if diff := a.incompatibility(info); diff != "" {
		return fmt.Errorf("%w: agent %s in %s was started with %s; start on a new work dir, or remove %s to register as a new agent",
			ErrIncompatibleAgentInfo, id, a.cfg.WorkDir, diff, filepath.Join(a.metaDir(), "slaves", "latest"))
	}
	a.cfg.ID = mesos.AgentID{Value: id}
	a.port = int(info.GetPort())
	a.address = net.JoinHostPort(a.cfg.IP, strconv.Itoa(a.port))
	a.started = true
	a.fromDisk = true

	fwDirs, _ := os.ReadDir(filepath.Join(a.metaAgentDir(), "frameworks"))
	for _, d := range fwDirs {
		fw, err := a.loadFramework(d.Name())
		if err != nil {
			glog.Warningf("agent %s: not recovering framework %s: %v", id, d.Name(), err)
			continue
		}
		if fw.idle() {
			a.forgetFramework(fw)
			continue
		}
		a.frameworks[fw.id().Value] = fw
	}
	glog.Infof("agent %s: recovered %d framework(s) from %s", id, len(a.frameworks), a.metaDir())
	return nil
}

// incompatibility says how a checkpointed AgentInfo differs from this
// agent's configuration, or "".
func (a *Agent) incompatibility(info mesos.AgentInfo) string {
	if info.Hostname != a.cfg.Hostname {
		return "hostname " + info.Hostname + " (now " + a.cfg.Hostname + ")"
	}
	if a.cfg.Port != 0 && int(info.GetPort()) != a.cfg.Port {
		return "port " + strconv.Itoa(int(info.GetPort())) + " (now " + strconv.Itoa(a.cfg.Port) + ")"
	}
	was, now := mesos.Resources(info.Resources), a.cfg.Resources
	if was.String() != now.String() {
		return "resources " + was.String() + " (now " + now.String() + ")"
	}
	if len(info.Attributes) != len(a.cfg.Attributes) {
		return "other attributes"
	}
	for i := range info.Attributes {
		if !info.Attributes[i].Equal(&a.cfg.Attributes[i]) {
			return "other attributes"
		}
	}
	return ""
}

func (a *Agent) loadFramework(fid string) (*framework, error) {
	dir := a.metaFrameworkDir(mesos.FrameworkID{Value: fid})
	b, err := os.ReadFile(filepath.Join(dir, "framework.info"))
	if err != nil {
		return nil, err
	}
	var info mesos.FrameworkInfo
	if err := info.Unmarshal(b); err != nil {
		return nil, err
	}
	if info.ID == nil || info.ID.Value != fid {
		return nil, errors.New("framework.info has another ID")
	}
	fw := &framework{info: info, state: frameworkRunning, executors: map[string]*executorEntry{}}
	exDirs, _ := os.ReadDir(filepath.Join(dir, "executors"))
	for _, d := range exDirs {
		ex, err := a.loadExecutor(fw, d.Name())
		if err != nil {
			glog.Warningf("agent %s: not recovering executor '%s' of framework %s: %v", a.cfg.ID.Value, d.Name(), fid, err)
			continue
		}
		fw.executors[ex.info.ExecutorID.Value] = ex
	}
	return fw, nil
}

func (a *Agent) loadExecutor(fw *framework, eid string) (*executorEntry, error) {
	dir := a.metaExecutorDir(fw.id(), mesos.ExecutorID{Value: eid})
	b, err := os.ReadFile(filepath.Join(dir, "executor.info"))
	if err != nil {
		return nil, err
	}
	var info mesos.ExecutorInfo
	if err := info.Unmarshal(b); err != nil {
		return nil, err
	}
	_, err = os.Stat(filepath.Join(dir, "command"))
	ex := newExecutorEntry(info, fw, err == nil)
	runs, _ := os.ReadDir(filepath.Join(dir, "runs"))
	if len(runs) != 1 {
		return nil, fmt.Errorf("%d runs checkpointed, want 1", len(runs))
	}
	cid := runs[0].Name()
	runDir := filepath.Join(dir, "runs", cid)
	c := &container{id: cid, sandbox: a.sandboxDir(fw.id(), ex.id(), cid), frameworkID: fw.id(), executorID: ex.id(), cancel: func() {}}
	ex.container = c
	ex.state = executorRegistering
	if s, err := os.ReadFile(filepath.Join(runDir, "exited")); err == nil {
		status, _ := strconv.Atoi(strings.TrimSpace(string(s)))
		c.exited, c.reported, c.status = true, true, int32(status)
		ex.state = executorTerminated
	} else {
		var pid, start int64
		if s, err := os.ReadFile(filepath.Join(runDir, "pids", "forked.pid")); err == nil {
			fmt.Sscan(string(s), &pid, &start)
		}
		c.pid = int(pid)
		if pid <= 0 || !processAlive(int(pid), start) {
			// Gone while the agent was down: noticed by recover.
			c.exited, c.reported, c.status = true, true, -1
		} else {
			c.adopted = true
			c.pidStart = start
		}
	}
	taskDirs, _ := os.ReadDir(filepath.Join(runDir, "tasks"))
	for _, d := range taskDirs {
		if err := a.loadTask(fw, ex, filepath.Join(runDir, "tasks", d.Name())); err != nil {
			glog.Warningf("agent %s: not recovering task %s of executor %s: %v", a.cfg.ID.Value, d.Name(), ex, err)
		}
	}
	if !ex.incomplete() {
		a.forgetExecutor(ex)
		return nil, errors.New("no task left")
	}
	return ex, nil
}

// loadTask recovers a task and its status update stream: the updates
// replayed in order give the task's state (Executor::recoverTask), those
// not acknowledged are pending again.
func (a *Agent) loadTask(fw *framework, ex *executorEntry, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "task.info"))
	if err != nil {
		return err
	}
	var task mesos.Task
	if err := task.Unmarshal(b); err != nil {
		return err
	}
	id := task.TaskID.Value
	ex.launched[id] = &task
	var rec updatesRecord
	if b, err := os.ReadFile(filepath.Join(dir, "task.updates")); err == nil {
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("task.updates: %w", err)
		}
	}
	key := streamKey{fw.id().Value, id}
	s := &updateStream{key: key, frameworkID: fw.id(), received: map[string]bool{}, acked: map[string]bool{}, terminated: rec.Terminated}
	unmarshal := func(bs [][]byte) ([]mesos.TaskStatus, error) {
		var out []mesos.TaskStatus
		for _, b := range bs {
			var st mesos.TaskStatus
			if err := st.Unmarshal(b); err != nil {
				return nil, fmt.Errorf("task.updates: %w", err)
			}
			out = append(out, st)
		}
		return out, nil
	}
	if task.Statuses, err = unmarshal(rec.Statuses); err != nil {
		return err
	}
	if s.pending, err = unmarshal(rec.Pending); err != nil {
		return err
	}
	if n := len(task.Statuses); n > 0 {
		st := task.Statuses[n-1].GetState()
		task.State = &st
		if isTerminal(st) {
			delete(ex.launched, id)
			ex.terminated[id] = &task
		}
	}
	for _, u := range rec.Acked {
		s.acked[string(u)] = true
		s.received[string(u)] = true
		s.ackedRecent = append(s.ackedRecent, string(u))
	}
	for _, st := range append(append([]mesos.TaskStatus(nil), task.Statuses...), s.pending...) {
		s.received[string(st.UUID)] = true
	}
	if s.terminated {
		ex.completeTask(id)
		a.forgetTask(ex, id)
		return nil
	}
	if len(s.pending) > 0 || len(s.acked) > 0 {
		a.streams[key] = s
	}
	return nil
}

// processStartTime is field 22 of /proc/pid/stat, which tells a process
// from a later one that reuses its pid.
func processStartTime(pid int) (int64, error) {
	fields, ok := procStatFields(pid)
	if !ok {
		return 0, errors.New("no /proc/" + strconv.Itoa(pid) + "/stat")
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, errors.New("exited")
	}
	return strconv.ParseInt(fields[19], 10, 64)
}

// processAlive: pid still runs the process that started at start.
func processAlive(pid int, start int64) bool {
	got, err := processStartTime(pid)
	return err == nil && (start == 0 || got == start)
}
