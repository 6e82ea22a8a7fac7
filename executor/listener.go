package executor

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// listenerChecker is implemented by workloads that can tell whether the
// sockets listening on a TCP port are theirs. The TCP health check asks,
// after its connect succeeded, so that a process that is not the task's (a
// workload an earlier executor left behind, still holding the port) does
// not make the task healthy: its own process could not even bind.
type listenerChecker interface {
	// checkListener returns nil if every socket listening on port for host
	// (an IP, or "" for any) belongs to one of the workload's processes,
	// and at least one does.
	checkListener(ctx context.Context, host string, port uint32) error
}

// ownedListeners remembers the listening sockets already found to be a
// task's, so that a health check that finds only those (the usual case,
// every interval) skips the scan of every process in /proc: while a socket
// is open, the processes holding it do not change but by fork or fd
// passing, which a workload left behind does not do with ours.
type ownedListeners struct {
	mu     sync.Mutex
	inodes map[uint64]bool
}

// all reports whether every socket in inodes is known to be the task's.
func (o *ownedListeners) all(inodes []uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ino := range inodes {
		if !o.inodes[ino] {
			return false
		}
	}
	return true
}

// add records inodes as the task's.
func (o *ownedListeners) add(inodes []uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inodes == nil {
		o.inodes = make(map[uint64]bool)
	}
	for _, ino := range inodes {
		o.inodes[ino] = true
	}
}

// checkListener implements listenerChecker for a process-runtime task: its
// processes are those of its process group, and it shares the executor's
// network namespace.
func (p *process) checkListener(_ context.Context, host string, port uint32) error {
	// The task shares the executor's network namespace.
	inodes, err := listeningSockets("/proc/self/net", net.ParseIP(host), port)
	if err != nil {
		return err
	}
	if len(inodes) == 0 {
		return fmt.Errorf("nothing listens on port %d", port)
	}
	if p.listeners.all(inodes) {
		return nil
	}
	stats, err := groupStats(p.pgid)
	if err != nil {
		return err
	}
	pids := make([]int, 0, len(stats))
	for pid := range stats {
		pids = append(pids, pid)
	}
	if err := checkOwners(inodes, pids, port, fmt.Sprintf("process group %d", p.pgid)); err != nil {
		return err
	}
	p.listeners.add(inodes)
	return nil
}

// checkListener implements listenerChecker for a container: the sockets
// are looked up in the container's own network namespace (the host's, on
// the host network), and its processes are those in its PID namespace.
func (c *container) checkListener(ctx context.Context, host string, port uint32) error {
	st, err := c.client.Inspect(ctx, c.id)
	if err != nil {
		return err
	}
	if !st.Running || st.Pid <= 0 {
		return fmt.Errorf("container %s is not running", shortContainerID(c.id))
	}
	netNS, pidNS := namespace(st.Pid, "net"), namespace(st.Pid, "pid")
	if netNS == "" || pidNS == "" {
		// Not ours to inspect (an executor without the rights): the
		// connect alone has to do.
		return nil
	}
	ip := net.ParseIP(host)
	if netNS != namespace(os.Getpid(), "net") {
		// Its own network namespace (bridge): the port is published at
		// the same number inside, bound to the container's address.
		ip = nil
	}
	inodes, err := listeningSockets(fmt.Sprintf("/proc/%d/net", st.Pid), ip, port)
	if err != nil {
		return err
	}
	if len(inodes) == 0 {
		return fmt.Errorf("nothing in container %s listens on port %d", shortContainerID(c.id), port)
	}
	if c.listeners.all(inodes) {
		return nil
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && namespace(pid, "pid") == pidNS {
			pids = append(pids, pid)
		}
	}
	if err := checkOwners(inodes, pids, port, "container "+shortContainerID(c.id)); err != nil {
		return err
	}
	c.listeners.add(inodes)
	return nil
}

// namespace returns the identity of a namespace of pid, e.g.
// "net:[4026531840]", or "" if it cannot be read.
func namespace(pid int, kind string) string {
	l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	return l
}

// checkOwners returns nil if every socket in inodes is open in one of
// pids, and otherwise an error naming the process that holds the first
// one that is not; whose names the task's processes.
func checkOwners(inodes []uint64, pids []int, port uint32, whose string) error {
	ours := make(map[uint64]bool)
	for _, pid := range pids {
		for _, ino := range socketInodes(pid) {
			ours[ino] = true
		}
	}
	for _, ino := range inodes {
		if !ours[ino] {
			return fmt.Errorf("port %d is held by %s, not by this task's processes (%s); a workload left behind by an earlier task?", port, describeSocketOwner(ino), whose)
		}
	}
	return nil
}

// tcpListen is the socket state LISTEN in /proc/net/tcp.
const tcpListen = "0A"

// listeningSockets returns the inodes of the TCP sockets (v4 and v6) in
// netDir (a /proc/<pid>/net) listening on port at ip or at the wildcard
// address; a nil ip matches any address.
func listeningSockets(netDir string, ip net.IP, port uint32) ([]uint64, error) {
	var out []uint64
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(netDir + "/" + name)
		if os.IsNotExist(err) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("read listening sockets: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st ... uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != tcpListen {
				continue
			}
			addr, p, ok := parseProcAddr(fields[1])
			if !ok || p != port || !(ip == nil || addr.IsUnspecified() || addr.Equal(ip)) {
				continue
			}
			ino, err := strconv.ParseUint(fields[9], 10, 64)
			if err == nil && ino != 0 {
				out = append(out, ino)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", netDir, name, err)
		}
	}
	return out, nil
}

// parseProcAddr parses an address of /proc/net/tcp{,6}: hex IP (as 32-bit
// words in host byte order) ':' hex port.
func parseProcAddr(s string) (net.IP, uint32, bool) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return nil, 0, false
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return nil, 0, false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	return ip, uint32(port), true
}

// socketInodes returns the inodes of the sockets pid has open.
func socketInodes(pid int) []uint64 {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // gone meanwhile, or not ours to read
	}
	var out []uint64
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if rest, ok := strings.CutPrefix(link, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64); err == nil {
				out = append(out, ino)
			}
		}
	}
	return out
}

// describeSocketOwner names the process holding socket inode ino, for an
// error message: "pid 1234 (redis-server)", or "another process" when it
// cannot be found (another user's, or gone).
func describeSocketOwner(ino uint64) string {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, have := range socketInodes(pid) {
			if have == ino {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
				return fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
			}
		}
	}
	return "another process"
}
