// Package resp is a minimal client of Redis' RESP2 protocol, enough for the
// Redis example's tests and benchmark to talk to a server without a Redis
// client module: one connection, one command at a time.
package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Error is an error reply from the server ("-ERR ...", "-READONLY ...").
type Error string

func (e Error) Error() string { return string(e) }

// Prefix returns the error's code, e.g. "READONLY" or "ERR".
func (e Error) Prefix() string {
	code, _, _ := strings.Cut(string(e), " ")
	return code
}

// maxBulk bounds one bulk string, so a corrupt length cannot make us
// allocate gigabytes.
const maxBulk = 64 << 20

// maxArray bounds the elements of one array reply.
const maxArray = 1 << 20

// Conn is one connection to a Redis server. It is not safe for concurrent
// use.
type Conn struct {
	conn net.Conn
	r    *bufio.Reader
}

// Server is a Redis server to connect to: its address (host:port) and
// password ("" for none).
type Server struct {
	Addr     string
	Password string
}

func (s Server) String() string { return s.Addr }

// Dial connects to srv until ctx ends and, if it has a password,
// authenticates.
func Dial(ctx context.Context, srv Server) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", srv.Addr)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", srv.Addr, err)
	}
	conn := &Conn{conn: c, r: bufio.NewReader(c)}
	if srv.Password != "" {
		if _, err := conn.Do(ctx, "AUTH", srv.Password); err != nil {
			c.Close()
			return nil, fmt.Errorf("redis %s: AUTH: %w", srv.Addr, err)
		}
	}
	return conn, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// Do sends one command and reads its reply: a string for simple and bulk
// strings, an int64 for integers, nil for a null reply, []any for arrays.
// An error reply is returned as an Error (and the connection stays usable);
// any other error leaves the connection unusable.
func (c *Conn) Do(ctx context.Context, args ...string) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("redis: empty command")
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// Cancellation without a deadline: unblock the read when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return nil, c.wrap(ctx, err)
	}
	v, err := c.read(0)
	if err != nil {
		var redisErr Error
		if errors.As(err, &redisErr) {
			return nil, redisErr
		}
		return nil, c.wrap(ctx, err)
	}
	return v, nil
}

// wrap prefers ctx's error when ctx ended, since the deadline we set on
// cancellation would otherwise read as a timeout.
func (c *Conn) wrap(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("redis %s: %w", c.conn.RemoteAddr(), ctx.Err())
	}
	return fmt.Errorf("redis %s: %w", c.conn.RemoteAddr(), err)
}

func (c *Conn) read(depth int) (any, error) {
	if depth > 8 {
		return nil, errors.New("reply nested too deeply")
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return nil, fmt.Errorf("malformed reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return body, nil
	case '-':
		return nil, Error(body)
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("malformed integer reply %q", body)
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxBulk {
			return nil, fmt.Errorf("malformed bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		if string(buf[n:]) != "\r\n" {
			return nil, errors.New("bulk string not terminated by CRLF")
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > maxArray {
			return nil, fmt.Errorf("malformed array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		out := make([]any, 0, n)
		for range n {
			v, err := c.read(depth + 1)
			var redisErr Error
			if errors.As(err, &redisErr) {
				out = append(out, redisErr) // an error inside an array is a value
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown reply type %q", kind)
	}
}

// Do dials srv, runs one command and closes the connection.
func Do(ctx context.Context, srv Server, args ...string) (any, error) {
	c, err := Dial(ctx, srv)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Do(ctx, args...)
}
