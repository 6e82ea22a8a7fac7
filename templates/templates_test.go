package templates

import (
	"io/fs"
	"strings"
	"testing"
	"text/template"
)

// Every template parses (with the functions codegen gives them) and is
// named after the file it becomes.
func TestTemplatesParse(t *testing.T) {
	funcs := template.FuncMap{"quote": func(string) string { return "" }, "json": func(string) string { return "" }}
	var names []string
	err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, path)
		if !strings.HasSuffix(path, ".tmpl") || strings.Contains(path, "/") {
			t.Errorf("%s: want a top-level file named <generated file>.tmpl", path)
		}
		text, err := fs.ReadFile(FS(), path)
		if err != nil {
			return err
		}
		if _, err := template.New(path).Funcs(funcs).Parse(string(text)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"main.go.tmpl", "workload.go.tmpl", "workload_test.go.tmpl", "config.json.tmpl", "Makefile.tmpl", "README.md.tmpl", "go.mod.tmpl", "gitignore.tmpl"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("FS() has no %s; it has %q", want, names)
		}
	}
}
