// Package metrics serves /metrics/snapshot as Mesos does: one flat JSON
// object of metric name to value, every value a double, and the system/*
// metrics of the host.
package metrics

import (
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/mesos-stateful/stateful/localmesos/internal/mesosjson"
)

// Snapshot is a set of metrics.
type Snapshot map[string]float64

// Percent is used/total, or 0 with nothing in total, as Mesos computes
// the *_percent gauges.
func Percent(used, total float64) float64 {
	if total == 0 {
		return 0
	}
	return used / total
}

// Bool is 1 or 0.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Serve answers GET /metrics/snapshot with collect's metrics and the
// host's system/* ones. collect reports false when its owner is gone.
func Serve(w http.ResponseWriter, r *http.Request, collect func() (Snapshot, bool)) {
	mesosjson.ServeDocument(w, r, "Shutting down", func() (any, bool) {
		s, ok := collect()
		if !ok {
			return nil, false
		}
		addSystem(s)
		doc := make(map[string]any, len(s))
		for k, v := range s {
			doc[k] = v
		}
		return doc, true
	})
}

// addSystem adds system/cpus_total, system/load_*, system/mem_*_bytes,
// read from /proc as Mesos' system metrics are.
func addSystem(s Snapshot) {
	s["system/cpus_total"] = float64(runtime.NumCPU())
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		for i, name := range []string{"system/load_1min", "system/load_5min", "system/load_15min"} {
			if i < len(f) {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					s[name] = v
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "MemTotal:":
				s["system/mem_total_bytes"] = kb * 1024
			case "MemFree:":
				s["system/mem_free_bytes"] = kb * 1024
			}
		}
	}
}
