package codegen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testFiles() []renderedFile {
	return []renderedFile{
		{projectFile: projectFile{Name: "a.go"}, Data: []byte("package a // new\n")},
		{projectFile: projectFile{Name: "b.txt"}, Data: []byte("b new\n")},
		{projectFile: projectFile{Name: "c.txt"}, Data: []byte("c new\n")},
	}
}

// snapshot returns every file under dir with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			files[rel+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(path)
		files[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sameSnapshot(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s appeared", what, k)
		}
	}
}

// failingRename is os.Rename that fails on its nth call (from 1).
func failingRename(n int) func(string, string) error {
	calls := 0
	return func(oldpath, newpath string) error {
		calls++
		if calls == n {
			return errors.New("injected rename failure")
		}
		return os.Rename(oldpath, newpath)
	}
}

func TestWriteFresh(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "proj")
	if err := (writer{rename: os.Rename}).write(dir, testFiles(), false); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "after write", snapshot(t, parent), map[string]string{
		"./": "", "proj/": "", "proj/a.go": "package a // new\n", "proj/b.txt": "b new\n", "proj/c.txt": "c new\n",
	})
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o055 != 0o055 {
		t.Errorf("project directory mode %v, want group and others to read it (umask permitting 0755)", info.Mode().Perm())
	}
}

// A failure leaves neither the project directory nor the staging
// directory behind.
func TestWriteFreshFailureLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	err := (writer{rename: failingRename(1)}).write(filepath.Join(parent, "proj"), testFiles(), false)
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("write = %v, want the injected failure", err)
	}
	sameSnapshot(t, "after a failed write", snapshot(t, parent), map[string]string{"./": ""})
}

func TestWriteExistingWithoutForce(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "proj")
	mustWrite(t, filepath.Join(dir, "b.txt"), "b mine\n")
	mustWrite(t, filepath.Join(dir, "notes.txt"), "mine\n")
	before := snapshot(t, parent)

	err := (writer{rename: os.Rename}).write(dir, testFiles(), false)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "b.txt") || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("write = %v, want ErrExists naming b.txt and -force", err)
	}
	sameSnapshot(t, "after a refused write", snapshot(t, parent), before)
}

// Into an existing directory without conflicts (e.g. after git init) is
// allowed; nothing of the author's is touched.
func TestWriteExistingNoConflict(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "proj")
	mustWrite(t, filepath.Join(dir, "notes.txt"), "mine\n")
	if err := (writer{rename: os.Rename}).write(dir, testFiles(), false); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "after write", snapshot(t, parent), map[string]string{
		"./": "", "proj/": "", "proj/a.go": "package a // new\n", "proj/b.txt": "b new\n", "proj/c.txt": "c new\n", "proj/notes.txt": "mine\n",
	})
}

func TestWriteExistingWithForce(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "proj")
	mustWrite(t, filepath.Join(dir, "b.txt"), "b mine\n")
	mustWrite(t, filepath.Join(dir, "notes.txt"), "mine\n")
	if err := (writer{rename: os.Rename}).write(dir, testFiles(), true); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, "after a forced write", snapshot(t, parent), map[string]string{
		"./": "", "proj/": "", "proj/a.go": "package a // new\n", "proj/b.txt": "b new\n", "proj/c.txt": "c new\n", "proj/notes.txt": "mine\n",
	})
}

// A failure at any step of a forced write into an existing project puts
// every file back as it was.
func TestWriteForceRollsBack(t *testing.T) {
	// Renames: a.go in; b.txt aside, b.txt in; c.txt aside, c.txt in.
	for n := 1; n <= 5; n++ {
		parent := t.TempDir()
		dir := filepath.Join(parent, "proj")
		mustWrite(t, filepath.Join(dir, "b.txt"), "b mine\n")
		mustWrite(t, filepath.Join(dir, "c.txt"), "c mine\n")
		mustWrite(t, filepath.Join(dir, "notes.txt"), "mine\n")
		before := snapshot(t, parent)

		err := (writer{rename: failingRename(n)}).write(dir, testFiles(), true)
		if err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "unchanged") {
			t.Fatalf("rename %d fails: write = %v, want the injected failure and 'unchanged'", n, err)
		}
		sameSnapshot(t, "after a failed forced write", snapshot(t, parent), before)
	}
}

func TestWriteTargetIsAFile(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "proj")
	mustWrite(t, dir, "a file\n")
	err := (writer{rename: os.Rename}).write(dir, testFiles(), true)
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("write = %v, want 'not a directory'", err)
	}
	sameSnapshot(t, "after write", snapshot(t, parent), map[string]string{"./": "", "proj": "a file\n"})
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
