package main

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mesos-stateful/stateful"
)

// table aligns tab-separated rows into columns, without the trailing
// blanks tabwriter leaves where the last cells are empty.
type table struct {
	out io.Writer
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

func newTable(out io.Writer) *table {
	t := &table{out: out}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) row(format string, args ...any) { fmt.Fprintf(t.tw, format+"\n", args...) }

// flush writes the aligned rows.
func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var out bytes.Buffer
	for line := range strings.Lines(t.buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := t.out.Write(out.Bytes())
	return err
}

// writeList prints one line per instance.
func writeList(w io.Writer, list []*stateful.Instance) error {
	tw := newTable(w)
	tw.row("NAME\tTYPE\tMASTERS\tSLAVES\tSTATUS\tGENERATION")
	for _, inst := range list {
		tw.row("%s\t%s\t%d\t%d\t%s\t%d", inst.Name, inst.Type, inst.Masters, inst.Slaves, inst.Status, inst.Generation)
	}
	return tw.flush()
}

// writeInstance prints an instance for people: what it is, then a table
// of its tasks.
func writeInstance(w io.Writer, inst *stateful.Instance, now time.Time) error {
	tw := newTable(w)
	tw.row("Name:\t%s", inst.Name)
	tw.row("Type:\t%s", describeType(inst))
	tw.row("Status:\t%s", inst.Status)
	if inst.Message != "" {
		tw.row("Message:\t%s", oneLine(inst.Message))
	}
	tw.row("Generation:\t%d", inst.Generation)
	s := inst.Spec
	tw.row("Resources:\tcpu %s, mem %s MB, disk %s MB", num(s.CPU), num(s.Mem), num(s.Disk))
	if s.Image != "" {
		tw.row("Image:\t%s", s.Image)
	}
	if s.Command != "" {
		tw.row("Command:\t%s", oneLine(s.Command))
	}
	tw.row("Network:\t%s, ports: %s", orDash(string(s.Network)), orDash(strings.Join(s.Ports, ", ")))
	if s.Volume != "" {
		tw.row("Volume:\t%s", s.Volume)
	}
	if s.Health != nil {
		tw.row("Health:\t%s", describeHealth(s.Health))
	}
	if len(s.Env) > 0 {
		// Values may be secrets: names only here, values with -json.
		tw.row("Env:\t%s", strings.Join(slices.Sorted(maps.Keys(s.Env)), ", "))
	}
	if !inst.CreatedAt.IsZero() {
		tw.row("Created:\t%s (%s ago)", inst.CreatedAt.Local().Format(time.DateTime), age(now.Sub(inst.CreatedAt)))
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if len(inst.Tasks) == 0 {
		_, err := fmt.Fprintln(w, "\nno tasks")
		return err
	}
	fmt.Fprintln(w)
	if err := writeTasks(w, inst, now); err != nil {
		return err
	}
	return writeVolumes(w, inst)
}

// writeVolumes prints each task's reservation and persistent volume, if
// any task has one.
func writeVolumes(w io.Writer, inst *stateful.Instance) error {
	any := false
	for _, t := range inst.Tasks {
		any = any || t.Reservation != nil || t.HostVolume
	}
	if !any {
		return nil
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	tw.row("TASK	AGENT	HOST	PERSISTENCE-ID	SIZE	CONTAINER-PATH	STATE")
	for _, t := range inst.Tasks {
		r := t.Reservation
		switch {
		case r != nil:
			state := "reserved"
			switch {
			case r.Releasing:
				state = "releasing"
			case !r.Confirmed:
				state = "reserving"
			}
			tw.row("%s	%s	%s	%s	%s MB	%s	%s", t.Name, r.AgentID, orDash(r.Host), orDash(r.PersistenceID), num(r.DiskMB), orDash(r.ContainerPath), state)
		case t.HostVolume:
			tw.row("%s	%s	%s	-	-	-	host directory (created before reservations)", t.Name, orDash(t.StickyAgentID), orDash(t.StickyHost))
		default:
			tw.row("%s	-	-	-	-	-	none yet", t.Name)
		}
	}
	return tw.flush()
}

// writeTasks prints the task table.
func writeTasks(w io.Writer, inst *stateful.Instance, now time.Time) error {
	tw := newTable(w)
	tw.row("NAME\tROLE\tSTATE\tHEALTHY\tHOST\tPORTS\tTASK-ID\tSTATS\tNOTE")
	for _, t := range inst.Tasks {
		healthy := "-"
		if t.State != stateful.TaskQueued {
			healthy = yesNo(t.Healthy)
		}
		tw.row("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
			t.Name, t.Role, t.State, healthy, orDash(t.Host), orDash(portList(inst, t)),
			orDash(t.TaskID), orDash(shortStats(t.Stats, now)), note(t))
	}
	return tw.flush()
}

func describeType(inst *stateful.Instance) string {
	switch inst.Type {
	case stateful.TypeSingle:
		return "S (single: 1 master)"
	case stateful.TypeMasterSlave:
		return fmt.Sprintf("MS (%d master, %d %s)", inst.Masters, inst.Slaves, plural(inst.Slaves, "slave", "slaves"))
	case stateful.TypeCluster:
		return fmt.Sprintf("C (cluster of %d %s)", inst.Masters, plural(inst.Masters, "peer", "peers"))
	}
	return string(inst.Type)
}

func describeHealth(h *stateful.HealthCheck) string {
	what := "tcp port " + h.TCP
	if h.Command != "" {
		what = "command " + strconv.Quote(h.Command)
	}
	s := fmt.Sprintf("%s every %s (grace %s, timeout %s", what, duration(h.Interval()), duration(h.Grace()), duration(h.Timeout()))
	if n := h.ConsecutiveFailures; n != nil {
		if *n == 0 {
			s += ", failures never kill"
		} else {
			s += fmt.Sprintf(", killed after %d failures", *n)
		}
	}
	return s + ")"
}

// portList is "name=number" for each port the task was given, in the
// spec's order and then any others by name.
func portList(inst *stateful.Instance, t *stateful.Task) string {
	var parts []string
	seen := map[string]bool{}
	for _, name := range inst.Spec.Ports {
		if n, ok := t.Ports[name]; ok && !seen[name] {
			parts = append(parts, fmt.Sprintf("%s=%d", name, n))
			seen[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Ports)) {
		if !seen[name] {
			parts = append(parts, fmt.Sprintf("%s=%d", name, t.Ports[name]))
		}
	}
	return strings.Join(parts, ",")
}

// shortStats keeps the figures that tell replication apart, and how old
// they are (the executor reports every few seconds, so a role can lag a
// failover); -json has the rest.
func shortStats(stats map[string]string, now time.Time) string {
	var parts []string
	for _, k := range []string{stateful.StatRole, stateful.StatReplicationOffset} {
		if v, ok := stats[k]; ok {
			parts = append(parts, k+"="+oneLine(v))
		}
	}
	if at, err := time.Parse(time.RFC3339, stats[statsTime]); err == nil && len(parts) > 0 {
		parts = append(parts, "("+age(now.Sub(at))+" old)")
	}
	return strings.Join(parts, " ")
}

// Stats keys the scheduler adds to the workload's figures: why a report
// lacks them, and when the figures were taken.
const (
	statsError = "stats_error"
	statsTime  = "stats_time"
)

// note says why a task is not simply running: why a queued one is not
// placed, the last message of one that is not running and healthy, a
// stats error.
func note(t *stateful.Task) string {
	var parts []string
	switch {
	case t.State == stateful.TaskQueued && t.Unplaced != "":
		parts = append(parts, "not placed: "+t.Unplaced)
	case t.State == stateful.TaskQueued:
		parts = append(parts, "waiting for an offer")
	case (t.State != stateful.TaskRunning || !t.Healthy) && t.Message != "":
		parts = append(parts, t.Message)
	}
	if t.HealthMessage != "" && t.HealthMessage != t.Message {
		parts = append(parts, "health: "+t.HealthMessage)
	}
	if e := t.Stats[statsError]; e != "" {
		parts = append(parts, "stats: "+e)
	}
	return oneLine(strings.Join(parts, "; "))
}

// summary is a one-line account of an instance, for progress lines. The
// instance's message is left out: it retells the tasks' states, which the
// line shows as they are now.
func summary(inst *stateful.Instance) string {
	var b strings.Builder
	b.WriteString(string(inst.Status))
	for i, t := range inst.Tasks {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s %s %s", sep, t.Name, t.Role, strings.TrimPrefix(string(t.State), "TASK_"))
		if t.State == stateful.TaskRunning {
			b.WriteString(" " + map[bool]string{true: "healthy", false: "unhealthy"}[t.Healthy])
		}
		if t.Replace {
			b.WriteString(" (being replaced)")
		}
		if t.State == stateful.TaskQueued && t.Unplaced != "" {
			fmt.Fprintf(&b, " (not placed: %s)", oneLine(t.Unplaced))
		}
	}
	return b.String()
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// duration drops the zero units Duration.String keeps: 1m, not 1m0s.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table cell on its line: tabs and newlines become spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
