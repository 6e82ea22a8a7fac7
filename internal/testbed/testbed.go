// Package testbed builds a small network of "hosts" on this one machine for
// fault-injection tests: each node is a Linux network namespace with its own
// address (10.213.0.x/24), joined by veth pairs to a bridge that lives in a
// namespace of its own, so nothing the test sends can leave the machine and
// the host's own network is never touched. Processes started on a node run
// inside its namespace, as do their children (an agent's executors and
// tasks), so faults are real: a partition drops packets in the kernel
// (iptables rules inside the receiving node's namespace), a link goes down,
// a process is killed with SIGKILL or paused with SIGSTOP.
//
// New skips the test, naming what is missing, when it does not run as root
// or lacks ip(8) or iptables(8). Everything is removed by the test's
// cleanup: every process in the bed's namespaces is killed, the namespaces
// deleted.
package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Subnet is the private /24 every bed uses inside its own namespaces (the
// beds of concurrent tests do not see each other).
const Subnet = "10.213.0"

// Bed is one test's network.
type Bed struct {
	prefix string // namespace names start with it
	hub    string // the bridge's namespace

	mu    sync.Mutex
	nodes []*Node
	rules map[string]bool // "node|from" drop rules in place
	procs []*Proc
}

// Node is one host of the bed.
type Node struct {
	bed  *Bed
	Name string
	NS   string // network namespace
	IP   string // 10.213.0.x
}

// Missing names what the bed needs and this machine lacks, or "".
func Missing() string {
	if os.Geteuid() != 0 {
		return "root (network namespaces)"
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " (Debian package " + map[string]string{"ip": "iproute2", "iptables": "iptables"}[bin] + ")"
		}
	}
	return ""
}

var seq struct {
	sync.Mutex
	n int
}

// New creates an empty bed (a bridge in its own namespace) removed by
// t's cleanup, or skips t naming what is missing.
func New(t testing.TB) *Bed {
	t.Helper()
	if m := Missing(); m != "" {
		t.Skipf("testbed: needs %s", m)
	}
	b, err := Create()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// Create creates an empty bed; Close removes it. Programs that are not
// tests check Missing first.
func Create() (*Bed, error) {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	b := &Bed{prefix: fmt.Sprintf("tb%d-%d-", os.Getpid(), n), rules: map[string]bool{}}
	b.hub = b.prefix + "hub"
	for _, args := range [][]string{
		{"netns", "add", b.hub},
		{"-n", b.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", b.hub, "link", "set", "br0", "up"},
	} {
		if err := ip(args...); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Node adds a host named name (short: it names interfaces) with the next
// address of the subnet, failing t on error.
func (b *Bed) Node(t testing.TB, name string) *Node {
	t.Helper()
	n, err := b.AddNode(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// AddNode adds a host named name with the next address of the subnet.
func (b *Bed) AddNode(name string) (*Node, error) {
	b.mu.Lock()
	i := len(b.nodes)
	n := &Node{bed: b, Name: name, NS: b.prefix + name, IP: fmt.Sprintf("%s.%d", Subnet, i+2)}
	b.mu.Unlock()
	if err := ip("netns", "add", n.NS); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.nodes = append(b.nodes, n)
	b.mu.Unlock()
	// The veth's host end is created in the hub directly, so no interface
	// ever appears in the machine's own namespace.
	hubEnd := "v" + strconv.Itoa(i)
	for _, args := range [][]string{
		{"-n", n.NS, "link", "set", "lo", "up"},
		{"-n", b.hub, "link", "add", hubEnd, "type", "veth", "peer", "name", "eth0", "netns", n.NS},
		{"-n", b.hub, "link", "set", hubEnd, "master", "br0"},
		{"-n", b.hub, "link", "set", hubEnd, "up"},
		{"-n", n.NS, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"-n", n.NS, "link", "set", "eth0", "up"},
	} {
		if err := ip(args...); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Nodes lists the bed's nodes in the order they were added.
func (b *Bed) Nodes() []*Node {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Node(nil), b.nodes...)
}

func ip(args ...string) error {
	if out, err := run("ip", args...); err != nil {
		return fmt.Errorf("testbed: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// Command is a command to run on the node (not started).
func (n *Node) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS, name}, args...)...)
	// Its own process group, so a signal to the test's group does not
	// reach it and Proc can signal everything it started at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Proc is a process started on a node.
type Proc struct {
	Node *Node
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts a process on the node; its output is appended to logFile
// (os.Stderr when empty). ip netns exec execs the
// command, so the process's PID is the command's own.
func (n *Node) Start(logFile string, name string, args ...string) (*Proc, error) {
	cmd := n.Command(name, args...)
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testbed: start %s on %s: %w", name, n.Name, err)
	}
	p := &Proc{Node: n, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.bed.mu.Lock()
	n.bed.procs = append(n.bed.procs, p)
	n.bed.mu.Unlock()
	return p, nil
}

// PID is the process's ID.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process alone.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return fmt.Errorf("testbed: process %d on %s has exited", p.PID(), p.Node.Name)
	default:
	}
	return syscall.Kill(p.PID(), sig)
}

// Kill9 kills the process with SIGKILL and waits for it: what it started
// in other process groups (an agent's executors) lives on, as after a
// crash.
func (p *Proc) Kill9() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop pauses the process (SIGSTOP); Cont resumes it.
func (p *Proc) Stop() error { return p.Signal(syscall.SIGSTOP) }

// Cont resumes a paused process.
func (p *Proc) Cont() error { return p.Signal(syscall.SIGCONT) }

// Interrupt sends SIGTERM and waits up to d for the process to exit.
func (p *Proc) Interrupt(d time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("testbed: process %d on %s still runs %v after SIGTERM", p.PID(), p.Node.Name, d)
	}
}

// Cut drops every packet from each node of from to each node of to (one
// way: answers from to still reach from, but nothing from is ever
// answered). Heal undoes it.
func (b *Bed) Cut(from, to []*Node) error {
	for _, dst := range to {
		for _, src := range from {
			if src == dst {
				continue
			}
			if err := b.rule("-A", dst, src); err != nil {
				return err
			}
		}
	}
	return nil
}

// Partition cuts both ways between the two groups.
func (b *Bed) Partition(a, c []*Node) error {
	if err := b.Cut(a, c); err != nil {
		return err
	}
	return b.Cut(c, a)
}

// Isolate partitions n from every other node.
func (b *Bed) Isolate(n *Node) error {
	var others []*Node
	for _, o := range b.Nodes() {
		if o != n {
			others = append(others, o)
		}
	}
	return b.Partition([]*Node{n}, others)
}

// Heal removes every cut.
func (b *Bed) Heal() error {
	b.mu.Lock()
	var keys []string
	for k := range b.rules {
		keys = append(keys, k)
	}
	b.mu.Unlock()
	nodes := map[string]*Node{}
	for _, n := range b.Nodes() {
		nodes[n.Name] = n
	}
	for _, k := range keys {
		dst, src, _ := strings.Cut(k, "|")
		if err := b.rule("-D", nodes[dst], nodes[src]); err != nil {
			return err
		}
	}
	return nil
}

// rule adds (-A) or deletes (-D) the rule dropping src's packets in dst.
func (b *Bed) rule(op string, dst, src *Node) error {
	key := dst.Name + "|" + src.Name
	b.mu.Lock()
	have := b.rules[key]
	b.mu.Unlock()
	if (op == "-A") == have {
		return nil
	}
	if out, err := run("ip", "netns", "exec", dst.NS, "iptables", "-w", op, "INPUT", "-s", src.IP, "-j", "DROP"); err != nil {
		return fmt.Errorf("testbed: iptables %s on %s: %v: %s", op, dst.Name, err, bytes.TrimSpace(out))
	}
	b.mu.Lock()
	if op == "-A" {
		b.rules[key] = true
	} else {
		delete(b.rules, key)
	}
	b.mu.Unlock()
	return nil
}

// LinkDown takes the node's interface down: it reaches nobody and nobody
// reaches it (its own loopback still works). LinkUp brings it back.
func (n *Node) LinkDown() error {
	if out, err := run("ip", "-n", n.NS, "link", "set", "eth0", "down"); err != nil {
		return fmt.Errorf("testbed: link down on %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// LinkUp brings the node's interface back up, with its address.
func (n *Node) LinkUp() error {
	if out, err := run("ip", "-n", n.NS, "link", "set", "eth0", "up"); err != nil {
		return fmt.Errorf("testbed: link up on %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// Close kills every process in the bed's namespaces (the ones started
// here and whatever they started) and deletes the namespaces.
func (b *Bed) Close() error {
	for _, n := range b.Nodes() {
		out, _ := run("ip", "netns", "pids", n.NS)
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGCONT)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	b.mu.Lock()
	procs := append([]*Proc(nil), b.procs...)
	b.mu.Unlock()
	var errs []error
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("testbed: process %d on %s did not exit after SIGKILL", p.PID(), p.Node.Name))
		}
	}
	for _, n := range b.Nodes() {
		if err := ip("netns", "del", n.NS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ip("netns", "del", b.hub); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
