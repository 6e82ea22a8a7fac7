package statemgr

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mesos-stateful/stateful"
)

// keys is the etcd layout of one framework (DESIGN §5), all under
// /stateful/<framework>/:
//
//	framework-id             the Mesos framework ID (plain text)
//	leader/<lease>           election keys (concurrency.Election's layout)
//	instances/<name>         an instance document (JSON, without tasks)
//	tasks/<name>/<ordinal>   a task document (JSON)
type keys struct {
	prefix string
}

func newKeys(framework string) (keys, error) {
	if err := validateFramework(framework); err != nil {
		return keys{}, err
	}
	return keys{prefix: "/stateful/" + framework + "/"}, nil
}

// validateFramework keeps framework names to what is safe inside a key.
func validateFramework(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("framework name %q: want 1 to 128 characters", name)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("framework name %q: only letters, digits, '-', '_' and '.' are allowed", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("framework name %q is not allowed", name)
	}
	return nil
}

func (k keys) frameworkID() string         { return k.prefix + "framework-id" }
func (k keys) leader() string              { return k.prefix + "leader" }
func (k keys) instance(name string) string { return k.prefix + "instances/" + name }
func (k keys) tasksOf(name string) string  { return k.prefix + "tasks/" + name + "/" }
func (k keys) task(name string, ordinal int) string {
	return k.tasksOf(name) + strconv.Itoa(ordinal)
}

type keyKind int

const (
	kindOther keyKind = iota
	kindFrameworkID
	kindInstance
	kindTask
)

// parsedKey is what a key under the prefix names.
type parsedKey struct {
	kind     keyKind
	instance string
	ordinal  int
}

// parse classifies a key read from etcd. Keys this package does not own
// (leader keys, anything unexpected) are kindOther and ignored by the cache.
func (k keys) parse(key string) parsedKey {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return parsedKey{}
	}
	if rest == "framework-id" {
		return parsedKey{kind: kindFrameworkID}
	}
	if name, ok := strings.CutPrefix(rest, "instances/"); ok {
		if stateful.ValidateName(name) != nil {
			return parsedKey{}
		}
		return parsedKey{kind: kindInstance, instance: name}
	}
	if tail, ok := strings.CutPrefix(rest, "tasks/"); ok {
		name, ord, ok := strings.Cut(tail, "/")
		if !ok || stateful.ValidateName(name) != nil {
			return parsedKey{}
		}
		n, err := strconv.Atoi(ord)
		if err != nil || n < 0 || n > stateful.MaxOrdinal || strconv.Itoa(n) != ord {
			return parsedKey{}
		}
		return parsedKey{kind: kindTask, instance: name, ordinal: n}
	}
	return parsedKey{}
}
