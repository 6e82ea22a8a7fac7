package localmesos

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

// storageTranscriptConfig is the cluster of the storage recordings: one
// agent with cpus:2;mem:2048;disk:4096;ports:[33100-33199], Mesos'
// allocation and retry intervals.
func storageTranscriptConfig(t *testing.T) Config {
	cfg := schedTranscriptConfig(t)
	cfg.Resources = "cpus:2;mem:2048;disk:4096;ports:[33100-33199]"
	return cfg
}

// compareSlaves compares GET /master/slaves by the fields about
// reservations and volumes (the rest, and the order of resources, differ
// by design or by run).
func compareSlaves(r *schedReplay, want, got string) {
	r.t.Helper()
	decode := func(s string) map[string]any {
		var v map[string]any
		if err := json.Unmarshal([]byte(r.mapIDs(s, false)), &v); err != nil {
			r.t.Fatalf("/master/slaves: %v in %s", err, s)
		}
		l := asList(v["slaves"])
		if len(l) != 1 {
			r.t.Fatalf("/master/slaves: %d agents in %s", len(l), s)
		}
		return l[0].(map[string]any)
	}
	w, g := decode(want), decode(got)
	for _, k := range []string{"reserved_resources", "unreserved_resources", "used_resources", "reserved_resources_full", "unreserved_resources_full", "used_resources_full"} {
		if !reflect.DeepEqual(canonical(w[k]), canonical(g[k])) {
			wb, _ := json.Marshal(w[k])
			gb, _ := json.Marshal(g[k])
			r.t.Errorf("/master/slaves %s:\n got %s\nwant %s", k, gb, wb)
		}
	}
}

// canonical sorts lists (by their JSON) so that order does not count.
func canonical(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = canonical(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canonical(e)
		}
		sort.Slice(out, func(i, j int) bool {
			bi, _ := json.Marshal(out[i])
			bj, _ := json.Marshal(out[j])
			return string(bi) < string(bj)
		})
		return out
	}
	return v
}

// TestSchedulerTranscriptReservationsVolumes replays
// reservations-volumes.jsonl: RESERVE + CREATE + LAUNCH in one ACCEPT with
// OPERATION_FINISHED for each id, the task writing into its volume, the
// re-offer of the reservations and the volume as created, a second task
// reading the data, /master/slaves, and DESTROY + UNRESERVE.
func TestSchedulerTranscriptReservationsVolumes(t *testing.T) {
	c := startCluster(t, storageTranscriptConfig(t))
	r := newSchedReplay(t, c, loadTranscript(t, "reservations-volumes"))
	r.bodies = map[string]func(*schedReplay, string, string){"/master/slaves": compareSlaves}
	r.run()
}

// TestSchedulerTranscriptStorageErrors replays storage-errors.jsonl: every
// invalid storage operation with and without an id, Mesos' exact texts,
// the ordered non-atomic pipeline and LAUNCH with an operation id.
func TestSchedulerTranscriptStorageErrors(t *testing.T) {
	c := startCluster(t, storageTranscriptConfig(t))
	r := newSchedReplay(t, c, loadTranscript(t, "storage-errors"))
	r.run()
}
