// Command probe is a tiny static program for container tests: it serves a
// line protocol on TCP, reacts to signals in configurable ways, and has
// subcommands that tests run with exec to look inside its container. It needs
// no libc, so it runs alone in a FROM scratch image (see testimage.Probe).
//
// Usage:
//
//	probe [serve]         serve on $PROBE_LISTEN (default :8080; several
//	                      addresses separated by commas); lines:
//	                      PING -> PONG, ECHO x -> x, EXIT n -> exit with n
//	probe lines N         print "out i" on stdout and "err i" on stderr, i=1..N
//	probe exit N [o [e]]  print o on stdout and e on stderr, exit with N
//	probe cat FILE        print FILE
//	probe write FILE TEXT write TEXT to FILE
//	probe getenv NAME     print $NAME
//	probe info            print uid, gid, cwd and hostname
//	probe alloc MB        allocate and touch MB MiB, then print "allocated"
//
// serve reads: PROBE_TERM_EXIT (exit code on SIGTERM/SIGINT, default 0),
// PROBE_IGNORE_TERM=1 (ignore them, so only SIGKILL ends it), PROBE_SPIN=1
// (keep one core busy).
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		args = []string{"serve"}
	}
	if err := run(args); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	need := func(n int) error {
		if len(args) < n+1 {
			return fmt.Errorf("%s needs %d argument(s)", args[0], n)
		}
		return nil
	}
	switch args[0] {
	case "serve":
		return serve()
	case "lines":
		if err := need(1); err != nil {
			return err
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		for i := 1; i <= n; i++ {
			fmt.Printf("out %d\n", i)
			fmt.Fprintf(os.Stderr, "err %d\n", i)
		}
		return nil
	case "exit":
		if err := need(1); err != nil {
			return err
		}
		code, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		if len(args) > 2 {
			fmt.Print(args[2])
		}
		if len(args) > 3 {
			fmt.Fprint(os.Stderr, args[3])
		}
		os.Exit(code)
	case "cat":
		if err := need(1); err != nil {
			return err
		}
		b, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	case "write":
		if err := need(2); err != nil {
			return err
		}
		return os.WriteFile(args[1], []byte(args[2]), 0o644)
	case "getenv":
		if err := need(1); err != nil {
			return err
		}
		fmt.Println(os.Getenv(args[1]))
		return nil
	case "info":
		cwd, _ := os.Getwd()
		host, _ := os.Hostname()
		fmt.Printf("uid=%d\ngid=%d\ncwd=%s\nhostname=%s\n", os.Getuid(), os.Getgid(), cwd, host)
		return nil
	case "alloc":
		if err := need(1); err != nil {
			return err
		}
		mb, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		chunks := make([][]byte, 0, mb)
		for range mb {
			c := make([]byte, 1<<20)
			for i := range c {
				c[i] = 1 // touch every byte so the pages are really used
			}
			chunks = append(chunks, c)
		}
		fmt.Println("allocated", len(chunks))
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func serve() error {
	addr := os.Getenv("PROBE_LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	termExit := 0
	if v := os.Getenv("PROBE_TERM_EXIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("PROBE_TERM_EXIT: %w", err)
		}
		termExit = n
	}
	ignoreTerm := os.Getenv("PROBE_IGNORE_TERM") == "1"

	// Notify is needed even to ignore: as PID 1 the default action is to
	// ignore, but a handler makes the behaviour explicit and logged.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	var listeners []net.Listener
	for _, a := range strings.Split(addr, ",") {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		listeners = append(listeners, ln)
	}
	for _, ln := range listeners {
		fmt.Printf("probe: listening on %s\n", ln.Addr())
	}
	fmt.Fprintln(os.Stderr, "probe: stderr ready")

	if os.Getenv("PROBE_SPIN") == "1" {
		go func() {
			for x := 0; ; x++ {
				_ = x * x
			}
		}()
	}
	for _, ln := range listeners {
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(conn)
			}
		}()
	}
	for sig := range sigs {
		if ignoreTerm {
			fmt.Printf("probe: ignoring %v\n", sig)
			continue
		}
		fmt.Printf("probe: got %v, exiting %d\n", sig, termExit)
		os.Exit(termExit)
	}
	return nil
}

func handle(conn net.Conn) {
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch strings.ToUpper(cmd) {
		case "PING":
			fmt.Fprintln(conn, "PONG")
		case "ECHO":
			fmt.Fprintln(conn, arg)
		case "EXIT":
			code, err := strconv.Atoi(arg)
			if err != nil {
				fmt.Fprintln(conn, "ERR", err)
				continue
			}
			fmt.Printf("probe: exit %d requested\n", code)
			os.Exit(code)
		default:
			fmt.Fprintln(conn, "ERR unknown command")
		}
	}
}
