package localmesos

import (
	"fmt"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// ParseResources reads Mesos' agent --resources syntax:
// "cpus:4;mem:8192;disk:20480;ports:[31000-32000]". A value is a scalar
// (4, 0.5), ranges ([31000-32000,33000-33010]) or a set ({a,b}); a name may
// carry a role as in cpus(role):2. Every resource is unreserved unless a role
// is given.
func ParseResources(s string) (mesos.Resources, error) {
	var out mesos.Resources
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("resource %q: expected name:value", item)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		role := ""
		if i := strings.IndexByte(name, '('); i >= 0 {
			if !strings.HasSuffix(name, ")") || i == 0 {
				return nil, fmt.Errorf("resource %q: bad role syntax, expected name(role)", item)
			}
			role = name[i+1 : len(name)-1]
			name = name[:i]
			if role == "" {
				return nil, fmt.Errorf("resource %q: empty role", item)
			}
		}
		if name == "" {
			return nil, fmt.Errorf("resource %q: empty name", item)
		}
		key := name + "(" + role + ")"
		if seen[key] {
			return nil, fmt.Errorf("resource %q given twice", name)
		}
		seen[key] = true
		r := mesos.Resource{Name: name}
		if role != "" && role != "*" {
			r.Role = &role
		}
		switch {
		case strings.HasPrefix(value, "["):
			ranges, err := parseRanges(value)
			if err != nil {
				return nil, fmt.Errorf("resource %q: %w", name, err)
			}
			r.Type = mesos.RANGES.Enum()
			r.Ranges = &mesos.Value_Ranges{Range: ranges}
		case strings.HasPrefix(value, "{"):
			if !strings.HasSuffix(value, "}") {
				return nil, fmt.Errorf("resource %q: set must end with }", name)
			}
			var items []string
			for _, it := range strings.Split(value[1:len(value)-1], ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			r.Type = mesos.SET.Enum()
			r.Set = &mesos.Value_Set{Item: items}
		default:
			v, err := strconv.ParseFloat(value, 64)
			if err != nil || v < 0 || v != v {
				return nil, fmt.Errorf("resource %q: %q is not a non-negative number", name, value)
			}
			r.Type = mesos.SCALAR.Enum()
			r.Scalar = &mesos.Value_Scalar{Value: v}
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("resource %q: %w", name, err)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no resources in %q", s)
	}
	return out, nil
}

func parseRanges(value string) (mesos.Ranges, error) {
	if !strings.HasSuffix(value, "]") {
		return nil, fmt.Errorf("ranges must end with ]")
	}
	var rs mesos.Ranges
	for _, part := range strings.Split(value[1:len(value)-1], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		b, e, ok := strings.Cut(part, "-")
		if !ok {
			e = b
		}
		begin, err1 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
		end, err2 := strconv.ParseUint(strings.TrimSpace(e), 10, 64)
		if err1 != nil || err2 != nil || end < begin {
			return nil, fmt.Errorf("bad range %q", part)
		}
		rs = append(rs, mesos.Value_Range{Begin: begin, End: end})
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("empty ranges")
	}
	return rs.Squash(), nil
}

// splitPorts gives agent i of n its own slice of every ports range, so that
// agents sharing one host never hand out the same port.
func splitPorts(rs mesos.Resources, i, n int) (mesos.Resources, error) {
	out := make(mesos.Resources, 0, len(rs))
	for _, r := range rs {
		if r.Name != "ports" || r.Ranges == nil {
			out = append(out, r)
			continue
		}
		var all []uint64
		total := r.Ranges.Range
		size := mesos.Ranges(total).Size()
		per := size / uint64(n)
		if per == 0 {
			return nil, fmt.Errorf("ports: %d ports cannot be split among %d agents", size, n)
		}
		// Walk the ranges and keep ports [i*per, (i+1)*per) by position.
		lo, hi := uint64(i)*per, uint64(i+1)*per
		var pos uint64
		var mine mesos.Ranges
		for _, rg := range total {
			for p := rg.Begin; p <= rg.End; p++ {
				if pos >= lo && pos < hi {
					all = append(all, p)
				}
				pos++
			}
		}
		mine = mesos.NewRanges(all...)
		r2 := r
		r2.Ranges = &mesos.Value_Ranges{Range: mine}
		out = append(out, r2)
	}
	return out, nil
}
