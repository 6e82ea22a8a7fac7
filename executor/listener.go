package executor

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
	checkListener(host string, port uint32) error
}

// checkListener implements listenerChecker for a process-runtime task: its
// processes are those of its process group, and it shares the executor's
// network namespace.
func (p *process) checkListener(host string, port uint32) error {
	// The task shares the executor's network namespace.
	inodes, err := listeningSockets("/proc/self/net", net.ParseIP(host), port)
	if err != nil {
		return err
	}
	if len(inodes) == 0 {
		return fmt.Errorf("nothing listens on port %d", port)
	}
	stats, err := groupStats(p.pgid)
	if err != nil {
		return err
	}
	ours := make(map[uint64]bool)
	for pid := range stats {
		for _, ino := range socketInodes(pid) {
			ours[ino] = true
		}
	}
	for _, ino := range inodes {
		if !ours[ino] {
			return fmt.Errorf("port %d is held by %s, not by this task's processes (process group %d); a workload left behind by an earlier task?", port, describeSocketOwner(ino), p.pgid)
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
