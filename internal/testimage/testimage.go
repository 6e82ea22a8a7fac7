// Package testimage builds Docker images on the local engine for tests, CI
// and examples, where no registry is reachable: each image is FROM scratch
// and holds host binaries together with the shared libraries they load, so
// it runs without a distribution inside.
//
// Builds are idempotent and quick to repeat: the build context is assembled
// deterministically in memory, its SHA-256 is stored in the image's
// LabelContentHash, and an image whose label matches is not built again.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/golang/glog"
	"github.com/mesos-stateful/stateful/dockerlib"
)

// LabelContentHash holds the SHA-256 of the build context an image was built
// from.
const LabelContentHash = "io.stateful.testimage.content-hash"

// ErrNotInstalled is wrapped when a host program a recipe needs is missing;
// tests skip on it.
var ErrNotInstalled = errors.New("not installed on this host")

// Engine is what building needs from a Docker engine; *dockerlib.Client
// has it.
type Engine interface {
	InspectImage(ctx context.Context, ref string) (dockerlib.ImageInfo, error)
	BuildImage(ctx context.Context, tag string, buildContext io.Reader, labels map[string]string) (dockerlib.ImageInfo, error)
	RemoveImage(ctx context.Context, ref string) error
}

// Spec describes the content of a scratch image.
type Spec struct {
	// Binaries are host executables (absolute paths, or names looked up in
	// PATH). Each is copied to the same path in the image, with symlinks
	// resolved but the name kept (some programs, like redis-server, look at
	// their name), together with every shared library ldd reports and the
	// dynamic loader.
	Binaries []string
	// Files are further files to put in the image.
	Files []File
	// Dirs are empty directories to create, e.g. /tmp (mode 1777).
	Dirs []Dir
	// Entrypoint and Cmd are the image's defaults.
	Entrypoint []string
	Cmd        []string
	// Env is set in the image. When Binaries need shared libraries,
	// LD_LIBRARY_PATH is set to their directories unless Env sets it.
	Env        map[string]string
	WorkingDir string
}

// File is one file of an image: copied from HostPath (symlinks resolved) or
// made of Data.
type File struct {
	// Path is the absolute path in the image.
	Path     string
	HostPath string
	Data     []byte
	// Mode is the permission bits; 0 takes the host file's, or 0644 for Data.
	Mode fs.FileMode
}

// Dir is an empty directory of an image.
type Dir struct {
	Path string
	// Mode is the permission bits, with fs.ModeSticky allowed; 0 means 0755.
	Mode fs.FileMode
}

// Build makes sure image name (e.g. "stateful-test/redis:latest") holds
// exactly what spec describes, building it when it is missing or its content
// hash differs, and then removing the image it replaced when no container
// uses it.
func Build(ctx context.Context, eng Engine, name string, spec Spec) error {
	buildCtx, hash, err := buildContext(spec)
	if err != nil {
		return fmt.Errorf("testimage %s: %w", name, err)
	}
	old, err := eng.InspectImage(ctx, name)
	switch {
	case err == nil && old.Labels[LabelContentHash] == hash:
		glog.V(1).Infof("testimage: %s is up to date (%s)", name, hash[:12])
		return nil
	case err != nil && !dockerlib.IsNotFound(err):
		return fmt.Errorf("testimage %s: %w", name, err)
	}
	start := time.Now()
	built, err := eng.BuildImage(ctx, name, bytes.NewReader(buildCtx), map[string]string{LabelContentHash: hash})
	if err != nil {
		return fmt.Errorf("testimage %s: %w", name, err)
	}
	glog.Infof("testimage: built %s (%s, %d bytes of context) in %v", name, hash[:12], len(buildCtx), time.Since(start).Round(time.Millisecond))
	if old.ID != "" && old.ID != built.ID {
		if err := eng.RemoveImage(ctx, old.ID); err != nil {
			glog.Warningf("testimage: keeping replaced image of %s: %v", name, err)
		}
	}
	return nil
}

// entry is one member of the image's root filesystem.
type entry struct {
	mode fs.FileMode // permission bits plus fs.ModeDir / fs.ModeSticky
	data []byte
}

// buildContext assembles the tar build context (a Dockerfile and rootfs/)
// and returns it with its SHA-256. The same spec and host files always give
// the same bytes: entries are sorted and carry fixed owners and times.
func buildContext(spec Spec) ([]byte, string, error) {
	root := map[string]entry{}
	add := func(p string, e entry) error {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("image path %q must be absolute, clean and not /", p)
		}
		if prev, ok := root[p]; ok && (prev.mode != e.mode || !bytes.Equal(prev.data, e.data)) {
			return fmt.Errorf("image path %s given twice with different content", p)
		}
		root[p] = e
		return nil
	}

	libDirs := map[string]bool{}
	for _, b := range spec.Binaries {
		bin, err := lookBinary(b)
		if err != nil {
			return nil, "", err
		}
		data, mode, err := readResolved(bin)
		if err != nil {
			return nil, "", err
		}
		if err := add(bin, entry{mode: mode, data: data}); err != nil {
			return nil, "", err
		}
		libs, err := sharedLibraries(bin)
		if err != nil {
			return nil, "", err
		}
		for _, lib := range libs {
			data, mode, err := readResolved(lib)
			if err != nil {
				return nil, "", err
			}
			if err := add(lib, entry{mode: mode, data: data}); err != nil {
				return nil, "", err
			}
			libDirs[path.Dir(lib)] = true
		}
	}
	for _, f := range spec.Files {
		e := entry{mode: f.Mode.Perm(), data: f.Data}
		switch {
		case f.HostPath != "" && f.Data != nil:
			return nil, "", fmt.Errorf("file %s: give HostPath or Data, not both", f.Path)
		case f.HostPath != "":
			data, mode, err := readResolved(f.HostPath)
			if err != nil {
				return nil, "", err
			}
			e.data = data
			if e.mode == 0 {
				e.mode = mode
			}
		case e.mode == 0:
			e.mode = 0o644
		}
		if err := add(f.Path, e); err != nil {
			return nil, "", err
		}
	}
	for _, d := range spec.Dirs {
		mode := d.Mode & (fs.ModePerm | fs.ModeSticky)
		if mode == 0 {
			mode = 0o755
		}
		if err := add(d.Path, entry{mode: fs.ModeDir | mode}); err != nil {
			return nil, "", err
		}
	}
	// Parents the spec did not name become plain 0755 directories.
	for p := range root {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if e, ok := root[dir]; ok {
				if !e.mode.IsDir() {
					return nil, "", fmt.Errorf("image path %s is a file and a directory", dir)
				}
				continue
			}
			root[dir] = entry{mode: fs.ModeDir | 0o755}
		}
	}

	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	if _, set := env["LD_LIBRARY_PATH"]; !set && len(libDirs) > 0 {
		// Without /etc/ld.so.cache the loader searches only its built-in
		// directories; naming them keeps libraries from anywhere loadable.
		env["LD_LIBRARY_PATH"] = strings.Join(sortedKeys(libDirs), ":")
	}
	dockerfile, err := renderDockerfile(spec, env)
	if err != nil {
		return nil, "", err
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	fixed := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Uid, h.Gid, h.Format = fixed, 0, 0, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := write(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg}, []byte(dockerfile)); err != nil {
		return nil, "", fmt.Errorf("build context: %w", err)
	}
	for _, p := range sortedKeys(root) {
		e := root[p]
		h := &tar.Header{Name: "rootfs" + p, Mode: int64(e.mode.Perm()), Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if e.mode.IsDir() {
			h.Name += "/"
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := write(h, e.data); err != nil {
			return nil, "", fmt.Errorf("build context: %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("build context: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

func renderDockerfile(spec Spec, env map[string]string) (string, error) {
	var b strings.Builder
	b.WriteString("FROM scratch\nCOPY rootfs/ /\n")
	for _, k := range sortedKeys(env) {
		if k == "" || strings.ContainsAny(k, "= \t\n\"\\") || strings.ContainsAny(env[k], "\n") {
			return "", fmt.Errorf("env %q: name must be a plain word and the value one line", k)
		}
		v, _ := json.Marshal(env[k]) // a JSON string is a valid quoted ENV value
		fmt.Fprintf(&b, "ENV %s=%s\n", k, v)
	}
	if spec.WorkingDir != "" {
		if !path.IsAbs(spec.WorkingDir) || strings.ContainsAny(spec.WorkingDir, "\n") {
			return "", fmt.Errorf("working dir %q must be an absolute path", spec.WorkingDir)
		}
		fmt.Fprintf(&b, "WORKDIR %s\n", spec.WorkingDir)
	}
	for _, instr := range []struct {
		name string
		argv []string
	}{{"ENTRYPOINT", spec.Entrypoint}, {"CMD", spec.Cmd}} {
		if instr.argv == nil {
			continue
		}
		j, err := json.Marshal(instr.argv)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s %s\n", instr.name, j)
	}
	return b.String(), nil
}

func lookBinary(name string) (string, error) {
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("binary %s: %w", name, ErrNotInstalled)
			}
			return "", fmt.Errorf("binary %s: %w", name, err)
		}
		return filepath.Clean(name), nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("binary %s: %w (%v)", name, ErrNotInstalled, err)
	}
	return filepath.Abs(p)
}

// readResolved reads a file through any symlinks and returns its content and
// permission bits.
func readResolved(p string) ([]byte, fs.FileMode, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", p, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("read %s: not a regular file", p)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", p, err)
	}
	return data, st.Mode().Perm(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
