package codegen

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", maxNameLen)
	for _, name := range []string{"MySQL", "mysql", "Redis7", "a", "X1y2", long} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	for _, tc := range []struct {
		name, want string
	}{
		{"", "no framework name"},
		{"my_sql", `has '_'`},
		{"my-sql", `has '-'`},
		{"My SQL", `has ' '`},
		{"mysql!", `has '!'`},
		{"1mysql", `starts with '1'`},
		{"_mysql", `starts with '_'`},
		{"Ärger", `starts with 'Ä'`},
		{"postgrés", `has 'é'`},
		{"func", "Go keyword"},
		{"TestMain", "TestMain"},
		{"testMain", "TestMain"},
		{long + "a", "64 characters"},
	} {
		err := ValidateName(tc.name)
		if err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateName(%q) = %q, want it to mention %q", tc.name, err, tc.want)
		}
		if tc.want != "TestMain" && !strings.Contains(err.Error(), "letters and digits starting with a letter") {
			t.Errorf("ValidateName(%q) = %q, want it to say what is allowed", tc.name, err)
		}
	}
}

func TestDefaultModule(t *testing.T) {
	if got, want := DefaultModule("MySQL"), "example.com/mysql-framework"; got != want {
		t.Errorf("DefaultModule(MySQL) = %q, want %q", got, want)
	}
	if err := validateModule(DefaultModule("Redis7")); err != nil {
		t.Errorf("the default module path is invalid: %v", err)
	}
}

func TestValidateModule(t *testing.T) {
	for _, path := range []string{"example.com/mysql-framework", "github.com/Team/my_sql.v2", "mysqlfw", "gitlab.example.com/a/b/c~d"} {
		if err := validateModule(path); err != nil {
			t.Errorf("validateModule(%q) = %v, want nil", path, err)
		}
	}
	for _, tc := range []struct {
		path, want string
	}{
		{"", "empty module path"},
		{"/example.com/x", "empty element"},
		{"example.com/x/", "empty element"},
		{"example.com//x", "empty element"},
		{"example.com/.x", "starts or ends with '.'"},
		{"example.com/x.", "starts or ends with '.'"},
		{"example.com/my sql", "has ' '"},
		{"example.com/my\"sql", `has '"'`},
		{"example.com/mü", "has 'ü'"},
		{"github.com/mesos-stateful/stateful", "inside the toolkit"},
		{"github.com/mesos-stateful/stateful/examples/mysql", "inside the toolkit"},
		{strings.Repeat("a", 256), "at most 255"},
	} {
		err := validateModule(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validateModule(%q) = %v, want an error mentioning %q", tc.path, err, tc.want)
		}
	}
}

func TestValidateImage(t *testing.T) {
	for _, image := range []string{"redis:7", "mysql", "registry.example.com:5000/team/mysql:8.0-debian", "busybox@sha256:" + strings.Repeat("a", 64)} {
		if err := validateImage(image); err != nil {
			t.Errorf("validateImage(%q) = %v, want nil", image, err)
		}
	}
	for _, tc := range []struct {
		image, want string
	}{
		{"redis 7", "has ' '"},
		{`redis"7`, `has '"'`},
		{"-redis", "starts with"},
		{"/redis", "starts with"},
		{"redis\n", `has '\n'`},
		{strings.Repeat("r", 513), "at most 512"},
	} {
		err := validateImage(tc.image)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validateImage(%q) = %v, want an error mentioning %q", tc.image, err, tc.want)
		}
	}
}
