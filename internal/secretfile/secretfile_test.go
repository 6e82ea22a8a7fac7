package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadRefusesFilesOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode   os.FileMode
		errHas string
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, "mode 0640"},
		{0o644, "mode 0644"},
		{0o602, "mode 0602"},
	} {
		path := filepath.Join(dir, "s"+tc.mode.String())
		if err := os.WriteFile(path, []byte(" hunter2\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		got, err := ReadLine(path)
		if tc.errHas == "" {
			if err != nil || got != "hunter2" {
				t.Errorf("mode %04o: %q, %v", tc.mode, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), path) {
			t.Errorf("mode %04o: error %v, want one naming the file and %q", tc.mode, err, tc.errHas)
		}
	}
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := ReadLine(empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "root-password")
	first, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 48 {
		t.Errorf("generated %d characters, want 48", len(first))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %04o, want 0600", st.Mode().Perm())
	}
	again, err := LoadOrCreate(path)
	if err != nil || again != first {
		t.Errorf("second load: %q, %v; want the first secret", again, err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("a secret file made world-readable was used")
	}
}
