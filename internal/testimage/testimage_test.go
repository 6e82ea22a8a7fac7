package testimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseLdd(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffd5a3f2000)
	libatomic.so.1 => /lib/x86_64-linux-gnu/libatomic.so.1 (0x00007f88979c5000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8896a1e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f88979e2000)
	libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f88978df000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8896a1e000)
`
	got, err := parseLdd(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/lib/x86_64-linux-gnu/libatomic.so.1",
		"/lib/x86_64-linux-gnu/libc.so.6",
		"/lib64/ld-linux-x86-64.so.2",
		"/lib/x86_64-linux-gnu/libm.so.6",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseLdd = %q, want %q", got, want)
	}
	if _, err := parseLdd("\tlibfoo.so.1 => not found\n"); err == nil || !strings.Contains(err.Error(), "libfoo.so.1") {
		t.Errorf("missing library: err = %v, want it named", err)
	}
}

func TestSharedLibrariesOfHostBinaries(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	libs, err := sharedLibraries(sh)
	if err != nil {
		t.Fatal(err)
	}
	var hasLoader bool
	for _, l := range libs {
		if !filepath.IsAbs(l) {
			t.Errorf("library path %q is not absolute", l)
		}
		hasLoader = hasLoader || strings.Contains(l, "ld-linux")
	}
	if !hasLoader {
		t.Errorf("libraries of %s = %q: no dynamic loader", sh, libs)
	}
}

// untar reads a build context back into a map of name -> header and content.
func untar(t *testing.T, data []byte) map[string]struct {
	h    *tar.Header
	body string
} {
	t.Helper()
	out := map[string]struct {
		h    *tar.Header
		body string
	}{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = struct {
			h    *tar.Header
			body string
		}{h, string(b)}
	}
}

func TestBuildContext(t *testing.T) {
	dir := t.TempDir()
	hostFile := filepath.Join(dir, "real.conf")
	if err := os.WriteFile(hostFile, []byte("port 6379\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(hostFile, link); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Files: []File{
			{Path: "/etc/app/app.conf", HostPath: link},
			{Path: "/etc/motd", Data: []byte("hi")},
			{Path: "/bin/tool", Data: []byte("#!"), Mode: 0o755},
		},
		Dirs:       []Dir{{Path: "/tmp", Mode: 0o777 | os.ModeSticky}, {Path: "/data"}},
		Entrypoint: []string{"/bin/tool", "--flag"},
		Cmd:        []string{"arg with space"},
		Env:        map[string]string{"B": `quote " and \ back`, "A": "1"},
		WorkingDir: "/data",
	}
	data, hash, err := buildContext(spec)
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, data)

	wantDockerfile := `FROM scratch
COPY rootfs/ /
ENV A="1"
ENV B="quote \" and \\ back"
WORKDIR /data
ENTRYPOINT ["/bin/tool","--flag"]
CMD ["arg with space"]
`
	if got := files["Dockerfile"].body; got != wantDockerfile {
		t.Errorf("Dockerfile:\n%s\nwant:\n%s", got, wantDockerfile)
	}
	checks := []struct {
		name string
		mode int64
		typ  byte
		body string
	}{
		{"rootfs/etc/app/app.conf", 0o600, tar.TypeReg, "port 6379\n"}, // symlink resolved, name kept
		{"rootfs/etc/motd", 0o644, tar.TypeReg, "hi"},
		{"rootfs/bin/tool", 0o755, tar.TypeReg, "#!"},
		{"rootfs/tmp/", 0o1777, tar.TypeDir, ""},
		{"rootfs/data/", 0o755, tar.TypeDir, ""},
		{"rootfs/etc/", 0o755, tar.TypeDir, ""}, // parents appear on their own
		{"rootfs/etc/app/", 0o755, tar.TypeDir, ""},
	}
	for _, c := range checks {
		f, ok := files[c.name]
		if !ok {
			t.Errorf("%s missing from the context", c.name)
			continue
		}
		if f.h.Mode != c.mode || f.h.Typeflag != c.typ || f.body != c.body || f.h.Uid != 0 || f.h.Gid != 0 {
			t.Errorf("%s: mode %o type %c uid %d body %q; want mode %o type %c uid 0 body %q",
				c.name, f.h.Mode, f.h.Typeflag, f.h.Uid, f.body, c.mode, c.typ, c.body)
		}
	}

	again, hash2, err := buildContext(spec)
	if err != nil {
		t.Fatal(err)
	}
	if hash2 != hash || !bytes.Equal(again, data) {
		t.Error("the same spec gave a different context")
	}
	if err := os.WriteFile(hostFile, []byte("port 6380\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, hash3, err := buildContext(spec); err != nil || hash3 == hash {
		t.Errorf("a changed host file kept the hash (%v)", err)
	}
}

func TestBuildContextRejectsBadSpecs(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"relative path", Spec{Files: []File{{Path: "etc/x"}}}, "must be absolute"},
		{"root path", Spec{Dirs: []Dir{{Path: "/"}}}, "not /"},
		{"unclean path", Spec{Files: []File{{Path: "/a/../b"}}}, "clean"},
		{"both sources", Spec{Files: []File{{Path: "/x", HostPath: "/etc/hostname", Data: []byte("x")}}}, "not both"},
		{"conflicting content", Spec{Files: []File{{Path: "/x", Data: []byte("1")}, {Path: "/x", Data: []byte("2")}}}, "twice"},
		{"file under a file", Spec{Files: []File{{Path: "/x", Data: []byte("1")}, {Path: "/x/y", Data: []byte("2")}}}, "file and a directory"},
		{"missing host file", Spec{Files: []File{{Path: "/x", HostPath: "/no/such/file"}}}, "/no/such/file"},
		{"missing binary", Spec{Binaries: []string{"/no/such/binary"}}, "not installed"},
		{"bad env", Spec{Env: map[string]string{"A B": "x"}}, "env"},
		{"relative workdir", Spec{WorkingDir: "data"}, "working dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := buildContext(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("buildContext = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, _, err := buildContext(Spec{Binaries: []string{"/no/such/binary"}}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("missing binary: %v does not wrap ErrNotInstalled", err)
	}
}

func TestBuildContextOfABinaryCarriesItsLibraries(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this host")
	}
	libs, err := sharedLibraries(sh)
	if err != nil || len(libs) == 0 {
		t.Skipf("%s is not dynamically linked (%v)", sh, err)
	}
	data, _, err := buildContext(Spec{Binaries: []string{sh}})
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, data)
	for _, p := range append([]string{sh}, libs...) {
		f, ok := files["rootfs"+p]
		if !ok || f.h.Typeflag != tar.TypeReg || len(f.body) == 0 {
			t.Errorf("%s is not a regular, non-empty file in the context", p)
		}
	}
	if !strings.Contains(files["Dockerfile"].body, "ENV LD_LIBRARY_PATH=") {
		t.Errorf("Dockerfile sets no LD_LIBRARY_PATH:\n%s", files["Dockerfile"].body)
	}
	if st, err := os.Lstat(sh); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		t.Logf("%s is a symlink; its target's content was copied under its own name", sh)
	}
}
