// Package framework, as the generated project uses it: the contract between
// the templates and the toolkit's package framework, which does not exist
// yet. codegen's tests compile a generated project against this file (as a
// go build -overlay) only while the toolkit has no framework directory;
// once it has, they build against the real package instead.
package framework

import (
	"context"
	"errors"

	"github.com/mesos-stateful/stateful"
)

// Config is what Run needs. The generated test sets these fields (and
// relies on their types: untyped constants for LocalAgents and Runtime,
// string variables for HTTPAddr and DataDir).
type Config struct {
	HTTPAddr    string // --http, e.g. "127.0.0.1:5656"
	Master      string // --master: "local" or a master URL
	LocalAgents int    // --local-agents
	Etcd        string // --etcd: "embedded" or endpoints
	DataDir     string // --data-dir
	Runtime     string // --runtime: "auto", "docker" or "process"
	Name        string // --name
}

// NewConfig returns the defaults of DESIGN §7, as a value.
func NewConfig() Config { return Config{} }

// Run runs the scheduler in this process until ctx ends, then stops
// everything it started and returns nil or an error wrapping ctx.Err().
func Run(ctx context.Context, cfg Config, w stateful.Workload) error {
	return errors.New("contract stub")
}

// Main parses the flags (and --config FILE) and runs the scheduler, or the
// executor when executor.IsExecutorInvocation(os.Args).
func Main(w stateful.Workload) {}
