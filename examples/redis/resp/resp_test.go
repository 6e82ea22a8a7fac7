package resp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cannedServer answers each command it reads (one RESP array) with the
// next of replies, raw.
func cannedServer(t *testing.T, replies ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for _, reply := range replies {
			line, err := r.ReadString('\n') // *N
			if err != nil {
				return
			}
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			for range 2 * n { // $len and the argument
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
			}
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
	}()
	return l.Addr().String()
}

func TestRepliesAreDecoded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	replies := []struct {
		raw  string
		want any
		err  string
	}{
		{"+OK\r\n", "OK", ""},
		{":42\r\n", int64(42), ""},
		{"$5\r\nhe\r\no\r\n", "he\r\no", ""},
		{"$-1\r\n", nil, ""},
		{"*3\r\n$1\r\na\r\n:1\r\n-ERR inner\r\n", []any{"a", int64(1), Error("ERR inner")}, ""},
		{"-READONLY You can't write against a read only replica.\r\n", nil, "READONLY"},
		{"+still usable after an error reply\r\n", "still usable after an error reply", ""},
		{"$3\r\nabcd\r\n", nil, "not terminated"},
	}
	var raws []string
	for _, r := range replies {
		raws = append(raws, r.raw)
	}
	c, err := Dial(ctx, Server{Addr: cannedServer(t, raws...)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, r := range replies {
		got, err := c.Do(ctx, "CMD", "arg")
		switch {
		case r.err == "" && err != nil:
			t.Errorf("%q: %v", r.raw, err)
		case r.err != "" && (err == nil || !strings.Contains(err.Error(), r.err)):
			t.Errorf("%q: error %v, want one with %q", r.raw, err, r.err)
		case !reflect.DeepEqual(got, r.want):
			t.Errorf("%q: %#v, want %#v", r.raw, got, r.want)
		}
	}
	var e Error
	_, err = Do(ctx, Server{Addr: cannedServer(t, "-WRONGTYPE Operation against a key\r\n")}, "GET", "k")
	if !errors.As(err, &e) || e.Prefix() != "WRONGTYPE" {
		t.Errorf("error reply: %v", err)
	}
}

func TestMalformedRepliesAreErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, raw := range []string{"?what\r\n", ":x\r\n", "$-2\r\n", "*99999999\r\n", "+no newline", strings.Repeat("*1\r\n", 20) + ":1\r\n"} {
		if got, err := Do(ctx, Server{Addr: cannedServer(t, raw)}, "PING"); err == nil {
			t.Errorf("%q: %#v, want an error", raw, got)
		}
	}
	if _, err := Do(ctx, Server{Addr: cannedServer(t)}, "PING"); err == nil {
		t.Error("no reply: no error")
	}
	c, err := Dial(ctx, Server{Addr: cannedServer(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do(ctx); err == nil {
		t.Error("an empty command was sent")
	}
}

func TestContextEndsAWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			_, _ = bufio.NewReader(c).ReadString(0) // never answers
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := Do(ctx, Server{Addr: l.Addr().String()}, "BLPOP", "q", "0"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}

func TestAgainstRedisServer(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("needs redis-server (apt-get install redis-server): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var c *Conn
	for c == nil {
		if c, err = Dial(ctx, Server{Addr: addr}); err != nil {
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // poll interval
		}
	}
	defer c.Close()
	for _, step := range []struct {
		args []string
		want any
	}{
		{[]string{"SET", "k", "a\r\nb"}, "OK"},
		{[]string{"GET", "k"}, "a\r\nb"},
		{[]string{"GET", "missing"}, nil},
		{[]string{"RPUSH", "l", "x", "y"}, int64(2)},
		{[]string{"LRANGE", "l", "0", "-1"}, []any{"x", "y"}},
	} {
		got, err := c.Do(ctx, step.args...)
		if err != nil || !reflect.DeepEqual(got, step.want) {
			t.Errorf("%q: %#v, %v; want %#v", step.args, got, err, step.want)
		}
	}
	if _, err := c.Do(ctx, "INCR", "k"); !errors.As(err, new(Error)) {
		t.Errorf("INCR of a string: %v, want an error reply", err)
	}
}
