package codegen

import (
	"encoding/json"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mesos-stateful/stateful/framework"
)

// TestConfigJSONIsTheFrameworksDefaults checks the generated config.json
// against the real framework: it names every setting the framework reads
// from --config (its flags) and nothing else, and loading it with the
// framework's own loader changes no default, given that main.go makes the
// project's name the default --name.
func TestConfigJSONIsTheFrameworksDefaults(t *testing.T) {
	p := goldenProjects()["mysql"]
	files, err := render(p)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for _, f := range files {
		if f.Name == "config.json" {
			data = f.Data
		}
	}
	var settings map[string]any
	if err := json.Unmarshal(data, &settings); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}

	// The defaults of the generated main.go.
	newFlags := func() *flag.FlagSet {
		cfg := framework.NewConfig()
		cfg.Name = p.Dir
		fs := flag.NewFlagSet("config", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		return fs
	}
	defaults, loaded := newFlags(), newFlags()

	var flags []string
	defaults.VisitAll(func(f *flag.Flag) {
		flags = append(flags, f.Name)
		if _, ok := settings[f.Name]; !ok {
			t.Errorf("config.json lacks the framework's setting %q (default %q)", f.Name, f.DefValue)
		}
	})
	for key := range settings {
		if !slices.Contains(flags, key) {
			t.Errorf("config.json has %q, which is no setting of the framework", key)
		}
	}

	file := filepath.Join(t.TempDir(), "config.json")
	mustWrite(t, file, string(data))
	if err := framework.LoadFile(loaded, file); err != nil {
		t.Fatalf("the framework does not load config.json: %v", err)
	}
	defaults.VisitAll(func(want *flag.Flag) {
		if got := loaded.Lookup(want.Name).Value.String(); got != want.Value.String() {
			t.Errorf("config.json sets %q to %q (as %v), the framework's default is %q", want.Name, got, settings[want.Name], want.Value.String())
		}
	})
}
