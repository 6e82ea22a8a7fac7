package resp

import (
	"bufio"
	"net"
)

// NewConn speaks RESP over a connection dialed elsewhere (say, from
// another network namespace). Close closes c.
func NewConn(c net.Conn) *Conn {
	return &Conn{conn: c, r: bufio.NewReader(c)}
}
