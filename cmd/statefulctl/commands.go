package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
)

// maxSpecBytes bounds a spec read from a file; the API refuses bodies over
// 1 MiB anyway, and a wrong path (a disk image) should not be read whole.
const maxSpecBytes = 1 << 20

func setupList(*flag.FlagSet) action {
	return func(ctx context.Context, a *app, _ *flag.FlagSet, _ []string) error {
		rctx, cancel := a.request(ctx)
		defer cancel()
		list, err := a.api.List(rctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(a.stderr, "no instances")
			return nil
		}
		return writeList(a.stdout, list)
	}
}

func setupGet(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print the API's document as it is")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		if *asJSON {
			raw, err := a.api.GetJSON(rctx, name)
			if err != nil {
				return err
			}
			var out bytes.Buffer
			if err := json.Indent(&out, raw, "", "  "); err != nil {
				return fmt.Errorf("the API's answer: %w", err)
			}
			out.WriteByte('\n')
			_, err = a.stdout.Write(out.Bytes())
			return err
		}
		inst, err := a.api.Get(rctx, name)
		if err != nil {
			return err
		}
		return writeInstance(a.stdout, inst, time.Now())
	}
}

// countFlag is an int flag that knows whether it was given, so that a
// count left out is left out of the request too (the API's default).
type countFlag struct {
	n   int
	set bool
}

func (c *countFlag) String() string {
	if c == nil || !c.set {
		return ""
	}
	return strconv.Itoa(c.n)
}

func (c *countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 0 {
		return errors.New("must not be negative")
	}
	c.n, c.set = n, true
	return nil
}

func (c *countFlag) ptr() *int {
	if !c.set {
		return nil
	}
	n := c.n
	return &n
}

// specFlags are -spec and -spec-file.
type specFlags struct {
	inline, file string
}

func (s *specFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&s.inline, "spec", "", `spec fields as a JSON object, e.g. '{"mem": 512}'`)
	fs.StringVar(&s.file, "spec-file", "", "read the spec's JSON object from `FILE` (- for stdin)")
}

// read returns the spec's JSON, nil if neither flag was given. Text that
// is not one JSON object is a usage error; what the object says is the
// API's to judge.
func (s *specFlags) read(fs *flag.FlagSet, stdin io.Reader) (json.RawMessage, error) {
	var raw []byte
	var from string
	switch {
	case s.inline != "" && s.file != "":
		return nil, usageError(fs, "give -spec or -spec-file, not both")
	case s.inline != "":
		raw, from = []byte(s.inline), "-spec"
	case s.file != "":
		var r io.Reader = stdin
		if s.file != "-" {
			f, err := os.Open(s.file)
			if err != nil {
				return nil, usageError(fs, "-spec-file: %v", err)
			}
			defer f.Close()
			r = f
		}
		var err error
		raw, err = io.ReadAll(io.LimitReader(r, maxSpecBytes+1))
		if err != nil {
			return nil, usageError(fs, "-spec-file %s: %v", s.file, err)
		}
		if len(raw) > maxSpecBytes {
			return nil, usageError(fs, "-spec-file %s: larger than %d bytes", s.file, maxSpecBytes)
		}
		from = "-spec-file " + s.file
	default:
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, usageError(fs, "%s: not a JSON object: %v", from, err)
	}
	return json.RawMessage(raw), nil
}

func setupCreate(fs *flag.FlagSet) action {
	typ := fs.String("type", "", "instance type: S (one master), MS (master and slaves) or C (cluster of peers)")
	var masters, slaves countFlag
	fs.Var(&masters, "masters", "`N` masters (peers for C); S and MS have 1")
	fs.Var(&slaves, "slaves", "`N` slaves (MS)")
	var spec specFlags
	spec.define(fs)
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		t := stateful.InstanceType(*typ)
		switch {
		case *typ == "":
			return usageError(fs, "-type is required (S, MS or C)")
		case !t.Valid():
			return usageError(fs, "-type %q: want S, MS or C", *typ)
		}
		rawSpec, err := spec.read(fs, a.stdin)
		if err != nil {
			return err
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		inst, err := a.api.Create(rctx, client.CreateRequest{
			Name: name, Type: string(t), Masters: masters.ptr(), Slaves: slaves.ptr(), Spec: rawSpec,
		})
		if err != nil {
			return err
		}
		return writeInstance(a.stdout, inst, time.Now())
	}
}

func setupScale(fs *flag.FlagSet) action {
	var slaves countFlag
	fs.Var(&slaves, "slaves", "the new number `N` of slaves")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		if !slaves.set {
			return usageError(fs, "-slaves is required")
		}
		return a.patch(ctx, name, client.PatchRequest{Slaves: slaves.ptr()})
	}
}

func setupUpdate(fs *flag.FlagSet) action {
	var spec specFlags
	spec.define(fs)
	var slaves countFlag
	fs.Var(&slaves, "slaves", "also the new number `N` of slaves")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		rawSpec, err := spec.read(fs, a.stdin)
		if err != nil {
			return err
		}
		if rawSpec == nil && !slaves.set {
			return usageError(fs, "nothing to change: give -spec, -spec-file or -slaves")
		}
		return a.patch(ctx, name, client.PatchRequest{Slaves: slaves.ptr(), Spec: rawSpec})
	}
}

func (a *app) patch(ctx context.Context, name string, req client.PatchRequest) error {
	rctx, cancel := a.request(ctx)
	defer cancel()
	inst, err := a.api.Update(rctx, name, req)
	if err != nil {
		return err
	}
	return writeInstance(a.stdout, inst, time.Now())
}

func setupDelete(fs *flag.FlagSet) action {
	w := defineWaitFlags(fs, "the instance is gone (every task ended)")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		if err := w.check(fs); err != nil {
			return err
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		inst, err := a.api.Delete(rctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s %s\n", inst.Name, inst.Status)
		if !*w.wait {
			return nil
		}
		return a.waitGone(ctx, name, *w.timeout, *w.interval)
	}
}

func setupReplace(fs *flag.FlagSet) action {
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		ordinal, err := taskOrdinal(name, args[1])
		if err != nil {
			return usageError(fs, "%v", err)
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		inst, err := a.api.Replace(rctx, name, ordinal)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s replacing %s\n", inst.Name, stateful.TaskName(name, ordinal))
		return nil
	}
}

func setupUninstall(fs *flag.FlagSet) action {
	yes := fs.Bool("yes", false, "confirm: every instance and all its data is deleted")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		if !*yes {
			return usageError(fs, "uninstall deletes every instance and its data; give -yes to confirm")
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		st, err := a.api.Uninstall(rctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, st.Message)
		return nil
	}
}

func setupWait(fs *flag.FlagSet) action {
	status := fs.String("status", string(stateful.StatusRunning), "the status to wait for: CREATING, RUNNING, UPDATING, SCALING, DEGRADED or DELETING")
	w := defineWaitFlags(fs, "")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		want := stateful.InstanceStatus(strings.ToUpper(*status))
		if !want.Valid() {
			return usageError(fs, "-status %q: want CREATING, RUNNING, UPDATING, SCALING, DEGRADED or DELETING", *status)
		}
		if err := w.check(fs); err != nil {
			return err
		}
		return a.waitStatus(ctx, name, want, *w.timeout, *w.interval)
	}
}

// waitFlags are the -timeout and -interval of a command that waits, and
// its -wait when waiting is optional.
type waitFlags struct {
	wait              *bool // nil: the command always waits
	timeout, interval *time.Duration
}

// defineWaitFlags defines them on fs; until says what -wait waits for,
// "" for a command that always waits (and has no -wait).
func defineWaitFlags(fs *flag.FlagSet, until string) *waitFlags {
	w := &waitFlags{}
	prefix := ""
	if until != "" {
		w.wait = fs.Bool("wait", false, "wait until "+until)
		prefix = "with -wait: "
	}
	w.timeout = fs.Duration("timeout", defaultWaitTimeout, prefix+"how long to wait")
	w.interval = fs.Duration("interval", defaultInterval, prefix+"time between polls")
	return w
}

func (w *waitFlags) check(fs *flag.FlagSet) error {
	if *w.timeout <= 0 {
		return usageError(fs, "-timeout must be positive, not %v", *w.timeout)
	}
	if *w.interval <= 0 {
		return usageError(fs, "-interval must be positive, not %v", *w.interval)
	}
	return nil
}

// taskIDUsage explains -task-id of master and addr.
const taskIDUsage = "print the task's Mesos task ID instead (containers carry it in the label io.stateful.task-id)"

func setupMaster(fs *flag.FlagSet) action {
	taskID := fs.Bool("task-id", false, taskIDUsage)
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		inst, err := a.get(ctx, name)
		if err != nil {
			return err
		}
		task, err := masterTask(inst)
		if err != nil {
			return err
		}
		return a.printTask(inst, task, *taskID, args[1:])
	}
}

// setupEnv prints the instance's env: where workloads keep what clients
// need, such as the Redis example's REDIS_PASSWORD. Read-only tokens get
// the values redacted, which is said rather than printed.
func setupEnv(fs *flag.FlagSet) action {
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		inst, err := a.get(ctx, name)
		if err != nil {
			return err
		}
		keys := slices.Sorted(maps.Keys(inst.Spec.Env))
		if len(args) > 1 {
			if _, ok := inst.Spec.Env[args[1]]; !ok {
				return fmt.Errorf("instance %s has no env %s", name, args[1])
			}
			keys = []string{args[1]}
		}
		for _, k := range keys {
			if inst.Spec.Env[k] == stateful.Redacted {
				return fmt.Errorf("the API redacts instance %s's env for this token: an admin token is needed", name)
			}
		}
		for _, k := range keys {
			if len(args) > 1 {
				fmt.Fprintln(a.stdout, inst.Spec.Env[k])
			} else {
				fmt.Fprintf(a.stdout, "%s=%s\n", k, inst.Spec.Env[k])
			}
		}
		return nil
	}
}

func setupAddr(fs *flag.FlagSet) action {
	taskID := fs.Bool("task-id", false, taskIDUsage)
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		ordinal, err := taskOrdinal(name, args[1])
		if err != nil {
			return usageError(fs, "%v", err)
		}
		inst, err := a.get(ctx, name)
		if err != nil {
			return err
		}
		for _, t := range inst.Tasks {
			if t.Ordinal == ordinal {
				return a.printTask(inst, t, *taskID, args[2:])
			}
		}
		return fmt.Errorf("instance %s has no task %s", name, stateful.TaskName(name, ordinal))
	}
}

func (a *app) get(ctx context.Context, name string) (*stateful.Instance, error) {
	rctx, cancel := a.request(ctx)
	defer cancel()
	return a.api.Get(rctx, name)
}

// masterTask returns the running task holding the master role.
func masterTask(inst *stateful.Instance) (*stateful.Task, error) {
	if inst.Type == stateful.TypeCluster {
		return nil, fmt.Errorf("instance %s is a cluster of peers (type C) and has no master; use addr", inst.Name)
	}
	var found *stateful.Task
	for _, t := range inst.Tasks {
		if t.Role != stateful.RoleMaster {
			continue
		}
		// Should two tasks say master for a moment (a failover being
		// recorded), the instance's own record decides.
		if found == nil || t.Ordinal == inst.MasterOrdinal {
			found = t
		}
	}
	if found == nil {
		return nil, fmt.Errorf("instance %s (%s) has no master task now", inst.Name, inst.Status)
	}
	return found, nil
}

// taskOrdinal reads an ordinal ("2") or a task name ("cache1-2").
func taskOrdinal(instance, s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > stateful.MaxOrdinal {
			return 0, fmt.Errorf("ordinal %d out of range [0, %d]", n, stateful.MaxOrdinal)
		}
		return n, nil
	}
	inst, n, err := stateful.ParseTaskName(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither an ordinal nor a task name", s)
	}
	if inst != instance {
		return 0, fmt.Errorf("task %s is not one of instance %s", s, instance)
	}
	return n, nil
}

// printTask prints "HOST PORT" of a running task: the port named by
// portArg, else the spec's first. A task that is not running has no
// address worth connecting to, so that is an error. With taskID it prints
// the current attempt's task ID instead, whatever its state.
func (a *app) printTask(inst *stateful.Instance, t *stateful.Task, taskID bool, portArg []string) error {
	if taskID {
		if t.TaskID == "" {
			return fmt.Errorf("task %s (%s) has not been launched yet", t.Name, t.Role)
		}
		fmt.Fprintln(a.stdout, t.TaskID)
		return nil
	}
	if t.State != stateful.TaskRunning || t.Host == "" {
		return fmt.Errorf("task %s (%s) is %s, not running", t.Name, t.Role, t.State)
	}
	port := ""
	switch {
	case len(portArg) > 0:
		port = portArg[0]
	case len(inst.Spec.Ports) > 0:
		port = inst.Spec.Ports[0]
	default:
		fmt.Fprintln(a.stdout, t.Host) // the workload needs no port
		return nil
	}
	n, ok := t.Ports[port]
	if !ok {
		return fmt.Errorf("task %s has no port named %q (it has: %s)", t.Name, port, portList(inst, t))
	}
	fmt.Fprintf(a.stdout, "%s %d\n", t.Host, n)
	return nil
}

func setupHealth(*flag.FlagSet) action {
	return func(ctx context.Context, a *app, _ *flag.FlagSet, _ []string) error {
		rctx, cancel := a.request(ctx)
		defer cancel()
		h, err := a.api.Health(rctx)
		if err != nil {
			return err
		}
		if h.OK() {
			fmt.Fprintln(a.stdout, "ok")
			return nil
		}
		fmt.Fprintln(a.stdout, h.Status)
		for _, p := range h.Problems {
			fmt.Fprintf(a.stdout, "  %s: %s\n", p.Component, p.Message)
		}
		return errors.New("the scheduler is not healthy")
	}
}

// instanceName checks a NAME argument here, so that a typo is a usage
// error rather than a puzzling 404.
func instanceName(fs *flag.FlagSet, s string) (string, error) {
	if err := stateful.ValidateName(s); err != nil {
		return "", usageError(fs, "instance name %v", err)
	}
	return s, nil
}

func setupSwitchover(fs *flag.FlagSet) action {
	to := fs.Int("to", -1, "the ordinal of the slave to promote (default: the one that has replicated the most)")
	w := defineWaitFlags(fs, "the switchover is done and the instance RUNNING")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		if err := w.check(fs); err != nil {
			return err
		}
		var target *int
		if *to >= 0 {
			target = to
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		inst, err := a.api.Switchover(rctx, name, target)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s %s: switchover requested\n", inst.Name, inst.Status)
		if !*w.wait {
			return nil
		}
		return a.poll(ctx, name, "to have switched over", *w.timeout, *w.interval, func(inst *stateful.Instance, err error) (bool, error) {
			if err != nil {
				return false, err
			}
			return inst.Switchover == nil && reached(inst, stateful.StatusRunning), nil
		})
	}
}

func setupRollout(fs *flag.FlagSet) action {
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name, err := instanceName(fs, args[0])
		if err != nil {
			return err
		}
		rctx, cancel := a.request(ctx)
		defer cancel()
		var inst *stateful.Instance
		switch args[1] {
		case "pause", "resume":
			inst, err = a.api.PauseRollout(rctx, name, args[1] == "pause")
		case "abort":
			inst, err = a.api.AbortRollout(rctx, name)
		default:
			return usageError(fs, "want pause, resume or abort, got %q", args[1])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s %s (rollout paused: %t)\n", inst.Name, inst.Status, inst.RolloutPaused)
		return nil
	}
}
