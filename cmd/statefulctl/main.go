// Command statefulctl drives a stateful framework's REST API: create,
// inspect, scale, update and destroy instances, wait for them to reach a
// status, and print the address of a task for other tools.
//
//	statefulctl create cache1 -type MS -slaves 2
//	statefulctl wait cache1
//	redis-cli -h HOST -p PORT    # HOST PORT from: statefulctl master cache1
//
// The API is at -api (default http://127.0.0.1:5656, or $STATEFUL_API).
// A bearer token for it comes from -token, -token-file or $STATEFUL_TOKEN;
// an https API is verified with the CA certificates of -ca (default: the
// system's), and -cert/-key present a client certificate.
// Exit status: 0 done, 1 the API refused or the operation failed (or timed
// out), 2 the command line is wrong.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mesos-stateful/stateful/client"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const (
	defaultAPI     = "http://127.0.0.1:5656"
	envAPI         = "STATEFUL_API"
	envToken       = "STATEFUL_TOKEN"
	defaultTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// app is one run of the command: where it writes, and the API it calls.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	api            *client.Client
	// timeout bounds each request to the API.
	timeout time.Duration
}

// command is one subcommand.
type command struct {
	name     string
	synopsis string // arguments and flags, for usage lines
	summary  string
	// minArgs and maxArgs bound the positional arguments; want names
	// them, for the error when they are missing.
	minArgs, maxArgs int
	want             string
	// setup defines the command's flags on fs and returns what runs once
	// they and the positional arguments are parsed.
	setup func(fs *flag.FlagSet) action
}

// action runs a command with its positional arguments; fs is for usage
// errors.
type action func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error

func commands() []command {
	return []command{
		{"list", "", "list the instances", 0, 0, "", setupList},
		{"get", "NAME [-json]", "show an instance and its tasks", 1, 1, "NAME", setupGet},
		{"create", "NAME -type S|MS|C [-masters N] [-slaves N] [-spec JSON | -spec-file FILE]", "create an instance", 1, 1, "NAME", setupCreate},
		{"scale", "NAME -slaves N", "change an instance's number of slaves", 1, 1, "NAME", setupScale},
		{"update", "NAME [-spec JSON | -spec-file FILE] [-slaves N]", "change an instance's spec (rolled out task by task)", 1, 1, "NAME", setupUpdate},
		{"delete", "NAME [-wait] [-timeout D]", "destroy an instance", 1, 1, "NAME", setupDelete},
		{"switchover", "NAME [-to ORDINAL] [-wait] [-timeout D]", "move the master role of an MS instance to a slave, without losing acknowledged writes", 1, 1, "NAME", setupSwitchover},
		{"rollout", "NAME pause|resume|abort", "pause, resume or abort (back to the previous spec) an instance's rolling spec change", 2, 2, "NAME and pause|resume|abort", setupRollout},
		{"wait", "NAME [-status S] [-timeout D] [-interval D]", "wait until an instance has a status (RUNNING: and every task healthy)", 1, 1, "NAME", setupWait},
		{"master", "NAME [PORTNAME] [-task-id]", "print HOST PORT of the task holding the master role", 1, 2, "NAME", setupMaster},
		{"addr", "NAME ORDINAL|TASK [PORTNAME] [-task-id]", "print HOST PORT of a task", 2, 3, "NAME and ORDINAL", setupAddr},
		{"env", "NAME [KEY]", "print an instance's env (KEY=VALUE lines), or one value, e.g. a password; needs an admin token when the API has tokens", 1, 2, "NAME", setupEnv},
		{"health", "", "show whether the scheduler is healthy", 0, 0, "", setupHealth},
		{"events", "[NAME] [-json]", "follow state changes and failovers as they happen (until interrupted)", 0, 1, "", setupEvents},
	}
}

// errUsage says the command line was wrong and the usage has been printed.
var errUsage = errors.New("usage")

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("statefulctl", flag.ContinueOnError)
	global.SetOutput(stderr)
	api := defaultAPI
	if v := getenv(envAPI); v != "" {
		api = v
	}
	global.StringVar(&api, "api", api, "the REST API's address (also $"+envAPI+")")
	timeout := global.Duration("timeout", defaultTimeout, "bound on each request to the API")
	var conn connFlags
	conn.register(global)
	// Asked for, the usage goes to stdout; after a mistake, to stderr
	// (where flag has just said what is wrong).
	global.Usage = func() {}
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usageTo(stdout, global)
			return exitOK
		}
		usage(global)
		return exitUsage
	}
	global.Usage = func() { usage(global) }
	if global.NArg() == 0 {
		fmt.Fprintln(stderr, "statefulctl: no command given")
		usage(global)
		return exitUsage
	}
	name, rest := global.Arg(0), global.Args()[1:]
	if name == "help" {
		return help(global, rest, stdout)
	}
	cmd, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "statefulctl: unknown command %q\n", name)
		usage(global)
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "statefulctl: -timeout must be positive, not %v\n", *timeout)
		usage(global)
		return exitUsage
	}
	httpClient, opts, err := conn.client(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "statefulctl: %v\n", err)
		return exitUsage
	}
	c, err := client.New(apiURL(api), httpClient, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "statefulctl: -api: %v\n", err)
		usage(global)
		return exitUsage
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, api: c, timeout: *timeout}
	fs := cmd.flags(stderr)
	act := cmd.setup(fs)
	pos, err := parseArgs(fs, rest, cmd.minArgs, cmd.maxArgs, cmd.want, stdout)
	if err == nil {
		err = act(ctx, a, fs, pos)
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	default:
		fmt.Fprintf(stderr, "statefulctl %s: %v\n", cmd.name, explain(err, c, *timeout))
		return exitError
	}
}

// apiURL accepts host:port for http://host:port.
func apiURL(s string) string {
	if !strings.Contains(s, "://") {
		return "http://" + s
	}
	return s
}

// explain adds a hint to errors whose cause an operator may not guess.
func explain(err error, c *client.Client, timeout time.Duration) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w\n(nothing answers at %s: is the framework running? set -api or $%s)", err, c.Base(), envAPI)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w\n(no answer from %s within -timeout %v)", err, c.Base(), timeout)
	case client.IsUnauthorized(err):
		return fmt.Errorf("%w\n(give an API token with -token, -token-file or $%s; changes need an admin token)", err, envToken)
	}
	return err
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(global *flag.FlagSet) { usageTo(global.Output(), global) }

// usageTo prints the usage to w.
func usageTo(w io.Writer, global *flag.FlagSet) {
	out := global.Output()
	global.SetOutput(w)
	defer global.SetOutput(out)
	fmt.Fprint(w, "usage: statefulctl [-api URL] [-token T | -token-file F] [-ca FILE] [-timeout D] COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "  help     COMMAND: a command's arguments and flags\n\nflags (before the command):\n")
	global.PrintDefaults()
	fmt.Fprint(w, "\nexit status: 0 done, 1 the API refused or the operation failed, 2 usage\n")
}

// help prints one command's usage, or everything, to stdout.
func help(global *flag.FlagSet, args []string, stdout io.Writer) int {
	if len(args) == 0 {
		usageTo(stdout, global)
		return exitOK
	}
	cmd, ok := lookup(args[0])
	if !ok || len(args) > 1 {
		fmt.Fprintf(global.Output(), "statefulctl: no command %q\n", strings.Join(args, " "))
		usage(global)
		return exitUsage
	}
	fs := cmd.flags(stdout)
	cmd.setup(fs)
	fs.Usage()
	return exitOK
}

// flags returns an empty flag set for the command, whose Usage prints the
// command's synopsis and flags.
func (c command) flags(w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("statefulctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: statefulctl %s %s\n  %s\n", c.name, c.synopsis, c.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags and positional arguments in any order (Go's flag
// package stops at the first positional one), so that both
// "get -json cache1" and "get cache1 -json" work; "--" ends the flags. It
// wants between lo and hi positional arguments; want says what they are,
// for the error. -h prints the usage to stdout.
func parseArgs(fs *flag.FlagSet, args []string, lo, hi int, want string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		usage := fs.Usage
		fs.Usage = func() {}
		err := fs.Parse(args)
		fs.Usage = usage
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				out := fs.Output()
				fs.SetOutput(stdout)
				fs.Usage()
				fs.SetOutput(out)
				return nil, err
			}
			fs.Usage() // after flag's message saying what is wrong
			return nil, errUsage
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < lo || len(pos) > hi {
		if len(pos) < lo {
			fmt.Fprintf(fs.Output(), "%s: want %s\n", fs.Name(), want)
		} else {
			fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), pos[hi:])
		}
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// usageError prints msg and the command's usage and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

// request returns a context bounding one request to the API.
func (a *app) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.timeout)
}
