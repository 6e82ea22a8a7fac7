package offermgr

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// BenchmarkPlace places 10,000 queued tasks (instances of 1 to 5 tasks) on
// 1,000 agents in one pass and reports tasks placed per second. The cluster
// is nearly full, so the no-fit path is measured too. bench/placement
// prints the same figure beside a first-fit baseline.
func BenchmarkPlace(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	var os []agentOffer
	for i := range 1000 {
		cpus := []float64{4, 8, 16, 24}[rng.IntN(4)]
		os = append(os, agentOffer{id: "o" + strconv.Itoa(i), agent: "a" + strconv.Itoa(i),
			cpus: cpus, mem: cpus * 4096, disk: 200000, ports: []portRange{{31000, 32000}}})
	}
	offers := offers(os...)
	var demands []Demand
	for inst := 0; len(demands) < 10000; inst++ {
		size := []Demand{{CPU: 0.5, Mem: 256, Disk: 512}, {CPU: 1, Mem: 1024, Disk: 2048}, {CPU: 2, Mem: 4096, Disk: 4096}}[rng.IntN(3)]
		for ord := range []int{1, 3, 5, 3}[rng.IntN(4)] {
			d := size
			d.Key = Key{"inst" + strconv.Itoa(inst), ord}
			d.Ports = []string{"client"}
			d.Executor = ExecutorDemand{ID: "ex-" + d.Key.String(), CPU: 0.1, Mem: 32}
			d.QueuedSince = t0.Add(-time.Duration(10000-len(demands)) * time.Millisecond)
			demands = append(demands, d)
		}
	}
	demands = demands[:10000]
	all := DefaultPolicy()
	all.Candidates = 0
	for _, bc := range []struct {
		name   string
		policy Policy
	}{{"candidates=4", DefaultPolicy()}, {"candidates=all", all}} {
		b.Run(bc.name, func(b *testing.B) { benchmarkPlace(b, bc.policy, offers, demands) })
	}
}

func benchmarkPlace(b *testing.B, policy Policy, offers []mesos.Offer, demands []Demand) {
	placed := 0
	for i := range b.N {
		p := Place(policy, offers, demands, State{Now: t0, Seed: uint64(i)})
		for _, l := range p.Launches {
			placed += len(l.Placements)
		}
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(placed)/float64(b.N), "placed/op")
}
