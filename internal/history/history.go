// Package history checks what clients saw of a replicated store while
// faults were injected, Jepsen-style: every write puts a unique value, is
// recorded with the server that answered and when, and counts as
// acknowledged only once the store said it reached at least one replica
// (Redis: SET answered OK, then WAIT 1 answered at least 1). After the
// faults heal, everything is read back from the surviving master, and
// Check reports:
//
//   - acknowledged writes lost: acknowledged, yet absent from the final
//     read;
//   - split-brain windows: two servers accepting writes (answering OK,
//     acknowledged or not) in overlapping time spans, each span from the
//     server's first accepted write to its last: two masters at once;
//   - unavailability: the longest span without an acknowledged write.
//
// These are properties of a set of writes and of time intervals, which a
// few lines check exactly; a linearizability checker (porcupine) answers a
// different question, about reads, which Redis' asynchronous replication
// does not promise, so it would report violations the system never claimed
// to avoid.
package history

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Op is one write as a client saw it.
type Op struct {
	Client int
	// Value is unique across the history.
	Value string
	// Server is the address that answered (or failed to).
	Server string
	// Invoke and Complete bound the write (SET and WAIT together).
	Invoke, Complete time.Time
	// Accepted: the server answered OK to the write itself.
	Accepted bool
	// Acked: accepted and confirmed on at least one replica.
	Acked bool
	// Err is why it was not accepted or not acknowledged.
	Err string
}

// History collects ops from concurrent clients.
type History struct {
	mu  sync.Mutex
	ops []Op
}

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of what was recorded, in the order it was.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Window is a span in which a server accepted writes.
type Window struct {
	Server     string
	Start, End time.Time
}

func (w Window) String() string {
	return fmt.Sprintf("%s [%s, %s]", w.Server, w.Start.Format("15:04:05.000"), w.End.Format("15:04:05.000"))
}

// Report is what Check found.
type Report struct {
	Writes, Accepted, Acked int
	// Lost are acknowledged values missing from the final read.
	Lost []string
	// SplitBrain are pairs of windows of two servers that overlap.
	SplitBrain [][2]Window
	// LongestGap is the longest span between acknowledged writes (from
	// the first op of the history to the last), and when it began.
	LongestGap      time.Duration
	LongestGapStart time.Time
}

// Check compares ops with final, the set of values read back after the
// faults healed.
func Check(ops []Op, final map[string]bool) Report {
	var r Report
	r.Writes = len(ops)
	var acked []time.Time
	var accepted []Op
	first, last := time.Time{}, time.Time{}
	for _, op := range ops {
		if first.IsZero() || op.Invoke.Before(first) {
			first = op.Invoke
		}
		if op.Complete.After(last) {
			last = op.Complete
		}
		if op.Accepted {
			r.Accepted++
			accepted = append(accepted, op)
		}
		if op.Acked {
			r.Acked++
			acked = append(acked, op.Complete)
			if !final[op.Value] {
				r.Lost = append(r.Lost, op.Value)
			}
		}
	}
	sort.Strings(r.Lost)

	// Unavailability: gaps between acknowledged completions, from the
	// history's start to its end.
	sort.Slice(acked, func(i, j int) bool { return acked[i].Before(acked[j]) })
	prev := first
	for _, t := range append(acked, last) {
		if gap := t.Sub(prev); gap > r.LongestGap {
			r.LongestGap, r.LongestGapStart = gap, prev
		}
		if t.After(prev) {
			prev = t
		}
	}

	r.SplitBrain = overlaps(windows(accepted))
	return r
}

// windows is, per server, the span from its first accepted write's
// invocation to its last one's completion: the time in which it acted as a
// master. A relaunched Redis task listens on a new address, so one address
// is one master's term.
func windows(accepted []Op) []Window {
	by := map[string]*Window{}
	var order []string
	for _, op := range accepted {
		w := by[op.Server]
		if w == nil {
			w = &Window{Server: op.Server, Start: op.Invoke, End: op.Complete}
			by[op.Server] = w
			order = append(order, op.Server)
		}
		if op.Invoke.Before(w.Start) {
			w.Start = op.Invoke
		}
		if op.Complete.After(w.End) {
			w.End = op.Complete
		}
	}
	out := make([]Window, 0, len(order))
	for _, s := range order {
		out = append(out, *by[s])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// overlaps returns the pairs of windows of different servers that share
// time: both servers answered OK to writes then, which is what two masters
// at once produce.
func overlaps(ws []Window) [][2]Window {
	var out [][2]Window
	for i := range ws {
		for j := i + 1; j < len(ws); j++ {
			a, b := ws[i], ws[j]
			if a.Start.Before(b.End) && b.Start.Before(a.End) {
				out = append(out, [2]Window{a, b})
			}
		}
	}
	return out
}
