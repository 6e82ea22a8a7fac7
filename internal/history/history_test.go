package history

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func op(client int, value, server string, from, to int, accepted, acked bool) Op {
	return Op{Client: client, Value: value, Server: server, Invoke: at(from), Complete: at(to), Accepted: accepted, Acked: acked}
}

// TestCleanFailover: the old master stops, a gap, the new master takes
// over; nothing acknowledged is lost; no overlap; the gap is measured.
func TestCleanFailover(t *testing.T) {
	ops := []Op{
		op(1, "a", "m1", 0, 10, true, true),
		op(2, "b", "m1", 5, 20, true, true),
		op(1, "c", "m1", 30, 530, true, false), // accepted, WAIT timed out
		op(2, "d", "m1", 40, 540, false, false),
		op(1, "e", "m2", 3000, 3010, true, true),
		op(2, "f", "m2", 3005, 3020, true, true),
	}
	r := Check(ops, map[string]bool{"a": true, "b": true, "e": true, "f": true})
	if len(r.Lost) != 0 || len(r.SplitBrain) != 0 {
		t.Errorf("lost %v, split brain %v; want none", r.Lost, r.SplitBrain)
	}
	if r.Writes != 6 || r.Accepted != 5 || r.Acked != 4 {
		t.Errorf("writes/accepted/acked = %d/%d/%d, want 6/5/4", r.Writes, r.Accepted, r.Acked)
	}
	if r.LongestGap != 2990*time.Millisecond || !r.LongestGapStart.Equal(at(20)) {
		t.Errorf("longest gap %v from %v, want 2.99s from +20ms", r.LongestGap, r.LongestGapStart)
	}
}

// TestLostAndSplitBrain: an acknowledged write missing from the final read
// is lost; two servers answering OK in interleaved spans are a split brain.
func TestLostAndSplitBrain(t *testing.T) {
	ops := []Op{
		op(1, "a", "m1", 0, 10, true, true),
		op(2, "b", "m2", 100, 110, true, true),
		op(1, "c", "m1", 120, 130, true, true), // m1 still accepting after m2 started
		op(2, "d", "m2", 140, 150, true, true),
	}
	r := Check(ops, map[string]bool{"a": true, "b": true, "d": true})
	if len(r.Lost) != 1 || r.Lost[0] != "c" {
		t.Errorf("lost %v, want [c]", r.Lost)
	}
	if len(r.SplitBrain) == 0 {
		t.Fatal("no split brain found in interleaved acceptance by m1 and m2")
	}
	for _, p := range r.SplitBrain {
		if p[0].Server == p[1].Server {
			t.Errorf("split brain between a server and itself: %v", p)
		}
	}
}

// TestNoAckNoLoss: writes never acknowledged are not lost even when
// missing, and a history without acknowledged writes is unavailable
// throughout.
func TestNoAckNoLoss(t *testing.T) {
	ops := []Op{op(1, "a", "m1", 0, 500, true, false), op(1, "b", "m1", 600, 1100, false, false)}
	r := Check(ops, map[string]bool{})
	if len(r.Lost) != 0 {
		t.Errorf("lost %v, want none", r.Lost)
	}
	if r.LongestGap != 1100*time.Millisecond {
		t.Errorf("longest gap %v, want the whole 1.1s", r.LongestGap)
	}
}
