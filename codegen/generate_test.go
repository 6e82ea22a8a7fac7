package codegen

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the toolkit checkout these tests run in.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := FindToolkit(wd)
	if root == "" {
		t.Fatalf("no toolkit checkout above %s", wd)
	}
	return root
}

func TestGenerate(t *testing.T) {
	root := repoRoot(t)
	parent := t.TempDir()
	res, err := Generate(context.Background(), Options{Name: "MySQL", Path: parent, Toolkit: root})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "mysql")
	if res.Dir != dir || res.Module != "example.com/mysql-framework" || res.Toolkit != root || !res.Offline {
		t.Errorf("Result = %+v, want dir %s, module example.com/mysql-framework, toolkit %s, offline", res, dir, root)
	}
	var names []string
	for _, f := range res.Files {
		names = append(names, f.Name)
		if f.Purpose == "" {
			t.Errorf("%s has no purpose for the summary", f.Name)
		}
	}
	want := []string{"workload.go", "workload_test.go", "main.go", "config.json", "Makefile", "README.md", ".gitignore", "go.mod", "go.sum"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("files %q, want %q", names, want)
	}
	snap := snapshot(t, parent)
	if len(snap) != len(want)+2 {
		t.Errorf("%s holds %d entries, want the project directory and its %d files: %q", parent, len(snap), len(want), snap)
	}

	// go.sum is the toolkit's; go.mod replaces the toolkit with the
	// checkout and requires everything the toolkit requires.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if snap["mysql/go.sum"] != string(sum) {
		t.Errorf("go.sum is not the toolkit's")
	}
	gomod := snap["mysql/go.mod"]
	if !strings.Contains(gomod, "\nreplace github.com/mesos-stateful/stateful => "+root+"\n") {
		t.Errorf("go.mod does not replace the toolkit with %s:\n%s", root, gomod)
	}
	for _, req := range toolkitRequires(t, root) {
		if !strings.Contains(gomod, "\t"+req+" // indirect\n") {
			t.Errorf("go.mod lacks the toolkit's requirement %s", req)
		}
	}

	summary := res.Summary()
	for _, s := range []string{dir, "example.com/mysql-framework", "workload.go", "go test ./...", "go run . --config config.json", "cd " + dir, root} {
		if !strings.Contains(summary, s) {
			t.Errorf("summary does not mention %q:\n%s", s, summary)
		}
	}
}

// toolkitRequires returns the "path version" requirements of root/go.mod.
func toolkitRequires(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var reqs []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			in = true
		case line == ")":
			in = false
		case in:
			line, _, _ = strings.Cut(line, "//")
			reqs = append(reqs, strings.Join(strings.Fields(line), " "))
		}
	}
	if len(reqs) == 0 {
		t.Fatalf("found no requirements in %s/go.mod", root)
	}
	return reqs
}

func TestGenerateRefusesBadInput(t *testing.T) {
	root := repoRoot(t)
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	mustWrite(t, file, "x\n")
	before := snapshot(t, parent)
	for _, tc := range []struct {
		what string
		opts Options
		want string
	}{
		{"no name", Options{Path: parent}, "no framework name"},
		{"dash", Options{Name: "my-sql", Path: parent}, "letters and digits starting with a letter"},
		{"underscore", Options{Name: "my_sql", Path: parent}, "letters and digits starting with a letter"},
		{"digit first", Options{Name: "9s", Path: parent}, "letters and digits starting with a letter"},
		{"bad module", Options{Name: "MySQL", Path: parent, Module: "example.com/my sql"}, "module path"},
		{"toolkit module", Options{Name: "MySQL", Path: parent, Module: toolkitModule + "/mysql"}, "inside the toolkit"},
		{"bad image", Options{Name: "MySQL", Path: parent, Image: "my image"}, "image"},
		{"missing path", Options{Name: "MySQL", Path: filepath.Join(parent, "nope")}, "does not exist"},
		{"path is a file", Options{Name: "MySQL", Path: file}, "not a directory"},
		{"not a toolkit", Options{Name: "MySQL", Path: parent, Toolkit: parent}, "no go.mod of module " + toolkitModule},
		{"project is a file", Options{Name: "File", Path: parent, Toolkit: root}, "not a directory"},
	} {
		_, err := Generate(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Generate = %v, want an error mentioning %q", tc.what, err, tc.want)
		}
	}
	sameSnapshot(t, "after refused generations", snapshot(t, parent), before)
}

func TestGenerateExistingProject(t *testing.T) {
	root := repoRoot(t)
	parent := t.TempDir()
	opts := Options{Name: "MySQL", Path: parent, Toolkit: root}
	if _, err := Generate(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	generated := snapshot(t, parent)
	workload := filepath.Join(parent, "mysql", "workload.go")
	mustWrite(t, workload, "package main // the author's work\n")
	mustWrite(t, filepath.Join(parent, "mysql", "mysql.go"), "package main\n")
	edited := snapshot(t, parent)

	_, err := Generate(context.Background(), opts)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "workload.go") || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("Generate over a project = %v, want ErrExists naming workload.go and -force", err)
	}
	sameSnapshot(t, "without -force", snapshot(t, parent), edited)

	opts.Force = true
	if _, err := Generate(context.Background(), opts); err != nil {
		t.Fatalf("Generate -force: %v", err)
	}
	generated["mysql/mysql.go"] = "package main\n" // the author's other files stay
	sameSnapshot(t, "with -force", snapshot(t, parent), generated)
}

// unwritableDir returns a directory this process cannot create files in,
// or skips the test.
func unwritableDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
	candidates := []string{dir}
	if os.Geteuid() == 0 {
		// Permissions do not stop root; sysfs refuses new directories.
		candidates = append(candidates, "/sys")
	}
	for _, c := range candidates {
		probe, err := os.MkdirTemp(c, "probe-")
		if err != nil {
			return c
		}
		_ = os.Remove(probe)
	}
	t.Skip("found no directory this process cannot write in (running as root without sysfs?)")
	return ""
}

func TestGenerateUnwritablePath(t *testing.T) {
	root := repoRoot(t)
	dir := unwritableDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Generate(context.Background(), Options{Name: "MySQL", Path: dir, Toolkit: root})
	if err == nil || !strings.Contains(err.Error(), "cannot write in "+dir) {
		t.Fatalf("Generate into %s = %v, want 'cannot write in %s'", dir, err, dir)
	}
	after, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(entries) {
		t.Errorf("%s had %d entries, has %d after a failed Generate", dir, len(entries), len(after))
	}
}

func TestFindToolkit(t *testing.T) {
	tree := t.TempDir()
	mustWrite(t, filepath.Join(tree, "kit", "go.mod"), "// the toolkit\nmodule github.com/mesos-stateful/stateful // here\n\ngo 1.26\n")
	mustWrite(t, filepath.Join(tree, "kit", "examples", "other", "go.mod"), "module example.com/other\n")
	mustWrite(t, filepath.Join(tree, "quoted", "go.mod"), "module \"github.com/mesos-stateful/stateful\"\n")
	mustWrite(t, filepath.Join(tree, "prefix", "go.mod"), "module github.com/mesos-stateful/stateful/v2\n")
	deep := filepath.Join(tree, "kit", "examples", "other", "cmd")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		starts []string
		want   string
	}{
		{[]string{deep}, filepath.Join(tree, "kit")},
		{[]string{filepath.Join(tree, "kit")}, filepath.Join(tree, "kit")},
		{[]string{filepath.Join(tree, "quoted")}, filepath.Join(tree, "quoted")},
		{[]string{filepath.Join(tree, "prefix")}, ""},
		{[]string{tree}, ""},
		{[]string{"", "relative/dir", tree, deep}, filepath.Join(tree, "kit")},
	} {
		if got := FindToolkit(tc.starts...); got != tc.want {
			t.Errorf("FindToolkit(%q) = %q, want %q", tc.starts, got, tc.want)
		}
	}
	// codegen's own source is inside the checkout it was built from.
	if got, want := FindToolkit(sourceDir()), repoRoot(t); got != want {
		t.Errorf("FindToolkit(sourceDir()) = %q, want %q", got, want)
	}
}

// A toolkit's replace of a directory relative to it becomes absolute in the
// project, which lives elsewhere.
func TestLoadToolkitDirectives(t *testing.T) {
	kit := t.TempDir()
	mustWrite(t, filepath.Join(kit, "go.mod"), `module github.com/mesos-stateful/stateful

go 1.26.8

toolchain go1.26.9

require (
	example.com/b v1.0.0
	example.com/a v1.2.0 // indirect
)

replace example.com/a => ./third_party/a

replace example.com/b v1.0.0 => example.com/c v1.1.0

exclude example.com/b v0.9.0
`)
	tk, err := loadToolkit(context.Background(), kit)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Dir != kit || tk.Version != replacedVersion || tk.GoVersion != "1.26.8" || tk.Toolchain != "go1.26.9" {
		t.Errorf("toolkit = %+v", tk)
	}
	if got := tk.Requires; len(got) != 2 || got[0] != (requirement{"example.com/a", "v1.2.0"}) || got[1] != (requirement{"example.com/b", "v1.0.0"}) {
		t.Errorf("Requires = %v, want a and b sorted", got)
	}
	wantReplaces := []string{"example.com/a => " + filepath.Join(kit, "third_party", "a"), "example.com/b v1.0.0 => example.com/c v1.1.0"}
	if strings.Join(tk.Replaces, "\n") != strings.Join(wantReplaces, "\n") {
		t.Errorf("Replaces = %q, want %q", tk.Replaces, wantReplaces)
	}
	if len(tk.Excludes) != 1 || tk.Excludes[0] != "example.com/b v0.9.0" {
		t.Errorf("Excludes = %q", tk.Excludes)
	}
	if tk.GoSum == nil || len(tk.GoSum) != 0 {
		t.Errorf("GoSum = %q, want empty (the toolkit has none) but present", tk.GoSum)
	}
}

// codegen installed with go install ...@version finds its source in the
// module cache: the project then requires that version, with go.sum lines
// for it from the cache, instead of replacing it with a cache directory.
func TestLoadToolkitFromModuleCache(t *testing.T) {
	root := repoRoot(t)
	cache := t.TempDir()
	const version = "v1.2.3"
	kit := filepath.Join(cache, "github.com", "mesos-stateful", "stateful@"+version)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(kit, "go.mod"), string(gomod))
	mustWrite(t, filepath.Join(kit, "go.sum"), "example.com/a v1.0.0 h1:x=\n")
	download := filepath.Join(cache, "cache", "download", "github.com", "mesos-stateful", "stateful", "@v")
	mustWrite(t, filepath.Join(download, version+".ziphash"), "h1:zip=\n")
	mustWrite(t, filepath.Join(download, version+".mod"), string(gomod))

	tk, err := loadToolkit(context.Background(), kit)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Dir != "" || tk.Version != version {
		t.Errorf("toolkit dir %q version %q, want no replace and version %s", tk.Dir, tk.Version, version)
	}
	wantSum := "example.com/a v1.0.0 h1:x=\n" +
		toolkitModule + " " + version + " h1:zip=\n" +
		toolkitModule + " " + version + "/go.mod " + goModHash(gomod) + "\n"
	if string(tk.GoSum) != wantSum {
		t.Errorf("go.sum =\n%s\nwant\n%s", tk.GoSum, wantSum)
	}

	// Without the cache's hashes the replace stays.
	if err := os.Remove(filepath.Join(download, version+".ziphash")); err != nil {
		t.Fatal(err)
	}
	if tk, err = loadToolkit(context.Background(), kit); err != nil {
		t.Fatal(err)
	}
	if tk.Dir != kit || tk.Version != replacedVersion {
		t.Errorf("without hashes: toolkit dir %q version %q, want the replace", tk.Dir, tk.Version)
	}
}

// goModHash must agree with the go command: check it against a go.mod in
// the module cache and the toolkit's go.sum line for it.
func TestGoModHash(t *testing.T) {
	root := repoRoot(t)
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	cache := strings.TrimSpace(string(out))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(string(sum), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasSuffix(f[1], "/go.mod") || strings.ContainsAny(f[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			continue
		}
		version := strings.TrimSuffix(f[1], "/go.mod")
		data, err := os.ReadFile(filepath.Join(cache, "cache", "download", f[0], "@v", version+".mod"))
		if err != nil {
			continue
		}
		if got := goModHash(data); got != f[2] {
			t.Errorf("goModHash(%s %s) = %s, go.sum says %s", f[0], version, got, f[2])
		}
		if checked++; checked == 5 {
			break
		}
	}
	if checked == 0 {
		t.Skipf("no go.mod of the toolkit's go.sum is in the module cache %s", cache)
	}
}
