package codegen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// writer puts a rendered project in place so that a failure leaves nothing
// half-written: every file is written into a staging directory beside the
// target first, then moved in by rename, which does not fail half-way.
type writer struct {
	// rename is os.Rename; tests replace it to fail at a chosen step.
	rename func(oldpath, newpath string) error
}

// ErrExists is wrapped by Generate's error when files of the project exist
// and Options.Force is not set.
var ErrExists = errors.New("files exist")

// conflicts returns the names of files that exist in dir.
func conflicts(dir string, files []renderedFile) ([]string, error) {
	var names []string
	for _, f := range files {
		_, err := os.Lstat(filepath.Join(dir, f.Name))
		switch {
		case err == nil:
			names = append(names, f.Name)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("check %s: %w", filepath.Join(dir, f.Name), err)
		}
	}
	return names, nil
}

// write creates dir holding files. When dir exists, files that exist in it
// are replaced only with force; other files in it are left alone. On error
// dir is as it was.
func (w writer) write(dir string, files []renderedFile, force bool) (err error) {
	fresh := false
	switch info, err := os.Lstat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		fresh = true
	case err != nil:
		return fmt.Errorf("check %s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if !fresh {
		existing, err := conflicts(dir, files)
		if err != nil {
			return err
		}
		if len(existing) > 0 && !force {
			return fmt.Errorf("%s already has %s: %w; give -force to overwrite them (workload.go too: commit your changes first)",
				dir, strings.Join(existing, ", "), ErrExists)
		}
	}

	parent := filepath.Dir(dir)
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".codegen-")
	if err != nil {
		return fmt.Errorf("cannot write in %s: %w", parent, err)
	}
	keepStage := false
	defer func() {
		if !keepStage {
			if rerr := os.RemoveAll(stage); rerr != nil && err == nil {
				err = fmt.Errorf("remove the staging directory: %w", rerr)
			}
		}
	}()

	staged := filepath.Join(stage, "new")
	if err := os.Mkdir(staged, 0o755); err != nil {
		return fmt.Errorf("cannot write in %s: %w", parent, err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(staged, f.Name), f.Data, 0o644); err != nil {
			return fmt.Errorf("cannot write in %s: %w", parent, err)
		}
	}

	if fresh {
		if err := w.rename(staged, dir); err != nil {
			return fmt.Errorf("move the project into %s: %w", dir, err)
		}
		return nil
	}

	// Into an existing directory, file by file: each existing file is first
	// moved aside into the staging directory, so that a failure can put
	// every file back as it was.
	backup := filepath.Join(stage, "old")
	if err := os.Mkdir(backup, 0o700); err != nil {
		return fmt.Errorf("cannot write in %s: %w", parent, err)
	}
	var undo []func() error
	rollback := func(cause error) error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if err := undo[i](); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			keepStage = true
			return fmt.Errorf("%w; putting %s back failed too, the original files are in %s: %w", cause, dir, backup, errors.Join(errs...))
		}
		return fmt.Errorf("%w (%s is unchanged)", cause, dir)
	}
	for _, f := range files {
		target := filepath.Join(dir, f.Name)
		saved := filepath.Join(backup, f.Name)
		if _, err := os.Lstat(target); err == nil {
			if err := w.rename(target, saved); err != nil {
				return rollback(fmt.Errorf("move %s aside: %w", target, err))
			}
			undo = append(undo, func() error { return os.Rename(saved, target) })
		}
		if err := w.rename(filepath.Join(staged, f.Name), target); err != nil {
			return rollback(fmt.Errorf("move %s into place: %w", target, err))
		}
		undo = append(undo, func() error { return os.Remove(target) })
	}
	return nil
}
