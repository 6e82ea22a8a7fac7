// Command codegen scaffolds a new framework built with the stateful toolkit:
//
//	codegen -name MySQL -path ~/src
//
// creates ~/src/mysql, a Go module (example.com/mysql-framework unless
// -module says otherwise) with main.go calling framework.Main, workload.go
// with every callback of stateful.Workload stubbed and documented, an
// end-to-end test on embedded localmesos and etcd, config.json with every
// setting and its default, a Makefile and a README. It builds, passes its
// test and runs before you change a line:
//
//	cd ~/src/mysql && go test ./... && go run . --config config.json
//
// The project builds offline against the toolkit checkout codegen finds
// above the working directory or above its own source (or the one -toolkit
// names), through a replace directive in go.mod. Install it with
//
//	go install github.com/mesos-stateful/stateful/cmd/codegen
//
// Existing files are overwritten only with -force, and an error leaves
// nothing half-written. codegen logs each file it creates with glog (to
// files unless -logtostderr) and prints a summary with the next steps.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful/codegen"
)

func main() {
	code := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	glog.Flush()
	os.Exit(code)
}

// run is codegen with its arguments and output streams, for tests. It
// returns the exit code: 0 done, 1 generation failed, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("codegen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts codegen.Options
	fs.StringVar(&opts.Name, "name", "", "framework `name`: ASCII letters and digits starting with a letter, e.g. MySQL (required); the project directory is the name lower-cased")
	fs.StringVar(&opts.Path, "path", ".", "existing `directory` to create the project directory in")
	fs.StringVar(&opts.Module, "module", "", "module `path` of the project (default example.com/<name lower-cased>-framework)")
	fs.StringVar(&opts.Image, "image", "", "default Docker `image` of the workload, e.g. mysql:8 (default none: a placeholder command run with the process runtime)")
	fs.BoolVar(&opts.Force, "force", false, "overwrite the files of an existing project (workload.go too)")
	fs.StringVar(&opts.Toolkit, "toolkit", "", "toolkit checkout `dir` to build against (default: found above the working directory or above codegen's source)")
	// glog's flags (-v, -logtostderr, ...) live on the process-wide set.
	flag.CommandLine.VisitAll(func(f *flag.Flag) { fs.Var(f.Value, f.Name, f.Usage) })
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: codegen -name NAME [-path DIR] [-module PATH] [-image IMAGE] [-force] [-toolkit DIR]\n\n"+
			"Creates DIR/<name lower-cased>, a new framework project built with the stateful toolkit.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "codegen: unexpected arguments %q (flags come before them, or give a flag's value with -flag=value)\n", fs.Args())
		return 2
	}
	if opts.Name == "" {
		fmt.Fprintln(stderr, "codegen: -name is required, e.g. codegen -name MySQL -path ~/src")
		return 2
	}
	res, err := codegen.Generate(ctx, opts)
	if err != nil {
		// Said once, here: glog would repeat an error on stderr.
		fmt.Fprintf(stderr, "codegen: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, res.Summary())
	return 0
}
