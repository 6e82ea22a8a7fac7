package codegen

import (
	"fmt"
	"go/token"
	"strings"
	"unicode"

	"github.com/mesos-stateful/stateful"
)

// toolkitModule is the module path of the toolkit every project requires.
const toolkitModule = "github.com/mesos-stateful/stateful"

// maxNameLen keeps the lower-cased name a DNS label.
const maxNameLen = 63

// reservedTypeName is the one capitalised package-level name the templates
// declare besides the workload type (Test<type>EndToEnd cannot clash); a
// workload type of that name would not compile.
const reservedTypeName = "TestMain"

// nameRule says what a framework name may be, for error messages.
const nameRule = "a name is 1-63 ASCII letters and digits starting with a letter, e.g. MySQL or Redis7: " +
	"it names the workload's Go type and, lower-cased, the framework and its directory, " +
	"so it must be both a Go identifier and a DNS label (no '_' or '-')"

// ValidateName checks a framework name: a Go identifier made of ASCII
// letters and digits, starting with a letter, at most 63 long, so that its
// lower-cased form is also a DNS label. The error says what is allowed.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("no framework name given; %s", nameRule)
	case len(name) > maxNameLen:
		return fmt.Errorf("framework name %q is %d characters long; %s", name, len(name), nameRule)
	case !isASCIILetter(rune(name[0])):
		return fmt.Errorf("framework name %q starts with %q; %s", name, firstRune(name), nameRule)
	}
	for _, r := range name {
		if !isASCIILetter(r) && !('0' <= r && r <= '9') {
			return fmt.Errorf("framework name %q has %q; %s", name, r, nameRule)
		}
	}
	if token.IsKeyword(name) {
		return fmt.Errorf("framework name %q is a Go keyword; %s", name, nameRule)
	}
	if typeName(name) == reservedTypeName {
		return fmt.Errorf("framework name %q would make the workload type %s, which the generated test declares as a function; choose another name", name, reservedTypeName)
	}
	return nil
}

// DefaultModule returns the module path a project gets when none is given:
// example.com/<name lower-cased>-framework. Give -module to publish it
// under a path you own.
func DefaultModule(name string) string {
	return "example.com/" + strings.ToLower(name) + "-framework"
}

// validateModule checks a module path: slash-separated elements of letters,
// digits and ._~- that neither start nor end with a dot, outside the toolkit's
// own module.
func validateModule(path string) error {
	const rule = "a module path is elements of ASCII letters, digits and ._~- separated by '/', e.g. example.com/mysql-framework"
	if path == "" {
		return fmt.Errorf("empty module path; %s", rule)
	}
	if len(path) > 255 {
		return fmt.Errorf("module path %q is %d characters long, at most 255 allowed", path, len(path))
	}
	for elem := range strings.SplitSeq(path, "/") {
		switch {
		case elem == "":
			return fmt.Errorf("module path %q has an empty element (leading, trailing or double '/'); %s", path, rule)
		case elem[0] == '.' || elem[len(elem)-1] == '.':
			return fmt.Errorf("module path %q has element %q, which starts or ends with '.'; %s", path, elem, rule)
		}
		for _, r := range elem {
			if !isASCIILetter(r) && !('0' <= r && r <= '9') && !strings.ContainsRune("._~-", r) {
				return fmt.Errorf("module path %q has %q; %s", path, r, rule)
			}
		}
	}
	if path == toolkitModule || strings.HasPrefix(path, toolkitModule+"/") {
		return fmt.Errorf("module path %q is inside the toolkit's module %s, which the project requires; choose a path of your own", path, toolkitModule)
	}
	return nil
}

// validateImage checks a Docker image reference loosely: the engine gives
// the precise verdict, this keeps out what cannot be one (spaces, quotes,
// control characters) and what the toolkit would refuse.
func validateImage(image string) error {
	const rule = "an image is ASCII letters, digits and ._-/:@, e.g. mysql:8 or registry.example.com/team/mysql@sha256:..."
	if len(image) > stateful.MaxImageLen {
		return fmt.Errorf("image %q is %d characters long, at most %d allowed", image, len(image), stateful.MaxImageLen)
	}
	if image[0] == '-' || image[0] == '/' || image[0] == ':' || image[0] == '@' {
		return fmt.Errorf("image %q starts with %q; %s", image, image[0], rule)
	}
	for _, r := range image {
		if !isASCIILetter(r) && !('0' <= r && r <= '9') && !strings.ContainsRune("._-/:@", r) {
			return fmt.Errorf("image %q has %q; %s", image, r, rule)
		}
	}
	return nil
}

// typeName is the workload's Go type: the name with its first letter upper
// case, so that it is exported and never a predeclared identifier.
func typeName(name string) string {
	return strings.ToUpper(name[:1]) + name[1:]
}

func isASCIILetter(r rune) bool {
	return r < unicode.MaxASCII && unicode.IsLetter(r)
}

func firstRune(s string) rune {
	for _, r := range s {
		return r
	}
	return 0
}
