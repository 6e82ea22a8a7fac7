package offermgr

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Key names one task by its stable identity: the instance and the ordinal.
// Mesos task IDs change per attempt; a Key does not, so placement
// explanations and stickiness survive relaunches.
type Key struct {
	Instance string
	Ordinal  int
}

// String returns the stable task name <instance>-<ordinal>.
func (k Key) String() string { return k.Instance + "-" + strconv.Itoa(k.Ordinal) }

// Demand is what one queued task needs from an offer. The scheduler builds
// it from the instance spec and the task's history.
type Demand struct {
	Key Key
	// Role is master, slave or peer; it only labels decisions in logs.
	Role string
	// CPU is in cores, Mem and Disk in MB, as Mesos counts them.
	CPU, Mem, Disk float64
	// Ports are the names of the ports the task needs; each gets a distinct
	// number from the offer's "ports" ranges.
	Ports []string
	// Executor is the custom executor that runs the task. Its resources are
	// charged only when the agent does not already run it.
	Executor ExecutorDemand
	// PrevAgent is the agent that ran the previous attempt of this ordinal
	// and holds its volume; empty for a first launch.
	PrevAgent string
	// StickyUntil is when the task stops waiting for PrevAgent: before it
	// only PrevAgent fits, after it any agent does (PrevAgent is still
	// preferred).
	StickyUntil time.Time
	// QueuedSince is when the task was queued; the co-location wait counts
	// from it.
	QueuedSince time.Time
	// ReservationID names the ordinal's reservation (its
	// stateful.resource_id label): the demand is then placed only on the
	// offer carrying it, with exactly its resources and volume. Unless
	// ReservationRequired, a demand whose reservation is not offered by
	// StickyUntil is placed like a first launch (the reservation was
	// never confirmed to exist).
	ReservationID       string
	ReservationRequired bool
	// ExecutorReserved: the reservation has an executor part, which an
	// offer may lack for a while (until the last executor's container is
	// gone); the demand waits for both parts.
	ExecutorReserved bool
	// Release asks for the reservation's DESTROY and UNRESERVE instead of
	// a launch.
	Release bool
}

// ExecutorDemand is the executor a task runs under. An empty ID means a
// command task run by Mesos' built-in executor, which costs nothing extra.
type ExecutorDemand struct {
	ID       string
	CPU, Mem float64
}

// Validate reports the first problem that makes the demand unplaceable.
func (d *Demand) Validate() error {
	if d.Key.Instance == "" {
		return errors.New("key: instance name is empty")
	}
	if d.Key.Ordinal < 0 {
		return fmt.Errorf("key: ordinal %d is negative", d.Key.Ordinal)
	}
	if d.Release {
		if d.ReservationID == "" {
			return errors.New("release: no reservation ID")
		}
		return nil
	}
	if d.QueuedSince.IsZero() {
		// The co-location wait counts from it; a zero time would allow
		// co-location at once.
		return errors.New("queued since: not set")
	}
	if err := checkQuantity("cpu", d.CPU, true); err != nil {
		return err
	}
	if err := checkQuantity("mem", d.Mem, true); err != nil {
		return err
	}
	if err := checkQuantity("disk", d.Disk, false); err != nil {
		return err
	}
	seen := make(map[string]bool, len(d.Ports))
	for _, p := range d.Ports {
		if p == "" {
			return errors.New("ports: empty port name")
		}
		if seen[p] {
			return fmt.Errorf("ports: %q is listed twice", p)
		}
		seen[p] = true
	}
	if err := checkQuantity("executor cpu", d.Executor.CPU, false); err != nil {
		return err
	}
	if err := checkQuantity("executor mem", d.Executor.Mem, false); err != nil {
		return err
	}
	if d.Executor.ID == "" && (d.Executor.CPU > 0 || d.Executor.Mem > 0) {
		return errors.New("executor: resources given without an executor ID")
	}
	return nil
}

// maxQuantity bounds scalars so that they fit Mesos' fixed-point
// representation (thousandths in an int64) with room to add them up.
const maxQuantity = 1e12

func checkQuantity(name string, v float64, positive bool) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%s: %v is not a number", name, v)
	case v < 0:
		return fmt.Errorf("%s: %v is negative", name, v)
	case positive && toMilli(v) == 0:
		return fmt.Errorf("%s: must be at least 0.001", name)
	case v > maxQuantity:
		return fmt.Errorf("%s: %v is too large", name, v)
	}
	return nil
}

// milli is a scalar in thousandths: Mesos keeps scalars at three decimal
// places, and integer arithmetic keeps repeated subtraction exact.
type milli int64

func toMilli(v float64) milli { return milli(math.Round(v * 1000)) }

func (m milli) float() float64 { return float64(m) / 1000 }

// String formats like Mesos does: at most three decimals, no trailing zeros.
func (m milli) String() string { return strconv.FormatFloat(m.float(), 'f', -1, 64) }
