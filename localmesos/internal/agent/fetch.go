package agent

import (
	"archive/tar"
	"archive/zip"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The fetcher puts CommandInfo.uris into the sandbox before the executor
// starts, as src/launcher/fetcher.cpp does: local paths and file:// URIs
// are copied, http(s) is downloaded; executable files are made
// executable, archives are extracted (extract defaults to true), and
// output_file renames the result. Its log goes to the sandbox's stderr,
// as Mesos' fetcher output does.

func fetchAll(ctx context.Context, uris []mesos.CommandInfo_URI, sandbox string) error {
	for _, u := range uris {
		logf := func(format string, args ...any) {
			appendToFile(filepath.Join(sandbox, "stderr"), time.Now().Format("15:04:05.000000")+" fetcher: "+fmt.Sprintf(format, args...)+"\n")
		}
		logf("Fetching '%s' into the sandbox directory", u.Value)
		if err := fetchOne(ctx, u, sandbox); err != nil {
			logf("Failed to fetch '%s': %v", u.Value, err)
			return err
		}
		logf("Fetched '%s'", u.Value)
	}
	return nil
}

func fetchOne(ctx context.Context, u mesos.CommandInfo_URI, sandbox string) error {
	src := strings.TrimLeft(u.Value, " \t\n")
	if src == "" {
		return errors.New("empty URI")
	}
	name := u.GetOutputFile()
	if name == "" {
		base, err := uriBasename(src)
		if err != nil {
			return err
		}
		name = base
	}
	dest, err := inside(sandbox, name)
	if err != nil {
		return fmt.Errorf("output file %q: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("unable to create subdirectory in sandbox: %w", err)
	}
	if err := download(ctx, src, dest); err != nil {
		return err
	}
	if u.GetExecutable() {
		if err := os.Chmod(dest, 0o755); err != nil {
			return fmt.Errorf("failed to chmod executable '%s': %w", dest, err)
		}
		return nil
	}
	if u.GetExtract() {
		if _, err := extract(ctx, dest, sandbox); err != nil {
			return err
		}
	}
	return nil
}

// uriBasename is the file name a URI is fetched to by default.
func uriBasename(src string) (string, error) {
	p := src
	if i := strings.Index(src, "://"); i >= 0 {
		parsed, err := url.Parse(src)
		if err != nil {
			return "", fmt.Errorf("malformed URI '%s': %w", src, err)
		}
		p = parsed.Path
	}
	base := path.Base(p)
	if base == "/" || base == "." || base == "" {
		return "", fmt.Errorf("malformed URI '%s': no file name", src)
	}
	return base, nil
}

// inside joins name to dir and refuses names that leave dir.
func inside(dir, name string) (string, error) {
	p := filepath.Join(dir, filepath.Clean("/"+name))
	if p == dir {
		return "", errors.New("names the sandbox itself")
	}
	return p, nil
}

func download(ctx context.Context, src, dest string) error {
	scheme, rest, hasScheme := strings.Cut(src, "://")
	if !hasScheme {
		if !filepath.IsAbs(src) {
			return errors.New("a relative path was passed for the resource but the Mesos framework home was not specified. Please either provide this config option or avoid using a relative path")
		}
		return copyFile(src, dest)
	}
	switch strings.ToLower(scheme) {
	case "file":
		p := rest
		if u, err := url.Parse(src); err == nil && u.Path != "" {
			p = u.Path
		}
		return copyFile(p, dest)
	case "http", "https":
		return httpDownload(ctx, src, dest)
	}
	return fmt.Errorf("unsupported URI scheme '%s' (localmesos fetches file, http and https URIs)", scheme)
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("failed to copy '%s': %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("failed to copy '%s': is a directory", src)
	}
	return writeFile(dest, in, fi.Mode().Perm())
}

func writeFile(dest string, r io.Reader, mode os.FileMode) error {
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func httpDownload(ctx context.Context, src, dest string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return fmt.Errorf("error downloading resource: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("error downloading resource: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("error downloading resource, received HTTP return code %d", resp.StatusCode)
	}
	return writeFile(dest, resp.Body, 0o644)
}

// extract unpacks a recognised archive into dir and reports whether it was
// one.
func extract(ctx context.Context, file, dir string) (bool, error) {
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return fmt.Errorf("failed to extract archive '%s' to '%s': %w", file, dir, err)
	}
	switch {
	case strings.HasSuffix(file, ".tar"):
		return true, wrap(extractTarFile(file, dir, nil))
	case strings.HasSuffix(file, ".tgz"), strings.HasSuffix(file, ".tar.gz"):
		return true, wrap(extractTarFile(file, dir, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }))
	case strings.HasSuffix(file, ".tbz2"), strings.HasSuffix(file, ".tar.bz2"):
		return true, wrap(extractTarFile(file, dir, func(r io.Reader) (io.Reader, error) { return bzip2.NewReader(r), nil }))
	case strings.HasSuffix(file, ".txz"), strings.HasSuffix(file, ".tar.xz"):
		out, err := exec.CommandContext(ctx, "tar", "-xJf", file, "-C", dir).CombinedOutput()
		if err != nil {
			return true, wrap(fmt.Errorf("tar: %v: %s", err, strings.TrimSpace(string(out))))
		}
		return true, nil
	case strings.HasSuffix(file, ".zip"):
		return true, wrap(extractZip(file, dir))
	case strings.HasSuffix(file, ".gz"):
		in, err := os.Open(file)
		if err != nil {
			return true, wrap(err)
		}
		defer in.Close()
		zr, err := gzip.NewReader(in)
		if err != nil {
			return true, wrap(err)
		}
		return true, wrap(writeFile(filepath.Join(dir, strings.TrimSuffix(filepath.Base(file), ".gz")), zr, 0o644))
	}
	return false, nil
}

func extractTarFile(file, dir string, decompress func(io.Reader) (io.Reader, error)) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if decompress != nil {
		if r, err = decompress(f); err != nil {
			return err
		}
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		target, err := inside(dir, h.Name)
		if err != nil {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, dirMode(h.FileInfo().Mode())); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr, h.FileInfo().Mode().Perm()); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}

func extractZip(file, dir string) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		target, err := inside(dir, zf.Name)
		if err != nil {
			continue
		}
		if zf.FileInfo().IsDir() {
			if err := os.MkdirAll(target, dirMode(zf.Mode())); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		rc, err := zf.Open()
		if err != nil {
			return err
		}
		err = writeFile(target, rc, zf.Mode().Perm())
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func dirMode(m os.FileMode) os.FileMode {
	if p := m.Perm(); p != 0 {
		return p | 0o700
	}
	return 0o755
}
