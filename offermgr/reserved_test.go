package offermgr

import (
	"reflect"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// reservedRes is a resource of the framework fw's reservation id, in the
// legacy format Mesos uses for a framework without RESERVATION_REFINEMENT.
func reservedRes(name string, v float64, id, part string) mesos.Resource {
	r := mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v}, Role: ptr("db")}
	r.Reservation = &mesos.Resource_ReservationInfo{Principal: ptr("db"), Labels: &mesos.Labels{Labels: []mesos.Label{
		{Key: LabelFramework, Value: ptr("fw")}, {Key: LabelInstance, Value: ptr("cache1")},
		{Key: LabelOrdinal, Value: ptr("0")}, {Key: LabelResourceID, Value: ptr(id)}, {Key: LabelPart, Value: ptr(part)},
	}}}
	return r
}

// withReservation adds reservation id (task part with a volume and port
// 31050, executor part unless noExecutor) to an offer.
func withReservation(o mesos.Offer, id string, noExecutor bool) mesos.Offer {
	disk := reservedRes("disk", 512, id, PartTask)
	disk.Disk = &mesos.Resource_DiskInfo{Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id}, Volume: &mesos.Volume{ContainerPath: "v", Mode: mesos.RW.Enum()}}
	ports := reservedRes("ports", 0, id, PartTask)
	ports.Type, ports.Scalar, ports.Ranges = mesos.RANGES.Enum(), nil, &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31050, End: 31050}}}
	o.Resources = append(o.Resources, reservedRes("cpus", 0.5, id, PartTask), reservedRes("mem", 256, id, PartTask), disk, ports)
	if !noExecutor {
		o.Resources = append(o.Resources, reservedRes("cpus", 0.1, id, PartExecutor), reservedRes("mem", 32, id, PartExecutor))
	}
	return o
}

func reservedState(known ...string) State {
	st := state()
	st.Framework = "fw"
	st.Known = map[string]bool{}
	for _, k := range known {
		st.Known[k] = true
	}
	return st
}

// TestPlaceOnReservation: a demand naming its reservation gets exactly the
// reservation's resources, volume and port, on the agent that holds it,
// and nothing of the unreserved pool.
func TestPlaceOnReservation(t *testing.T) {
	os := offers(bigAgent("a1"), bigAgent("a2"))
	os[1] = withReservation(os[1], "r1", false)
	d := task("cache1", 0)
	d.ReservationID, d.ReservationRequired, d.ExecutorReserved = "r1", true, true
	p := Place(DefaultPolicy(), os, []Demand{d}, reservedState("r1"))
	pl := placementOf(t, p, Key{"cache1", 0})
	if pl.AgentID.Value != "a2" || pl.Reserved == nil || pl.Reserved.ID != "r1" || pl.Release {
		t.Fatalf("placed %+v, want on a2 on reservation r1", pl)
	}
	if got, want := scalars(pl.Resources), map[string]float64{"cpus": 0.5, "mem": 256, "disk": 512}; !reflect.DeepEqual(got, want) {
		t.Errorf("task resources %v, want %v", got, want)
	}
	if got, want := scalars(pl.ExecutorResources), map[string]float64{"cpus": 0.1, "mem": 32}; !reflect.DeepEqual(got, want) {
		t.Errorf("executor resources %v, want %v", got, want)
	}
	if pl.Ports["redis"] != 31050 || pl.Reserved.Volume() == nil {
		t.Errorf("ports %v volume %v, want the reserved port 31050 and the volume", pl.Ports, pl.Reserved.Volume())
	}
	for _, r := range pl.Resources {
		if r.Reservation == nil {
			t.Errorf("an unreserved %s was taken: %v", r.Name, r)
		}
	}
}

// TestPlaceWaitsForReservation: a required reservation not offered, or
// offered without its executor part, is waited for, and says so; an
// unconfirmed one past its deadline is placed like a first launch.
func TestPlaceWaitsForReservation(t *testing.T) {
	d := task("cache1", 0)
	d.ReservationID, d.ReservationRequired, d.ExecutorReserved, d.PrevAgent = "r1", true, true, "a9"
	p := Place(DefaultPolicy(), offers(bigAgent("a1")), []Demand{d}, reservedState("r1"))
	if len(p.Launches) != 0 || len(p.Unplaced) != 1 || !strings.Contains(p.Unplaced[0].Metric.Summary, "reservation r1 on agent a9") {
		t.Errorf("not offered: plan %+v, want it waiting for r1", p)
	}
	os := offers(bigAgent("a1"))
	os[0] = withReservation(os[0], "r1", true)
	p = Place(DefaultPolicy(), os, []Demand{d}, reservedState("r1"))
	if len(p.Launches) != 0 || len(p.Unplaced) != 1 || !strings.Contains(p.Unplaced[0].Metric.Summary, "part is still in use") {
		t.Errorf("executor part missing: plan %+v, want it waiting", p)
	}
	d.ReservationRequired, d.StickyUntil = false, t0
	p = Place(DefaultPolicy(), offers(bigAgent("a1")), []Demand{d}, reservedState("r1"))
	if pl := placementOf(t, p, Key{"cache1", 0}); pl.Reserved != nil || pl.AgentID.Value != "a1" {
		t.Errorf("unconfirmed past its deadline: %+v, want a first launch on a1", pl)
	}
}

// TestPlaceReleases: a release demand takes its whole reservation; a
// reservation of the framework nobody knows is released as an orphan; one
// of another framework is left alone.
func TestPlaceReleases(t *testing.T) {
	os := offers(bigAgent("a1"), bigAgent("a2"))
	os[0] = withReservation(os[0], "r1", false)
	os[1] = withReservation(os[1], "r2", false)
	rel := Demand{Key: Key{"cache1", 0}, ReservationID: "r1", Release: true, ExecutorReserved: true, QueuedSince: t0}
	p := Place(DefaultPolicy(), os, []Demand{rel}, reservedState("r1"))
	got := map[string]Placement{}
	for _, l := range p.Launches {
		for _, pl := range l.Placements {
			got[pl.Reserved.ID] = pl
		}
	}
	if pl := got["r1"]; !pl.Release || pl.Orphan || len(pl.Reserved.All()) != 6 {
		t.Errorf("release of r1: %+v, want all 6 resources released", pl)
	}
	if pl := got["r2"]; !pl.Release || !pl.Orphan {
		t.Errorf("r2 (known to nobody): %+v, want released as an orphan", pl)
	}
	st := reservedState("r1")
	st.Framework = "other"
	if p := Place(DefaultPolicy(), os, nil, st); len(p.Launches) != 0 {
		t.Errorf("another framework's reservations were touched: %+v", p.Launches)
	}
}
