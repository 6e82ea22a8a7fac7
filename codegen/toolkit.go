package codegen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// replacedVersion is the version a requirement carries when a replace
// directive supplies the module (what the go command writes itself).
const replacedVersion = "v0.0.0-00010101000000-000000000000"

// toolkit is what the project's go.mod and go.sum need to know about the
// toolkit it builds against.
type toolkit struct {
	// Dir is the checkout the project's replace directive points at; empty
	// when the project requires a published version instead.
	Dir string
	// Version is the toolkit version the project requires; empty when
	// unknown (go mod tidy then resolves the latest).
	Version string
	// GoVersion and Toolchain are the go and toolchain lines.
	GoVersion string
	Toolchain string
	// Requires, Replaces and Excludes are copied from the toolkit's go.mod;
	// Replaces and Excludes as go.mod text after the keyword.
	Requires []requirement
	Replaces []string
	Excludes []string
	// GoSum is the project's go.sum; nil when there is none to give, and
	// the project then needs the network (go mod tidy) before it builds.
	GoSum []byte
	// Found says where the toolkit came from, for the summary.
	Found string
}

type requirement struct {
	Path, Version string
}

// FindToolkit looks for a checkout of the toolkit: from each start directory
// upwards, the first directory whose go.mod declares module
// github.com/mesos-stateful/stateful. It returns "" when there is none.
func FindToolkit(starts ...string) string {
	for _, start := range starts {
		if start == "" || !filepath.IsAbs(start) {
			continue
		}
		for dir := filepath.Clean(start); ; dir = filepath.Dir(dir) {
			if isToolkit(dir) {
				return dir
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return ""
}

// sourceDir is the directory of this file when codegen was built: inside
// the checkout (or module cache copy) it was built from, unless it was
// built with -trimpath.
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	return filepath.Dir(file)
}

// isToolkit reports whether dir/go.mod declares the toolkit's module.
func isToolkit(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	return modulePath(data) == toolkitModule
}

// modulePath returns the path on go.mod's module line ("" if none).
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '"') {
			continue
		}
		rest = strings.TrimSpace(rest)
		if p, err := strconv.Unquote(rest); err == nil {
			return p
		}
		return rest
	}
	return ""
}

// modFile is the part of `go mod edit -json` codegen reads.
type modFile struct {
	Module    struct{ Path string }
	Go        string
	Toolchain string
	Require   []struct {
		Path, Version string
	}
	Exclude []modVersion
	Replace []struct {
		Old, New modVersion
	}
}

type modVersion struct {
	Path, Version string
}

// loadToolkit reads the toolkit at dir: its go.mod (parsed by the go
// command, which every user of codegen has) and go.sum.
func loadToolkit(ctx context.Context, dir string) (*toolkit, error) {
	gomod := filepath.Join(dir, "go.mod")
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json", gomod)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read %s with go mod edit: %w: %s", gomod, err, strings.TrimSpace(stderr.String()))
	}
	var mf modFile
	if err := json.Unmarshal(out, &mf); err != nil {
		return nil, fmt.Errorf("read %s: go mod edit -json: %w", gomod, err)
	}
	if mf.Module.Path != toolkitModule {
		return nil, fmt.Errorf("%s is module %q, not the toolkit %s", gomod, mf.Module.Path, toolkitModule)
	}
	tk := &toolkit{Dir: dir, Version: replacedVersion, GoVersion: mf.Go, Toolchain: mf.Toolchain, Found: dir}
	if tk.GoVersion == "" {
		tk.GoVersion = localGoVersion()
	}
	for _, r := range mf.Require {
		tk.Requires = append(tk.Requires, requirement{Path: r.Path, Version: r.Version})
	}
	// One sorted block, as go mod tidy writes indirect requirements.
	slices.SortFunc(tk.Requires, func(a, b requirement) int { return strings.Compare(a.Path, b.Path) })
	for _, e := range mf.Exclude {
		tk.Excludes = append(tk.Excludes, modToken(e.Path)+" "+e.Version)
	}
	for _, r := range mf.Replace {
		tk.Replaces = append(tk.Replaces, replaceLine(dir, r.Old, r.New))
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		sum = []byte{}
	case err != nil:
		return nil, fmt.Errorf("read the toolkit's go.sum: %w", err)
	}
	tk.GoSum = sum
	if err := tk.preferModuleCache(dir); err != nil {
		return nil, err
	}
	return tk, nil
}

// replaceLine is one of the toolkit's replace directives as the project
// must say it: a directory relative to the toolkit becomes absolute.
func replaceLine(toolkitDir string, old, new modVersion) string {
	line := modToken(old.Path)
	if old.Version != "" {
		line += " " + old.Version
	}
	target := new.Path
	if new.Version == "" && !filepath.IsAbs(target) {
		target = filepath.Join(toolkitDir, target)
	}
	line += " => " + modToken(target)
	if new.Version != "" {
		line += " " + new.Version
	}
	return line
}

// preferModuleCache turns a toolkit found in the module cache (codegen
// installed with go install ...@version) into a requirement of that version:
// a replace pointing into the cache would break when the cache is cleaned.
// The go.sum then needs the toolkit's own hashes, which the cache keeps. When
// they are missing the replace stays.
func (tk *toolkit) preferModuleCache(dir string) error {
	base := filepath.Base(dir)
	version, ok := strings.CutPrefix(base, "stateful@")
	if !ok || filepath.Base(filepath.Dir(dir)) != "mesos-stateful" || filepath.Base(filepath.Dir(filepath.Dir(dir))) != "github.com" {
		return nil
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(dir)))
	download := filepath.Join(root, "cache", "download", "github.com", "mesos-stateful", "stateful", "@v")
	ziphash, err := os.ReadFile(filepath.Join(download, version+".ziphash"))
	if err != nil {
		return nil
	}
	mod, err := os.ReadFile(filepath.Join(download, version+".mod"))
	if err != nil {
		return nil
	}
	var sum bytes.Buffer
	sum.Write(tk.GoSum)
	fmt.Fprintf(&sum, "%s %s %s\n", toolkitModule, version, strings.TrimSpace(string(ziphash)))
	fmt.Fprintf(&sum, "%s %s/go.mod %s\n", toolkitModule, version, goModHash(mod))
	tk.GoSum = sum.Bytes()
	tk.Dir = ""
	tk.Version = version
	return nil
}

// goModHash is the go.sum hash of a go.mod file: the go command's "h1"
// directory hash of a tree holding just that file.
func goModHash(data []byte) string {
	file := sha256.Sum256(data)
	tree := sha256.Sum256(fmt.Appendf(nil, "%x  go.mod\n", file))
	return "h1:" + base64.StdEncoding.EncodeToString(tree[:])
}

// publishedToolkit is the fallback when no toolkit is on this machine: the
// project requires the version codegen was built from, if it is a release,
// and needs the network once (go mod tidy) to fetch it.
func publishedToolkit() *toolkit {
	tk := &toolkit{GoVersion: localGoVersion()}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == toolkitModule && strings.HasPrefix(bi.Main.Version, "v") {
		tk.Version = bi.Main.Version
	}
	return tk
}

// localGoVersion is the version of the Go that built codegen, as a go line
// ("1.26.8"), or "1.26" for a development toolchain.
func localGoVersion() string {
	v, ok := strings.CutPrefix(runtime.Version(), "go")
	if !ok || strings.ContainsAny(v, " -+") {
		return "1.26"
	}
	return v
}

// modToken quotes s for go.mod when it is not a plain token.
func modToken(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'`\\()[]{},") || strings.Contains(s, "//") || strings.Contains(s, "=>") {
		return strconv.Quote(s)
	}
	return s
}
