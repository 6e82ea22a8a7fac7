package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/executor/protocol"
)

// TestVolumeInitOncePerVolume: the hook runs before the process starts (the
// process sees what it wrote), once per volume: a relaunch on the same
// volume skips it. A failing hook fails the task with its error, and the
// next attempt calls it again.
func TestVolumeInitOncePerVolume(t *testing.T) {
	vol := filepath.Join(t.TempDir(), "vol")
	var calls atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	hook := func(_ context.Context, task TaskHandle, dir string) error {
		calls.Add(1)
		if fail.Load() {
			return errors.New("the master is not there")
		}
		if task.Data.Master == nil || task.Data.Master.Host != "127.0.0.9" {
			return errors.New("no master given")
		}
		return os.WriteFile(filepath.Join(dir, "seeded"), []byte("from "+task.Data.Master.Name), 0o640)
	}
	d := protocol.TaskData{
		Instance: "cache1", Role: protocol.RoleSlave,
		// The process proves it started after the hook: it fails without
		// the seeded file.
		Command: "test -f seeded && exec sleep 60",
		Volume:  &protocol.Volume{HostPath: vol},
		Master:  &protocol.Peer{Name: "cache1-0", Host: "127.0.0.9", Ports: map[string]uint32{"redis": 6379}},
	}

	mt := runMonWith(t, d, taskHooks{initVolume: hook}, 0)
	failed := mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_FAILED)
	if !strings.Contains(failed.GetMessage(), "the master is not there") {
		t.Errorf("failed with %q, want the hook's error", failed.GetMessage())
	}
	if _, err := os.Stat(filepath.Join(vol, volumeMarker)); err == nil {
		t.Error("a volume whose initialisation failed is marked initialised")
	}

	fail.Store(false)
	mt = runMonWith(t, d, taskHooks{initVolume: hook}, 0)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)
	if n := calls.Load(); n != 2 {
		t.Fatalf("hook called %d times, want 2", n)
	}

	mt.mon.Kill(0)
	<-mt.mon.Done()
	mt = runMonWith(t, d, taskHooks{initVolume: hook}, 0)
	mt.rec.waitUpdate(t, 20*time.Second, mesos.TASK_RUNNING)
	if n := calls.Load(); n != 2 {
		t.Errorf("hook called again on an initialised volume (%d calls)", n)
	}
}
