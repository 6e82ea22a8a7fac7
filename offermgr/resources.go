package offermgr

import (
	"sort"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// dimension is one kind of resource a task consumes; checks run in this
// order, so a metric names the first dimension an agent lacked.
type dimension uint8

const (
	dimNone dimension = iota
	dimCPU
	dimMem
	dimDisk
	dimPorts
	numDimensions
)

// String returns the Mesos resource name of the dimension.
func (d dimension) String() string {
	switch d {
	case dimCPU:
		return "cpus"
	case dimMem:
		return "mem"
	case dimDisk:
		return "disk"
	case dimPorts:
		return "ports"
	}
	return "none"
}

func dimensionOf(name string) dimension {
	switch name {
	case "cpus":
		return dimCPU
	case "mem":
		return dimMem
	case "disk":
		return dimDisk
	case "ports":
		return dimPorts
	}
	return dimNone
}

// pool is the part of an agent's offered resources that share one
// reservation: every resource of one task (and of its executor) is taken
// from a single pool, so a task never mixes reservation roles.
type pool struct {
	// reservation is "*" for unreserved resources, else the role the
	// resources are statically reserved for.
	reservation string
	// templates keep, per dimension, the first offered resource so that what
	// we take carries the offer's role, reservations and allocation_info.
	templates [numDimensions]*mesos.Resource
	// protos are the templates copied once, without a value; every
	// resource taken from the pool is a shallow copy of one, sharing its
	// role, reservations and allocation_info.
	protos [numDimensions]*mesos.Resource
	cpus   milli
	mem    milli
	disk   milli
	// ports are sorted, disjoint and non-adjacent ranges; nports counts them.
	ports  []mesos.Value_Range
	nports uint64
}

func (p *pool) amount(d dimension) milli {
	switch d {
	case dimCPU:
		return p.cpus
	case dimMem:
		return p.mem
	case dimDisk:
		return p.disk
	case dimPorts:
		return milli(p.nports)
	}
	return 0
}

// usableReservation reports whether we may launch on r and, if so, the
// reservation it belongs to. We launch on unreserved resources and on
// resources statically reserved for our role (an operator set them aside
// for this framework). Dynamic reservations belong to whoever made them,
// and persistent volumes, disk sources, revocable, shared and
// resource-provider resources need operations this package does not
// perform, so they are left in the offer and released by the decline.
func usableReservation(r *mesos.Resource) (string, bool) {
	if r.Revocable != nil || r.Shared != nil || r.ProviderID != nil || r.Disk != nil {
		return "", false
	}
	if r.Reservation != nil {
		return "", false // legacy dynamic reservation
	}
	for _, ri := range r.Reservations {
		if ri.GetType() != mesos.Resource_ReservationInfo_STATIC {
			return "", false
		}
	}
	if r.IsUnreserved() {
		return "*", true
	}
	return r.ReservationRole(), true
}

// add folds one offered resource into the pool. Resources that are
// malformed (wrong type, negative, ports outside 1-65535) are skipped
// rather than trusted.
func (p *pool) add(r *mesos.Resource) {
	d := dimensionOf(r.Name)
	if d == dimNone {
		return
	}
	switch d {
	case dimPorts:
		if r.GetType() != mesos.RANGES || r.Ranges == nil {
			return
		}
		added := false
		for _, rg := range r.Ranges.Range {
			if rg.Begin < 1 || rg.Begin > rg.End || rg.End > 65535 {
				continue
			}
			p.ports = append(p.ports, rg)
			added = true
		}
		if !added {
			return
		}
		p.ports, p.nports = squash(p.ports)
	default:
		if r.GetType() != mesos.SCALAR || r.Scalar == nil {
			return
		}
		v := toMilli(r.Scalar.Value)
		if v <= 0 || r.Scalar.Value > maxQuantity {
			return
		}
		switch d {
		case dimCPU:
			p.cpus += v
		case dimMem:
			p.mem += v
		case dimDisk:
			p.disk += v
		}
	}
	if p.templates[d] == nil {
		p.templates[d] = r
	}
}

// squash sorts ranges and merges overlapping or adjacent ones, so that two
// offers for one agent (or an offer listing a port twice) can never make us
// hand out the same port twice.
func squash(rs []mesos.Value_Range) ([]mesos.Value_Range, uint64) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Begin < rs[j].Begin })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.Begin <= out[n-1].End+1 {
			if r.End > out[n-1].End {
				out[n-1].End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	var total uint64
	for _, r := range out {
		total += r.End - r.Begin + 1
	}
	return out, total
}

// takePorts removes the n lowest free ports from the pool and returns them.
// Taking from the front keeps this O(n) and the assignment deterministic.
func (p *pool) takePorts(n int) []uint32 {
	got := make([]uint32, 0, n)
	for len(got) < n {
		r := &p.ports[0]
		got = append(got, uint32(r.Begin))
		if r.Begin == r.End {
			p.ports = p.ports[1:]
		} else {
			r.Begin++
		}
	}
	p.nports -= uint64(n)
	return got
}

// need is what one demand takes from a pool, executor included when the
// agent does not run the executor yet.
type need struct {
	cpus, mem, disk milli
	ports           int
}

func (n need) amount(d dimension) milli {
	switch d {
	case dimCPU:
		return n.cpus
	case dimMem:
		return n.mem
	case dimDisk:
		return n.disk
	case dimPorts:
		return milli(n.ports)
	}
	return 0
}

// fits returns dimNone when the pool holds n, else the first dimension it
// lacks and how many dimensions passed before it.
func (p *pool) fits(n need) (dimension, int) {
	switch {
	case p.cpus < n.cpus:
		return dimCPU, 0
	case p.mem < n.mem:
		return dimMem, 1
	case p.disk < n.disk:
		return dimDisk, 2
	case p.nports < uint64(n.ports):
		return dimPorts, 3
	}
	return dimNone, 4
}

// headroom is how many more copies of n the pool could hold after taking
// n; it ranks agents least-loaded first relative to the task's own size.
func (p *pool) headroom(n need) float64 {
	h := -1.0
	consider := func(have, want milli) {
		if want <= 0 {
			return
		}
		r := float64(have-want) / float64(want)
		if h < 0 || r < h {
			h = r
		}
	}
	consider(p.cpus, n.cpus)
	consider(p.mem, n.mem)
	consider(p.disk, n.disk)
	if n.ports > 0 {
		consider(milli(p.nports), milli(n.ports))
	}
	return h
}

// shaped returns an empty resource named name that carries tmpl's
// reservation and allocation, deep-copied so the caller may change it.
func shaped(tmpl *mesos.Resource, name string) mesos.Resource {
	r := mesos.Resource{Name: name}
	if tmpl == nil {
		return r
	}
	if tmpl.Role != nil {
		r.Role = ptr(*tmpl.Role)
	}
	if tmpl.AllocationInfo != nil {
		a := mesos.Resource_AllocationInfo{}
		if tmpl.AllocationInfo.Role != nil {
			a.Role = ptr(*tmpl.AllocationInfo.Role)
		}
		r.AllocationInfo = &a
	}
	if len(tmpl.Reservations) > 0 {
		r.Reservations = make([]mesos.Resource_ReservationInfo, len(tmpl.Reservations))
		for i, ri := range tmpl.Reservations {
			c := mesos.Resource_ReservationInfo{}
			if ri.Type != nil {
				c.Type = ptr(*ri.Type)
			}
			if ri.Role != nil {
				c.Role = ptr(*ri.Role)
			}
			if ri.Principal != nil {
				c.Principal = ptr(*ri.Principal)
			}
			if ri.Labels != nil {
				l := mesos.Labels{Labels: make([]mesos.Label, len(ri.Labels.Labels))}
				for j, lb := range ri.Labels.Labels {
					l.Labels[j] = mesos.Label{Key: lb.Key}
					if lb.Value != nil {
						l.Labels[j].Value = ptr(*lb.Value)
					}
				}
				c.Labels = &l
			}
			r.Reservations[i] = c
		}
	}
	return r
}

func (p *pool) proto(d dimension) *mesos.Resource {
	if p.protos[d] == nil {
		r := shaped(p.templates[d], d.String())
		if d == dimPorts {
			r.Type = mesos.RANGES.Enum()
		} else {
			r.Type = mesos.SCALAR.Enum()
		}
		p.protos[d] = &r
	}
	return p.protos[d]
}

// scalar returns a resource of the pool's shape holding v in *sc; the
// caller provides sc so that one placement allocates its values at once.
func (p *pool) scalar(d dimension, v milli, sc *mesos.Value_Scalar) mesos.Resource {
	r := *p.proto(d)
	sc.Value = v.float()
	r.Scalar = sc
	return r
}

// portsResource lists ports (ascending, as takePorts returns them) as
// ranges, adjacent ports merged.
func (p *pool) portsResource(ports []uint32) mesos.Resource {
	var rs []mesos.Value_Range
	for _, n := range ports {
		if k := len(rs); k > 0 && rs[k-1].End+1 == uint64(n) {
			rs[k-1].End++
			continue
		}
		rs = append(rs, mesos.Value_Range{Begin: uint64(n), End: uint64(n)})
	}
	r := *p.proto(dimPorts)
	r.Ranges = &mesos.Value_Ranges{Range: rs}
	return r
}

func ptr[T any](v T) *T { return &v }
