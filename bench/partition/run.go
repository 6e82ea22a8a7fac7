package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/examples/redis/redistest"
	"github.com/mesos-stateful/stateful/examples/redis/resp"
	"github.com/mesos-stateful/stateful/examples/redis/workload"
	"github.com/mesos-stateful/stateful/internal/history"
	"github.com/mesos-stateful/stateful/internal/testbed"
)

// Fault kinds, each aimed at the node named in its description.
var kinds = []string{
	"partition-master-host",      // the master's host cut from everyone, both ways
	"partition-master-host-half", // cut from Mesos, the scheduler and the slaves; clients still reach it
	"one-way-master-host",        // the master's host's packets dropped; what others send arrives
	"link-down-master-host",      // the master's host's interface down
	"pause-master-agent",         // SIGSTOP of the agent process on the master's host (Redis runs on)
	"kill-9-master-agent",        // kill -9 of that agent process, started again after the hold
	"kill-9-redis-master",        // kill -9 of the master's redis-server
	"partition-slave-host",       // a slave's host cut from everyone
	"kill-9-scheduler",           // kill -9 of the framework, started again after the hold
	"partition-scheduler",        // the framework's host cut from everyone
}

// options of one bench run.
type options struct {
	schedules int
	seed      int64
	ping      time.Duration // agent ping timeout
	maxPings  int
	maxLag    int // min-replicas-max-lag, seconds
	clients   int
	self      string // this binary, run again for the bed's processes
	work      string
	out       io.Writer
	logf      func(format string, args ...any)
}

func (o options) detection() time.Duration { return o.ping * time.Duration(o.maxPings) }

// outcome is one schedule's result.
type outcome struct {
	kind     string
	hold     time.Duration
	report   history.Report
	writable time.Duration // longest span without an acknowledged write, from the fault on
}

// bed is the cluster on its namespaces.
type bed struct {
	o      options
	tb     *testbed.Bed
	mesos  *testbed.Node
	agents []*testbed.Node
	sched  *testbed.Node
	client *testbed.Node

	agentProcs map[string]*testbed.Proc
	schedProc  *testbed.Proc
	api        *client.Client

	mu       sync.Mutex
	password string // the instance's, from GET
}

const instanceName = "part"

// run sets up the bed, then runs the schedules one after the other on the
// same instance, each with its own keys.
func run(ctx context.Context, o options) ([]outcome, error) {
	tb, err := testbed.Create()
	if err != nil {
		return nil, err
	}
	defer tb.Close()
	b := &bed{o: o, tb: tb, agentProcs: map[string]*testbed.Proc{}}
	if err := b.start(ctx); err != nil {
		return nil, err
	}
	var out []outcome
	for i := range o.schedules {
		oc, err := b.schedule(ctx, i)
		if err != nil {
			return out, fmt.Errorf("schedule %d (%s): %w", i+1, oc.kind, err)
		}
		o.logf("schedule %d: %s held %v: %d writes, %d acknowledged, %d lost, %d split-brain windows, writable after %v",
			i+1, oc.kind, oc.hold.Round(time.Millisecond), oc.report.Writes, oc.report.Acked, len(oc.report.Lost), len(oc.report.SplitBrain), oc.writable.Round(time.Millisecond))
		if n := len(oc.report.Lost); n > 0 {
			o.logf("schedule %d: lost %v (first of %d); split brain %v", i+1, oc.report.Lost[:min(n, 5)], n, oc.report.SplitBrain)
		}
		out = append(out, oc)
	}
	return out, nil
}

func (b *bed) log(name string) string { return filepath.Join(b.o.work, name+".log") }

func (b *bed) start(ctx context.Context) error {
	var err error
	add := func(name string) *testbed.Node {
		if err != nil {
			return nil
		}
		var n *testbed.Node
		n, err = b.tb.AddNode(name)
		return n
	}
	b.mesos = add("mesos")
	for i := 1; i <= 3; i++ {
		b.agents = append(b.agents, add("agent"+strconv.Itoa(i)))
	}
	b.sched = add("sched")
	b.client = add("client")
	if err != nil {
		return err
	}
	ping := []string{"--ping", b.o.ping.String(), "--max-pings", strconv.Itoa(b.o.maxPings)}
	if _, err := b.mesos.Start(b.log("mesos"), b.o.self, append([]string{roleArg, "mesos-master", "--ip", b.mesos.IP}, ping...)...); err != nil {
		return err
	}
	for _, a := range b.agents {
		if err := b.startAgent(a); err != nil {
			return err
		}
	}
	if err := b.startScheduler(); err != nil {
		return err
	}
	b.api, err = client.New("http://"+b.sched.IP+":5656", b.client.HTTPClient(5*time.Second))
	if err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := redistest.Poll(wait, "the framework healthy", func() (bool, string) {
		h, err := b.api.Health(wait)
		if err != nil {
			return false, err.Error()
		}
		return h.OK(), fmt.Sprint(h.Problems)
	}); err != nil {
		return err
	}
	// The command (with the fence's settings) is the scheduler's
	// -redis-command: requests may not set it.
	spec, _ := json.Marshal(map[string]any{
		"health": map[string]any{"tcp": workload.PortName, "interval_s": 1, "timeout_s": 1},
	})
	slaves := 2
	if _, err := b.api.Create(wait, client.CreateRequest{Name: instanceName, Type: "MS", Slaves: &slaves, Spec: spec}); err != nil {
		return err
	}
	_, err = b.settled(wait)
	return err
}

func (b *bed) startAgent(a *testbed.Node) error {
	p, err := a.Start(b.log(a.Name), b.o.self, roleArg, "mesos-agent", "--master", b.mesos.IP+":5050", "--ip", a.IP,
		"--work-dir", filepath.Join(b.o.work, a.Name), "--ping", b.o.ping.String(), "--max-pings", strconv.Itoa(b.o.maxPings))
	if err != nil {
		return err
	}
	b.agentProcs[a.Name] = p
	return nil
}

func (b *bed) startScheduler() error {
	p, err := b.sched.Start(b.log("sched"), b.o.self, roleArg, "framework", "--master", "http://"+b.mesos.IP+":5050",
		"--work-dir", filepath.Join(b.o.work, "sched"), "--http", b.sched.IP+":5656", "--max-lag", strconv.Itoa(b.o.maxLag))
	if err != nil {
		return err
	}
	b.schedProc = p
	return nil
}

// settled waits until every task runs healthy and the master has both
// slaves online, and returns the instance.
func (b *bed) settled(ctx context.Context) (*stateful.Instance, error) {
	var inst *stateful.Instance
	err := redistest.Poll(ctx, "the instance settled", func() (bool, string) {
		got, err := b.api.Get(ctx, instanceName)
		if err != nil {
			return false, err.Error()
		}
		inst = got
		if pw := got.Spec.Env[workload.PasswordEnv]; pw != "" {
			b.mu.Lock()
			b.password = pw
			b.mu.Unlock()
		}
		if !redistest.AllHealthy(got) {
			return false, redistest.Describe(got)
		}
		m := redistest.Master(got)
		if m == nil {
			return false, "no master"
		}
		reply, err := b.do(ctx, redistest.Addr(m), "INFO", "replication")
		if err != nil {
			return false, err.Error()
		}
		s, _ := reply.(string)
		inf := workload.ParseInfo(s)
		return inf.Role() == "master" && strings.Count(s, "state=online") >= 2, redistest.Describe(got) + " / " + strings.ReplaceAll(s, "\r\n", " ")
	})
	return inst, err
}

// do runs one command on addr from the client node.
func (b *bed) do(ctx context.Context, addr string, args ...string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := b.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Do(ctx, args...)
}

// dial connects from the client node to addr and authenticates with the
// instance's password.
func (b *bed) dial(ctx context.Context, addr string) (*resp.Conn, error) {
	c, err := b.client.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := resp.NewConn(c)
	b.mu.Lock()
	pw := b.password
	b.mu.Unlock()
	if pw != "" {
		if _, err := conn.Do(ctx, "AUTH", pw); err != nil {
			conn.Close()
			return nil, fmt.Errorf("AUTH on %s: %w", addr, err)
		}
	}
	return conn, nil
}

func (b *bed) nodeByIP(ip string) *testbed.Node {
	for _, n := range b.tb.Nodes() {
		if n.IP == ip {
			return n
		}
	}
	return nil
}

// schedule runs one seeded fault against the settled instance while the
// clients write, heals it, waits for the instance to settle, and checks
// the history.
func (b *bed) schedule(ctx context.Context, i int) (outcome, error) {
	// Every run of len(kinds) schedules has each kind once, in an order
	// drawn from the seed.
	perm := rand.New(rand.NewSource(b.o.seed + int64(i/len(kinds)))).Perm(len(kinds))
	kind := kinds[perm[i%len(kinds)]]
	rng := rand.New(rand.NewSource(b.o.seed + int64(i)))
	det := b.o.detection()
	// Half the detection time to twice it: some faults heal before the
	// agent is declared unreachable, most after.
	hold := det/2 + time.Duration(rng.Int63n(int64(det)*3/2))
	oc := outcome{kind: kind, hold: hold}
	sctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	inst, err := b.settled(sctx)
	if err != nil {
		return oc, err
	}
	master := redistest.Master(inst)
	var slave *stateful.Task
	for _, t := range inst.Tasks {
		if t.Role == stateful.RoleSlave && (slave == nil || rng.Intn(2) == 0) {
			slave = t
		}
	}
	masterHost, slaveHost := b.nodeByIP(master.Host), b.nodeByIP(slave.Host)
	if masterHost == nil || slaveHost == nil {
		return oc, fmt.Errorf("no node for %s or %s", master.Host, slave.Host)
	}

	w := newWriters(b, fmt.Sprintf("s%d", i), inst)
	w.start(sctx, b.o.clients)
	time.Sleep(time.Second) // a second of writes before the fault (not synchronisation: history)

	faultAt := time.Now()
	heal, err := b.inject(kind, masterHost, slaveHost, master)
	if err != nil {
		w.stop()
		return oc, err
	}
	select {
	case <-time.After(hold):
	case <-sctx.Done():
	}
	if err := heal(); err != nil {
		w.stop()
		return oc, err
	}
	if _, err := b.settled(sctx); err != nil {
		w.stop()
		return oc, err
	}
	time.Sleep(time.Second) // a second of writes on the settled instance
	ops := w.stop()

	final, err := b.readBack(sctx, fmt.Sprintf("s%d-", i))
	if err != nil {
		return oc, err
	}
	oc.report = history.Check(ops, final)
	oc.writable = writableAfter(ops, faultAt)
	return oc, nil
}

// inject starts a fault and returns what ends it.
func (b *bed) inject(kind string, masterHost, slaveHost *testbed.Node, master *stateful.Task) (heal func() error, err error) {
	healNet := func() error { return b.tb.Heal() }
	others := func(except ...*testbed.Node) []*testbed.Node {
		var out []*testbed.Node
		for _, n := range b.tb.Nodes() {
			if !slices.Contains(except, n) {
				out = append(out, n)
			}
		}
		return out
	}
	switch kind {
	case "partition-master-host":
		return healNet, b.tb.Isolate(masterHost)
	case "partition-master-host-half":
		return healNet, b.tb.Partition([]*testbed.Node{masterHost}, others(masterHost, b.client))
	case "one-way-master-host":
		return healNet, b.tb.Cut([]*testbed.Node{masterHost}, others(masterHost))
	case "link-down-master-host":
		return masterHost.LinkUp, masterHost.LinkDown()
	case "pause-master-agent":
		p := b.agentProcs[masterHost.Name]
		return p.Cont, p.Stop()
	case "kill-9-master-agent":
		return func() error { return b.startAgent(masterHost) }, b.agentProcs[masterHost.Name].Kill9()
	case "kill-9-redis-master":
		return func() error { return nil }, killRedis(masterHost, master.Ports[workload.PortName])
	case "partition-slave-host":
		return healNet, b.tb.Isolate(slaveHost)
	case "kill-9-scheduler":
		return b.startScheduler, b.schedProc.Kill9()
	case "partition-scheduler":
		return healNet, b.tb.Isolate(b.sched)
	}
	return nil, fmt.Errorf("unknown fault %q", kind)
}

// killRedis sends SIGKILL to the redis-server on node listening on port.
func killRedis(node *testbed.Node, port int) error {
	pids, err := nsPids(node)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		// redis-server rewrites its title as "redis-server <host>:<port>".
		args := strings.Split(string(cmdline), "\x00")
		title := strings.Join(args, " ")
		if strings.Contains(args[0], "redis-server") && (strings.Contains(title, ":"+strconv.Itoa(port)) || slices.Contains(args, strconv.Itoa(port))) {
			return syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return fmt.Errorf("no redis-server on port %d on %s", port, node.Name)
}

func nsPids(node *testbed.Node) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", node.NS).Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns pids %s: %w", node.NS, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// readBack reads every key with prefix from the settled instance's master.
func (b *bed) readBack(ctx context.Context, prefix string) (map[string]bool, error) {
	inst, err := b.settled(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := b.dial(ctx, redistest.Addr(redistest.Master(inst)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	final := map[string]bool{}
	cursor := "0"
	for {
		reply, err := conn.Do(ctx, "SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return nil, err
		}
		arr, ok := reply.([]any)
		if !ok || len(arr) != 2 {
			return nil, fmt.Errorf("SCAN: unexpected reply %v", reply)
		}
		cursor, _ = arr[0].(string)
		keys, _ := arr[1].([]any)
		for _, k := range keys {
			if s, ok := k.(string); ok {
				final[s] = true
			}
		}
		if cursor == "0" {
			return final, nil
		}
	}
}

// writableAfter is the longest span, from the fault on, in which no write
// was acknowledged: how long the instance had no writable master.
func writableAfter(ops []history.Op, from time.Time) time.Duration {
	var acked []time.Time
	for _, op := range ops {
		if op.Acked && op.Complete.After(from) {
			acked = append(acked, op.Complete)
		}
	}
	slices.SortFunc(acked, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	prev := from
	for _, t := range acked {
		longest = max(longest, t.Sub(prev))
		prev = t
	}
	return longest
}

// writers are the clients: each writes unique keys to the server it
// believes is the master (the API's answer, when it has one), moving to
// the next known server when a write is refused or times out.
type writers struct {
	b      *bed
	prefix string
	hist   history.History
	mu     sync.Mutex
	addrs  []string // master first
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newWriters(b *bed, prefix string, inst *stateful.Instance) *writers {
	w := &writers{b: b, prefix: prefix}
	w.setAddrs(inst)
	return w
}

func (w *writers) setAddrs(inst *stateful.Instance) {
	var addrs []string
	if m := redistest.Master(inst); m != nil {
		addrs = append(addrs, redistest.Addr(m))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range inst.Tasks {
		if a := redistest.Addr(t); t.Ports[workload.PortName] > 0 && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	// Servers seen before stay candidates: an old master may still answer.
	for _, a := range w.addrs {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	w.addrs = addrs
}

func (w *writers) target(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addrs[n%len(w.addrs)]
}

func (w *writers) start(ctx context.Context, clients int) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for ctx.Err() == nil {
			if inst, err := w.b.api.Get(ctx, instanceName); err == nil {
				w.setAddrs(inst)
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond): // refresh period
			}
		}
	}()
	for c := range clients {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.client(ctx, c)
		}()
	}
}

func (w *writers) stop() []history.Op {
	w.cancel()
	w.wg.Wait()
	return w.hist.Ops()
}

// client writes until ctx ends. A write is SET <key> 1 then WAIT 1 300 on
// the same connection; acknowledged when WAIT says a replica has it.
func (w *writers) client(ctx context.Context, id int) {
	var conn *resp.Conn
	var addr string
	// Each client starts on the master and, on a failure, moves to the
	// next candidate; the API's master is tried first again whenever the
	// connection had to be replaced.
	skip := 0
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for n := 0; ctx.Err() == nil; n++ {
		target := w.target(skip)
		if conn == nil || target != addr {
			if conn != nil {
				conn.Close()
				conn = nil
			}
			dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			c, err := w.b.dial(dctx, target)
			cancel()
			if err != nil {
				skip++
				continue
			}
			conn, addr = c, target
		}
		op := history.Op{Client: id, Value: fmt.Sprintf("%s-c%d-%d", w.prefix, id, n), Server: addr, Invoke: time.Now()}
		octx, cancel := context.WithTimeout(ctx, time.Second)
		reply, err := conn.Do(octx, "SET", op.Value, "1")
		if err == nil && reply == "OK" {
			op.Accepted = true
			reply, err = conn.Do(octx, "WAIT", "1", "300")
			if got, ok := reply.(int64); err == nil && ok && got >= 1 {
				op.Acked = true
			}
		}
		cancel()
		op.Complete = time.Now()
		if err != nil {
			op.Err = err.Error()
		}
		if ctx.Err() != nil && !op.Accepted {
			return // cut short by the end of the schedule, not by a fault
		}
		w.hist.Add(op)
		if !op.Acked {
			var rerr resp.Error
			if err != nil && !errors.As(err, &rerr) {
				conn.Close()
				conn = nil
			}
			skip++
			time.Sleep(20 * time.Millisecond) // pace retries against a refusing server
			continue
		}
		skip = 0
		// About 100 writes a second per client: enough to time a
		// failover to 10 ms, without flooding a shared machine.
		time.Sleep(10 * time.Millisecond)
	}
}

// summarize prints per fault kind, then the last line.
func summarize(out io.Writer, o options, ocs []outcome) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\truns\twrites\tacknowledged\tlost\tsplit-brain\twritable after (median)\t(max)\t")
	byKind := map[string][]outcome{}
	for _, oc := range ocs {
		byKind[oc.kind] = append(byKind[oc.kind], oc)
	}
	for _, k := range kinds {
		list := byKind[k]
		if len(list) == 0 {
			continue
		}
		var writes, acked, lost, split int
		var d []time.Duration
		for _, oc := range list {
			writes += oc.report.Writes
			acked += oc.report.Acked
			lost += len(oc.report.Lost)
			split += len(oc.report.SplitBrain)
			d = append(d, oc.writable)
		}
		med, hi := medianMax(d)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.1f s\t%.1f s\t\n", k, len(list), writes, acked, lost, split, med.Seconds(), hi.Seconds())
	}
	tw.Flush()
	var lost, split int
	var d []time.Duration
	for _, oc := range ocs {
		lost += len(oc.report.Lost)
		split += len(oc.report.SplitBrain)
		d = append(d, oc.writable)
	}
	med, hi := medianMax(d)
	fmt.Fprintf(out, "\ndetection time %v (agent ping timeout %v x %d); fence: min-replicas-to-write 1, min-replicas-max-lag %d s (a master that may still run is promoted over after %d s more)\n",
		o.detection(), o.ping, o.maxPings, o.maxLag, o.maxLag+2)
	fmt.Fprintf(out, "partition: %d schedules, %d acknowledged writes lost, %d split-brain windows, writable master after %.1f s median, %.1f s max\n",
		len(ocs), lost, split, med.Seconds(), hi.Seconds())
}

func medianMax(d []time.Duration) (time.Duration, time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}
