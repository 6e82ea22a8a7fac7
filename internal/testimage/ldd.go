package testimage

import (
	"bytes"
	"fmt"
	"os/exec"
	"path"
	"strings"
)

// sharedLibraries lists the shared libraries and the dynamic loader that
// ldd reports for bin, as absolute paths; none for a static binary.
func sharedLibraries(bin string) ([]string, error) {
	cmd := exec.Command("ldd", bin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String() + stderr.String()
	if strings.Contains(out, "not a dynamic executable") || strings.Contains(out, "statically linked") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, strings.TrimSpace(out))
	}
	return parseLdd(stdout.String())
}

// parseLdd reads ldd's output. Lines look like
//
//	linux-vdso.so.1 (0x00007ffd...)                     kernel-provided, skipped
//	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)
//	/lib64/ld-linux-x86-64.so.2 (0x...)                 the loader
//	libfoo.so.1 => not found                            an error
func parseLdd(out string) ([]string, error) {
	var libs []string
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, target, hasArrow := strings.Cut(line, "=>")
		name, target = strings.TrimSpace(name), strings.TrimSpace(target)
		if hasArrow && strings.HasPrefix(target, "not found") {
			return nil, fmt.Errorf("shared library %s not found on this host", name)
		}
		p := name
		if hasArrow {
			p = target
		}
		if i := strings.Index(p, " ("); i >= 0 {
			p = p[:i]
		}
		if !path.IsAbs(p) { // linux-vdso.so.1 and friends live in the kernel
			continue
		}
		if !seen[p] {
			seen[p] = true
			libs = append(libs, p)
		}
	}
	return libs, nil
}
