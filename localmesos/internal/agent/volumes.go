package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/wire"
)

// Reservations and persistent volumes on the agent: the agent owns the
// checkpoint of its dynamically reserved resources and volumes (Mesos'
// meta/resources), the volume directories under volumes/roles, and the
// sandbox symlinks through which a task sees its volumes, as Mesos'
// filesystem/posix isolator makes them.

// resourcesCheckpoint is the agent's checkpoint of its reservations and
// volumes. It does not depend on the agent ID: an agent that registers
// under a new ID keeps them, as a Mesos agent does.
func (a *Agent) resourcesCheckpoint() string {
	return filepath.Join(a.cfg.WorkDir, "meta", "resources", "resources.json")
}

// checkpointFile is the checkpoint's content.
type checkpointFile struct {
	Resources []mesos.Resource `json:"resources"`
}

// loadCheckpointedResources reads the checkpoint; a missing file means
// none (a fresh work dir).
func (a *Agent) loadCheckpointedResources() ([]mesos.Resource, error) {
	b, err := os.ReadFile(a.resourcesCheckpoint())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpointed resources: %w", err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parsing checkpointed resources %s: %w", a.resourcesCheckpoint(), err)
	}
	return f.Resources, nil
}

// writeCheckpointedResources replaces the checkpoint atomically: a crash
// leaves either the old or the new file, never a torn one.
func (a *Agent) writeCheckpointedResources(rs []mesos.Resource) error {
	if rs == nil {
		rs = []mesos.Resource{}
	}
	b, err := json.Marshal(checkpointFile{Resources: rs})
	if err == nil {
		err = writeAtomic(a.resourcesCheckpoint(), b)
	}
	if err == nil {
		// The rename is durable only once the directory is synced; an
		// operation is reported finished only after that.
		err = syncDir(filepath.Dir(a.resourcesCheckpoint()))
	}
	if err != nil {
		return fmt.Errorf("checkpointing resources: %w", err)
	}
	return nil
}

// volumePath is Mesos' getPersistentVolumePath for a volume on the
// agent's root disk: work_dir/volumes/roles/<role>/<persistence id>, with
// the slashes of a hierarchical role written as spaces.
func (a *Agent) volumePath(r mesos.Resource) string {
	role := strings.ReplaceAll(r.GetRole(), "/", " ")
	return filepath.Join(a.cfg.WorkDir, "volumes", "roles", role, r.GetDisk().GetPersistence().GetID())
}

// volumeKey identifies a volume on this agent: a persistence ID is unique
// per role.
func volumeKey(r *mesos.Resource) string {
	return r.GetRole() + "\x00" + r.GetDisk().GetPersistence().GetID()
}

// syncVolumes is Slave::syncCheckpointedResources: directories of new
// volumes are created (an existing one is kept with its data), those of
// destroyed volumes are removed with everything in them.
func (a *Agent) syncVolumes(old, updated []mesos.Resource) error {
	keep := map[string]bool{}
	for i := range updated {
		if !updated[i].IsPersistentVolume() {
			continue
		}
		keep[volumeKey(&updated[i])] = true
		if err := os.MkdirAll(a.volumePath(updated[i]), 0o750); err != nil {
			return fmt.Errorf("creating persistent volume: %w", err)
		}
	}
	for i := range old {
		if !old[i].IsPersistentVolume() || keep[volumeKey(&old[i])] {
			continue
		}
		path := a.volumePath(old[i])
		glog.Infof("agent %s: deleting persistent volume %s", a.cfg.ID.Value, path)
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("deleting persistent volume: %w", err)
		}
	}
	return nil
}

// ApplyOperation applies a reservation or volume operation the master has
// applied already.
func (a *Agent) ApplyOperation(op wire.ApplyOperation) {
	op.Checkpointed = cloneResources(op.Checkpointed)
	if op.FrameworkID != nil {
		id := *op.FrameworkID
		op.FrameworkID = &id
	}
	if op.Operation.ID != nil {
		id := *op.Operation.ID
		op.Operation.ID = &id
	}
	a.post(func() { a.applyOperation(op) })
}

// applyOperation is Slave::applyOperation for the agent's default
// resources: volume directories first, then the checkpoint, then the
// answer (OPERATION_FINISHED) when the framework asked for feedback.
func (a *Agent) applyOperation(op wire.ApplyOperation) {
	if a.state == stateLost {
		return
	}
	state, message := mesos.OPERATION_FINISHED, ""
	err := a.syncVolumes(a.checkpointed, op.Checkpointed)
	if err == nil {
		err = a.writeCheckpointedResources(op.Checkpointed)
	}
	if err != nil {
		// A Mesos agent exits here and retries on its next start; this one
		// keeps running and reports the failure.
		glog.Errorf("agent %s: %s operation: %v", a.cfg.ID.Value, op.Operation.Type, err)
		state, message = mesos.OPERATION_FAILED, err.Error()
	} else {
		a.checkpointed = op.Checkpointed
		glog.V(1).Infof("agent %s: applied %s; %d reserved resource(s) and volume(s) checkpointed", a.cfg.ID.Value, op.Operation.Type, len(op.Checkpointed))
	}
	if op.Operation.ID == nil || op.FrameworkID == nil {
		return
	}
	id := a.cfg.ID
	st := mesos.OperationStatus{
		OperationID: op.Operation.ID,
		State:       state,
		UUID:        &mesos.UUID{Value: newUUID()},
		AgentID:     &id,
	}
	if message != "" {
		st.Message = &message
	}
	a.master.OperationStatus(a.cfg.ID, wire.OperationUpdate{FrameworkID: *op.FrameworkID, Status: st})
}

// recoverCheckpointedResources reads the checkpoint when the agent
// (re)starts and makes sure every volume's directory exists.
func (a *Agent) recoverCheckpointedResources() error {
	rs, err := a.loadCheckpointedResources()
	if err != nil {
		return err
	}
	if err := a.syncVolumes(nil, rs); err != nil {
		return err
	}
	a.checkpointed = rs
	if len(rs) > 0 {
		glog.Infof("agent %s: recovered %d reserved resource(s) and volume(s) from %s", a.cfg.ID.Value, len(rs), a.resourcesCheckpoint())
	}
	return nil
}

// volumeLink is a symlink from a sandbox to a persistent volume.
type volumeLink struct {
	link, target string
}

// volumeLinks are the links the filesystem/posix isolator makes for the
// persistent volumes among rs: <sandbox>/<container_path> → the volume.
// A container path with a slash (or an absolute one) is skipped, as Mesos
// skips it: the task then writes into its sandbox.
func (a *Agent) volumeLinks(rs []mesos.Resource) []volumeLink {
	var out []volumeLink
	for i := range rs {
		if !rs[i].IsPersistentVolume() {
			continue
		}
		cp := rs[i].GetDisk().GetVolume().GetContainerPath()
		if cp == "" || strings.Contains(cp, "/") {
			glog.Warningf("agent %s: not linking persistent volume %s: container path %q contains a slash", a.cfg.ID.Value, rs[i].GetDisk().GetPersistence().GetID(), cp)
			continue
		}
		out = append(out, volumeLink{link: cp, target: a.volumePath(rs[i])})
	}
	return out
}

// linkVolumes makes the links in a sandbox. A link that exists already
// (the executor's own volume, or a relaunch in the same sandbox) is kept.
func linkVolumes(sandbox string, links []volumeLink) error {
	for _, l := range links {
		path := filepath.Join(sandbox, l.link)
		if cur, err := os.Readlink(path); err == nil && cur == l.target {
			continue
		}
		if err := os.MkdirAll(l.target, 0o750); err != nil {
			return fmt.Errorf("persistent volume %s: %w", l.target, err)
		}
		if err := os.Symlink(l.target, path); err != nil {
			return fmt.Errorf("linking persistent volume %s at %s: %w", l.target, path, err)
		}
	}
	return nil
}

// containerResources are the resources a new container starts with: its
// executor's and its first tasks' (Mesos includes the tasks' resources at
// launch, MESOS-9925, so volumes are linked before the executor runs).
func containerResources(ex mesos.ExecutorInfo, tasks []mesos.TaskInfo) []mesos.Resource {
	rs := append([]mesos.Resource(nil), ex.Resources...)
	for i := range tasks {
		rs = append(rs, tasks[i].Resources...)
	}
	return rs
}

// linkTaskVolumes links the volumes of tasks joining a running container.
func (a *Agent) linkTaskVolumes(sandbox string, tasks []mesos.TaskInfo) error {
	links := a.volumeLinks(containerResources(mesos.ExecutorInfo{}, tasks))
	if len(links) == 0 {
		return nil
	}
	if err := os.MkdirAll(sandbox, 0o750); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	return linkVolumes(sandbox, links)
}
