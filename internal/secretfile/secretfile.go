// Package secretfile reads files that hold secrets (API tokens, Mesos and
// etcd passwords) and writes generated ones, refusing any such file that
// other users could read: a secret another account can read is no secret,
// and failing loudly is kinder than serving on a leaked one.
package secretfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxSize bounds a secret file: far more than any token list.
const MaxSize = 1 << 20

// Read returns the contents of the secret file at path. It fails, naming
// the file, unless path is a regular file that only its owner may read or
// write (mode 0600 or 0400).
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if err := checkMode(path, st); err != nil {
		return nil, err
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("secret file %s: larger than %d bytes", path, MaxSize)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	return data, nil
}

// ReadLine returns the secret file's contents without surrounding white
// space (the trailing newline editors add); an empty secret is an error.
func ReadLine(path string) (string, error) {
	data, err := Read(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("secret file %s: empty", path)
	}
	return s, nil
}

func checkMode(path string, st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("secret file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("secret file %s: mode %04o lets other users read or change it; want 0600 (chmod 600 %s)", path, perm, path)
	}
	return nil
}

// Generate returns n random bytes as hex, for a generated password.
func Generate(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("secretfile: crypto/rand failed: %v", err)) // never on Linux
	}
	return hex.EncodeToString(b)
}

// LoadOrCreate returns the secret kept in the file at path, creating the
// file (mode 0600) with a generated secret if it does not exist.
func LoadOrCreate(path string) (string, error) {
	s, err := ReadLine(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	s = Generate(24)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	_, err = f.WriteString(s + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	return s, nil
}
