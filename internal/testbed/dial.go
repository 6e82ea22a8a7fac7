package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// DialContext dials from inside the node's namespace: the test process
// itself (a client) talks to the bed as that node, and its packets are
// subject to the node's cuts. A socket stays in the namespace it was
// created in, so only the creation happens there.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Only this goroutine's thread enters the namespace, and goes
		// back before it is unlocked; a thread that cannot go back stays
		// locked and ends with the goroutine, so no other goroutine ever
		// runs in the node's namespace.
		runtime.LockOSThread()
		c, back, err := n.dialIn(ctx, network, addr)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialIn dials from the node's namespace on the calling (locked) thread;
// back says whether the thread is in its own namespace again.
func (n *Node) dialIn(ctx context.Context, network, addr string) (c net.Conn, back bool, err error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, true, fmt.Errorf("testbed: own namespace: %w", err)
	}
	defer own.Close()
	f, err := os.Open("/var/run/netns/" + n.NS)
	if err != nil {
		return nil, true, fmt.Errorf("testbed: namespace of %s: %w", n.Name, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("testbed: enter namespace of %s: %w", n.Name, err)
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, network, addr)
	back = unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil
	return c, back, err
}

// HTTPClient is a client whose connections start from the node, with
// timeout per request.
func (n *Node) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       n.DialContext,
			DisableKeepAlives: true,
		},
	}
}
