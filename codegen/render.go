package codegen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/mesos-stateful/stateful/templates"
)

// projectFile is one file of a generated project.
type projectFile struct {
	// Name is the file's name in the project directory.
	Name string
	// Template names its template in templates.FS(); empty for go.sum,
	// which is copied from the toolkit.
	Template string
	// Purpose says what the file is, for the summary.
	Purpose string
}

// projectFiles lists the files of a project in the order they are written
// and listed; go.sum comes last, and only when there is one to give.
func projectFiles() []projectFile {
	return []projectFile{
		{Name: "workload.go", Template: "workload.go.tmpl", Purpose: "your workload: Defaults, Config and the callbacks (start at the TODOs)"},
		{Name: "workload_test.go", Template: "workload_test.go.tmpl", Purpose: "end-to-end test on embedded localmesos and etcd"},
		{Name: "main.go", Template: "main.go.tmpl", Purpose: "calls framework.Main (generated, do not edit)"},
		{Name: "config.json", Template: "config.json.tmpl", Purpose: "every setting with its default (--config config.json)"},
		{Name: "Makefile", Template: "Makefile.tmpl", Purpose: "make build, make test, make run"},
		{Name: "README.md", Template: "README.md.tmpl", Purpose: "how to run and test it"},
		{Name: ".gitignore", Template: "gitignore.tmpl", Purpose: "ignores binaries and stateful-data/"},
		{Name: "go.mod", Template: "go.mod.tmpl", Purpose: "the module"},
		{Name: "go.sum", Purpose: "the toolkit's checksums, so the build needs no network"},
	}
}

// project is everything a project's files are rendered from: the data
// every template sees.
type project struct {
	// Name is the framework name as given (MySQL); Type the workload's Go
	// type (MySQL); Dir the lower-cased name (mysql): the directory, the
	// binary and the framework's default --name.
	Name, Type, Dir string
	// PortEnv is the environment variable that holds the port's number in
	// every task (STATEFUL_PORT_MYSQL).
	PortEnv string
	// Port is the name of the workload's port (mysql) and PortConst the Go
	// constant that holds it (mysqlPort).
	Port, PortConst string
	// Module is the project's module path.
	Module string
	// Image is the default Docker image; empty for none.
	Image string
	// Invocation is the codegen command line that makes these files.
	Invocation string
	// GoBuildBinary is what go build names the binary: the module path's
	// last element.
	GoBuildBinary string

	// go.mod: the go and toolchain lines, the toolkit version required, the
	// toolkit's requirements, replace (a go.mod token) and ToolkitDir (for
	// people) when building against a checkout, and the toolkit's own
	// replace and exclude directives.
	GoVersion, Toolchain string
	StatefulVersion      string
	Requires             []requirement
	Replace, ToolkitDir  string
	ExtraReplaces        []string
	Excludes             []string
	// Offline says the project comes with a go.sum and builds without the
	// network.
	Offline bool

	goSum []byte
}

// newProject derives a project's data from checked options and a toolkit.
func newProject(name, module, image string, tk *toolkit) *project {
	lower := strings.ToLower(name)
	p := &project{
		Name:            name,
		Type:            typeName(name),
		Dir:             lower,
		PortEnv:         "STATEFUL_PORT_" + strings.ToUpper(name),
		Port:            lower,
		PortConst:       lower + "Port",
		Module:          module,
		Image:           image,
		Invocation:      invocation(name, module, image),
		GoBuildBinary:   path.Base(module),
		GoVersion:       tk.GoVersion,
		Toolchain:       tk.Toolchain,
		StatefulVersion: tk.Version,
		Requires:        tk.Requires,
		ExtraReplaces:   tk.Replaces,
		Excludes:        tk.Excludes,
		Offline:         tk.GoSum != nil,
		goSum:           tk.GoSum,
	}
	if tk.Dir != "" {
		p.Replace = modToken(filepath.ToSlash(tk.Dir))
		p.ToolkitDir = tk.Dir
	}
	return p
}

// invocation is the codegen command that makes a project's files, for
// their headers. -path, -toolkit and -force are left out: they say where,
// not what.
func invocation(name, module, image string) string {
	s := "codegen -name " + name + " -module " + module
	if image != "" {
		s += " -image " + image
	}
	return s
}

// renderedFile is a file's content, ready to write.
type renderedFile struct {
	projectFile
	Data []byte
}

// render renders every file of p in memory. Go files are gofmt'ed; a
// template that does not render, or renders Go that does not parse, is an
// error (a bug in the templates, which the tests catch).
func render(p *project) ([]renderedFile, error) {
	fsys := templates.FS()
	funcs := template.FuncMap{
		"quote": strconv.Quote,
		"json": func(s string) (string, error) {
			b, err := json.Marshal(s)
			return string(b), err
		},
	}
	var files []renderedFile
	for _, pf := range projectFiles() {
		if pf.Template == "" {
			if p.goSum != nil {
				files = append(files, renderedFile{projectFile: pf, Data: p.goSum})
			}
			continue
		}
		text, err := fs.ReadFile(fsys, pf.Template)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", pf.Template, err)
		}
		tmpl, err := template.New(pf.Template).Funcs(funcs).Option("missingkey=error").Parse(string(text))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", pf.Template, err)
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, p); err != nil {
			return nil, fmt.Errorf("template %s: %w", pf.Template, err)
		}
		data := out.Bytes()
		if strings.HasSuffix(pf.Name, ".go") {
			if data, err = format.Source(data); err != nil {
				return nil, fmt.Errorf("template %s renders Go that gofmt rejects: %w", pf.Template, err)
			}
		}
		files = append(files, renderedFile{projectFile: pf, Data: data})
	}
	return files, nil
}
