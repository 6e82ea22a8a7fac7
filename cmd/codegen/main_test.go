package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mesos-stateful/stateful/codegen"
)

// asMainEnv makes the test binary run codegen's main (for tests that need
// the real process: its stderr, its exit code).
const asMainEnv = "CODEGEN_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) != "" {
		os.Args = append([]string{"codegen"}, strings.Fields(os.Getenv(asMainEnv))...)
		main()
	}
	flag.Parse()
	// glog would otherwise leave log files in the system's temporary
	// directory; go test shows stderr only when a test fails.
	_ = flag.Set("logtostderr", "true")
	os.Exit(m.Run())
}

// runCodegen runs the command in-process and returns its exit code and output.
func runCodegen(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func toolkitRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := codegen.FindToolkit(wd)
	if root == "" {
		t.Fatalf("no toolkit checkout above %s", wd)
	}
	return root
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCreates(t *testing.T) {
	parent := t.TempDir()
	code, stdout, stderr := runCodegen(t, "-name", "MySQL", "-path", parent, "-image", "mysql:8", "-module", "example.org/db/mysql")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	dir := filepath.Join(parent, "mysql")
	for _, want := range []string{"Created " + dir, "module example.org/db/mysql", "workload.go", "main.go", "go.sum", "Next steps", "cd " + dir, "go test ./...", "go run . --config config.json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout does not mention %q:\n%s", want, stdout)
		}
	}
	workload, err := os.ReadFile(filepath.Join(dir, "workload.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(workload), `Image: "mysql:8"`) {
		t.Errorf("workload.go does not default to the image given with -image")
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.SplitN(string(gomod), "\n", 4)[2], "module example.org/db/mysql") {
		t.Errorf("go.mod does not declare the module given with -module:\n%s", gomod)
	}
	// -toolkit defaults to the checkout above the working directory.
	if !strings.Contains(string(gomod), "=> "+toolkitRoot(t)+"\n") {
		t.Errorf("go.mod does not replace the toolkit with the checkout %s:\n%s", toolkitRoot(t), gomod)
	}
}

func TestUsageErrors(t *testing.T) {
	parent := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "-name is required"},
		{[]string{"-path", parent}, 2, "-name is required"},
		{[]string{"-name", "MySQL", "-path", parent, "extra"}, 2, "unexpected arguments"},
		{[]string{"-name", "MySQL", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"-name", "my-sql", "-path", parent}, 1, "letters and digits starting with a letter"},
		{[]string{"-name", "my_sql", "-path", parent}, 1, "letters and digits starting with a letter"},
		{[]string{"-name", "MySQL", "-path", filepath.Join(parent, "missing")}, 1, "does not exist"},
		{[]string{"-name", "MySQL", "-path", parent, "-module", "not a path"}, 1, "module path"},
		{[]string{"-name", "MySQL", "-path", parent, "-toolkit", parent}, 1, "no go.mod of module"},
	} {
		code, stdout, stderr := runCodegen(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("codegen %q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
		if stdout != "" {
			t.Errorf("codegen %q printed on stdout: %q", tc.args, stdout)
		}
	}
	if got := entries(t, parent); len(got) != 0 {
		t.Errorf("refused runs left %q in %s", got, parent)
	}
}

func TestHelp(t *testing.T) {
	code, _, stderr := runCodegen(t, "-h")
	if code != 0 {
		t.Errorf("codegen -h: exit %d, want 0", code)
	}
	for _, flag := range []string{"-name", "-path", "-module", "-image", "-force", "-toolkit", "example.com/<name lower-cased>-framework"} {
		if !strings.Contains(stderr, flag) {
			t.Errorf("usage does not mention %s:\n%s", flag, stderr)
		}
	}
}

func TestForce(t *testing.T) {
	parent := t.TempDir()
	if code, _, stderr := runCodegen(t, "-name", "Redis", "-path", parent); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	workload := filepath.Join(parent, "redis", "workload.go")
	if err := os.WriteFile(workload, []byte("package main // mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCodegen(t, "-name", "Redis", "-path", parent)
	if code != 1 || !strings.Contains(stderr, "-force") {
		t.Errorf("second run without -force: exit %d, stderr %q; want 1 and advice to give -force", code, stderr)
	}
	if data, _ := os.ReadFile(workload); string(data) != "package main // mine\n" {
		t.Errorf("workload.go changed without -force: %q", data)
	}
	if code, _, stderr := runCodegen(t, "-name", "Redis", "-path", parent, "-force"); code != 0 {
		t.Fatalf("with -force: exit %d: %s", code, stderr)
	}
	if data, _ := os.ReadFile(workload); !strings.Contains(string(data), "type Redis struct") {
		t.Errorf("workload.go was not regenerated with -force: %q", data)
	}
}

// TestErrorSaidOnce: a failing run says why once on stderr, not once more
// through the log.
func TestErrorSaidOnce(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	cmd := exec.Command(os.Args[0])
	// glog's files go to TMPDIR.
	cmd.Env = append(os.Environ(), asMainEnv+"=-name Redis -path "+missing, "TMPDIR="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("codegen -path %s: %v, want exit 1; stderr %q", missing, err, stderr.String())
	}
	if n := strings.Count(stderr.String(), missing); n != 1 {
		t.Errorf("stderr names %s %d times, want once:\n%s", missing, n, stderr.String())
	}
}
