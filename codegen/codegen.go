// Package codegen scaffolds a new framework project from the templates in
// package templates: a Go module with main.go (calls framework.Main),
// workload.go (every callback of stateful.Workload, stubbed and documented),
// an end-to-end test on embedded localmesos and etcd, config.json, a Makefile
// and a README. The project builds, passes its test and runs before its
// author changes a line.
//
// The project builds offline against a toolkit on this machine: a checkout
// (named with Options.Toolkit, or found above the working directory or
// above codegen's own source) through a replace directive, or the module
// cache copy codegen was installed from. Its go.mod carries the toolkit's
// requirements and its go.sum the toolkit's checksums, so neither go build
// nor go test needs the network. Without any toolkit on the machine the
// project requires the published module, and go mod tidy must fetch it once.
//
// Generate renders every file in memory, writes them into a staging
// directory beside the target and renames them into place, so that an error
// leaves nothing half-written.
package codegen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golang/glog"
)

// Options say what to generate and where.
type Options struct {
	// Name is the framework's name, e.g. "MySQL": ASCII letters and digits,
	// starting with a letter (see ValidateName). The workload's Go type is
	// the name with its first letter upper-cased; the project directory, the
	// binary and the framework's default --name are the name lower-cased.
	Name string
	// Path is the existing directory the project directory is created in.
	Path string
	// Module is the project's module path; "" means DefaultModule(Name).
	Module string
	// Image is the Docker image the workload's Defaults name; "" means none,
	// and Defaults then runs a placeholder command with the process runtime.
	Image string
	// Force overwrites files of an existing project. Other files in the
	// directory are never touched.
	Force bool
	// Toolkit is a checkout of github.com/mesos-stateful/stateful to build
	// against; "" means look above the working directory, then above
	// codegen's own source.
	Toolkit string
}

// Result says what Generate made.
type Result struct {
	// Dir is the project directory.
	Dir string
	// Module is the project's module path.
	Module string
	// Files are the files written, in Dir, with what each is for.
	Files []File
	// Toolkit is the checkout the project's replace directive points at;
	// empty when it requires a published version.
	Toolkit string
	// Version is the toolkit version the project requires (with a replace,
	// the placeholder version the go command uses); empty when go mod tidy
	// has to find it.
	Version string
	// Offline says the project builds without the network: it has a go.sum
	// and every requirement it needs. When false, run go mod tidy first.
	Offline bool
}

// File is one file Generate wrote.
type File struct {
	Name    string
	Purpose string
}

// Generate creates the project directory Path/<lower-cased Name> holding a
// new framework project. Bad options are refused with an error saying what
// is allowed, before anything is written; existing project files are
// overwritten only with Force; on any error the file system is as it was.
func Generate(ctx context.Context, opts Options) (*Result, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	module := opts.Module
	if module == "" {
		module = DefaultModule(opts.Name)
	}
	if err := validateModule(module); err != nil {
		return nil, err
	}
	if opts.Image != "" {
		if err := validateImage(opts.Image); err != nil {
			return nil, err
		}
	}
	parent, err := projectParent(opts.Path)
	if err != nil {
		return nil, err
	}
	tk, err := resolveToolkit(ctx, opts.Toolkit)
	if err != nil {
		return nil, err
	}

	p := newProject(opts.Name, module, opts.Image, tk)
	files, err := render(p)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, p.Dir)
	if err := (writer{rename: os.Rename}).write(dir, files, opts.Force); err != nil {
		return nil, err
	}

	res := &Result{Dir: dir, Module: module, Toolkit: tk.Dir, Version: tk.Version, Offline: p.Offline}
	for _, f := range files {
		res.Files = append(res.Files, File{Name: f.Name, Purpose: f.Purpose})
		glog.Infof("codegen: created %s", filepath.Join(dir, f.Name))
	}
	switch {
	case tk.Dir != "":
		glog.Infof("codegen: %s builds against the toolkit at %s (replace directive)", dir, tk.Dir)
	case p.Offline:
		glog.Infof("codegen: %s requires toolkit %s, found in the module cache at %s", dir, tk.Version, tk.Found)
	default:
		glog.Infof("codegen: no toolkit on this machine; %s requires the published module and needs go mod tidy (network)", dir)
	}
	return res, nil
}

// projectParent checks the directory a project is created in.
func projectParent(path string) (string, error) {
	if path == "" {
		path = "."
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", path, err)
	}
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("path %s does not exist; create it first (the project goes in a new directory inside it)", abs)
	case err != nil:
		return "", fmt.Errorf("path %s: %w", abs, err)
	case !info.IsDir():
		return "", fmt.Errorf("path %s is not a directory", abs)
	}
	return abs, nil
}

// resolveToolkit finds and reads the toolkit the project builds against:
// the named checkout, else one above the working directory or above
// codegen's source, else the published module.
func resolveToolkit(ctx context.Context, named string) (*toolkit, error) {
	if named != "" {
		abs, err := filepath.Abs(named)
		if err != nil {
			return nil, fmt.Errorf("toolkit %s: %w", named, err)
		}
		if !isToolkit(abs) {
			return nil, fmt.Errorf("toolkit %s: no go.mod of module %s there", abs, toolkitModule)
		}
		return loadToolkit(ctx, abs)
	}
	wd, err := os.Getwd()
	if err != nil {
		wd = ""
	}
	if dir := FindToolkit(wd, sourceDir()); dir != "" {
		return loadToolkit(ctx, dir)
	}
	return publishedToolkit(), nil
}

// Summary is the short text a person reads after Generate: what was made
// and the next steps.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Created %s (module %s):\n", r.Dir, r.Module)
	width := 0
	for _, f := range r.Files {
		width = max(width, len(f.Name))
	}
	for _, f := range r.Files {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, f.Name, f.Purpose)
	}
	switch {
	case r.Toolkit != "":
		fmt.Fprintf(&b, "It builds offline against the toolkit at %s (replace directive in go.mod).\n", r.Toolkit)
	case r.Offline:
		fmt.Fprintf(&b, "It requires toolkit %s, which is in the module cache: it builds offline.\n", r.Version)
	default:
		fmt.Fprintf(&b, "No toolkit checkout was found (give -toolkit DIR to use one), so it requires the published module %s.\n", toolkitModule)
	}
	fmt.Fprintf(&b, "\nNext steps:\n  cd %s\n", r.Dir)
	if !r.Offline {
		b.WriteString("  go mod tidy                       # fetch the toolkit (needs the network)\n")
	}
	b.WriteString("  go test ./...                     # end-to-end test on embedded localmesos and etcd\n")
	b.WriteString("  go run . --config config.json     # run on embedded defaults; REST API on http://127.0.0.1:5656\n")
	b.WriteString("then implement the workload in workload.go (start at the TODOs).\n")
	return b.String()
}
