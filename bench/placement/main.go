// Command placement measures offermgr's placement engine against a plain
// first-fit loop on the same offers and queue: how many tasks per second
// each places, and how often the tasks of one instance end up on distinct
// hosts (what keeps a master and its slaves from failing together).
//
//	go run ./bench/placement [-agents 1000] [-tasks 10000] [-runs 5] [-seed 1]
//
// Figures are printed, not asserted; they depend on the machine.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/offermgr"
)

func main() {
	agents := flag.Int("agents", 1000, "agents, one offer each")
	tasks := flag.Int("tasks", 10000, "queued tasks")
	runs := flag.Int("runs", 5, "runs per placer; the median time is reported")
	seed := flag.Uint64("seed", 1, "seed of the generated cluster and queue")
	flag.Parse()
	if *agents < 1 || *tasks < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "placement: -agents, -tasks and -runs must be at least 1")
		os.Exit(2)
	}

	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	offers := makeOffers(*agents, *seed)
	demands, instances := makeDemands(*tasks, *seed, now)
	fmt.Printf("placement: %d agents (4-24 cpus, 4 GB per cpu, ports 31000-32000), %d queued tasks in %d instances (S, MS 1+2, MS 1+4, C of 3), executor 0.1 cpu/32 MB per task, seed %d, median of %d runs\n\n",
		*agents, len(demands), instances, *seed, *runs)

	all := offermgr.DefaultPolicy()
	all.Candidates = 0
	type result struct {
		on       map[offermgr.Key]string
		unplaced []offermgr.Unplaced
	}
	engine := func(policy offermgr.Policy) func() result {
		return func() result {
			plan := offermgr.Place(policy, offers, demands, offermgr.State{Now: now, Seed: *seed})
			return result{placedOn(plan), plan.Unplaced}
		}
	}
	placers := []struct {
		name  string
		place func() result
	}{
		{fmt.Sprintf("offermgr.Place (default policy, %d candidates)", offermgr.DefaultCandidates), engine(offermgr.DefaultPolicy())},
		{"offermgr.Place (all candidates ranked)", engine(all)},
		{"first-fit baseline", func() result { return result{on: firstFit(offers, demands)} }},
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "placer\tplaced\tunplaced\tmedian time\ttasks placed/s\tinstances on distinct hosts\t")
	var why []offermgr.Unplaced
	for i, p := range placers {
		var times []time.Duration
		var r result
		for range *runs {
			start := time.Now()
			r = p.place()
			times = append(times, time.Since(start))
		}
		if i == 0 {
			why = r.unplaced
		}
		slices.Sort(times)
		med := times[len(times)/2]
		spread, multi := spreadFraction(r.on)
		fmt.Fprintf(w, "%s\t%d\t%d\t%v\t%s\t%.1f%% of %d\t\n", p.name, len(r.on), len(demands)-len(r.on),
			med.Round(time.Microsecond), thousands(float64(len(r.on))/med.Seconds()), 100*spread, multi)
	}
	w.Flush()
	fmt.Println("\n\"instances on distinct hosts\": of the instances with at least two placed tasks, the share whose placed tasks all run on different agents.")
	if len(why) > 0 {
		fmt.Printf("\nWhy offermgr left %d tasks unplaced (first 3; first-fit ignores spread, so it packs siblings together):\n", len(why))
		for _, u := range why[:min(3, len(why))] {
			fmt.Printf("  %s: %s\n", u.Demand.Key, u.Metric.Summary)
		}
	}
}

// makeOffers builds one offer per agent, shaped like Mesos 1.12's for a
// framework in role "*".
func makeOffers(n int, seed uint64) []mesos.Offer {
	rng := rand.New(rand.NewPCG(seed, 1))
	sizes := []float64{4, 8, 16, 24}
	offers := make([]mesos.Offer, n)
	for i := range offers {
		cpus := sizes[rng.IntN(len(sizes))]
		agent := "agent-" + strconv.Itoa(i)
		offers[i] = mesos.Offer{
			ID:             mesos.OfferID{Value: "offer-" + strconv.Itoa(i)},
			FrameworkID:    mesos.FrameworkID{Value: "bench"},
			AgentID:        mesos.AgentID{Value: agent},
			Hostname:       agent,
			AllocationInfo: &mesos.Resource_AllocationInfo{Role: ptr("*")},
			Resources: mesos.Resources{
				scalar("cpus", cpus), scalar("mem", cpus*4096), scalar("disk", 200000),
				{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 32000}}},
					Role: ptr("*"), AllocationInfo: &mesos.Resource_AllocationInfo{Role: ptr("*")}},
			},
		}
	}
	return offers
}

func scalar(name string, v float64) mesos.Resource {
	return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), Scalar: &mesos.Value_Scalar{Value: v},
		Role: ptr("*"), AllocationInfo: &mesos.Resource_AllocationInfo{Role: ptr("*")}}
}

func ptr[T any](v T) *T { return &v }

// makeDemands queues instances of mixed types and sizes until n tasks.
func makeDemands(n int, seed uint64, now time.Time) ([]offermgr.Demand, int) {
	rng := rand.New(rand.NewPCG(seed, 2))
	shapes := []struct {
		roles []string
	}{
		{[]string{"master"}},
		{[]string{"master", "slave", "slave"}},
		{[]string{"master", "slave", "slave", "slave", "slave"}},
		{[]string{"peer", "peer", "peer"}},
	}
	sizes := []struct{ cpu, mem, disk float64 }{{0.5, 256, 512}, {1, 1024, 2048}, {2, 4096, 4096}}
	var ds []offermgr.Demand
	instances := 0
	for len(ds) < n {
		shape := shapes[rng.IntN(len(shapes))]
		size := sizes[rng.IntN(len(sizes))]
		ports := []string{"client", "bus"}[:1+rng.IntN(2)]
		name := "inst" + strconv.Itoa(instances)
		instances++
		for ord, role := range shape.roles {
			if len(ds) == n {
				break
			}
			k := offermgr.Key{Instance: name, Ordinal: ord}
			ds = append(ds, offermgr.Demand{
				Key: k, Role: role, CPU: size.cpu, Mem: size.mem, Disk: size.disk, Ports: ports,
				Executor:    offermgr.ExecutorDemand{ID: "ex-" + k.String(), CPU: 0.1, Mem: 32},
				QueuedSince: now.Add(-time.Duration(n-len(ds)) * time.Millisecond),
			})
		}
	}
	return ds, instances
}

func placedOn(p offermgr.Plan) map[offermgr.Key]string {
	on := map[offermgr.Key]string{}
	for _, l := range p.Launches {
		for _, pl := range l.Placements {
			on[pl.Demand.Key] = l.AgentID.Value
		}
	}
	return on
}

// firstFit is the baseline: each task, in queue order, takes the first
// offer with room, ports from the bottom of the range; it builds the same
// task resources a launch needs, but knows nothing of spread or stickiness.
func firstFit(offers []mesos.Offer, demands []offermgr.Demand) map[offermgr.Key]string {
	type free struct {
		cpus, mem, disk    float64
		nextPort, lastPort uint64
	}
	agents := make([]free, len(offers))
	for i, o := range offers {
		for _, r := range o.Resources {
			switch r.Name {
			case "cpus":
				agents[i].cpus += r.Scalar.Value
			case "mem":
				agents[i].mem += r.Scalar.Value
			case "disk":
				agents[i].disk += r.Scalar.Value
			case "ports":
				agents[i].nextPort, agents[i].lastPort = r.Ranges.Range[0].Begin, r.Ranges.Range[0].End
			}
		}
	}
	on := map[offermgr.Key]string{}
	// Kept like a plan keeps them, so the work is not optimised away.
	launches := make([]mesos.Resources, 0, len(demands))
	for _, d := range demands {
		cpus, mem := d.CPU+d.Executor.CPU, d.Mem+d.Executor.Mem
		for i := range agents {
			a := &agents[i]
			if a.cpus+1e-9 < cpus || a.mem+1e-9 < mem || a.disk+1e-9 < d.Disk || a.lastPort+1 < a.nextPort+uint64(len(d.Ports)) {
				continue
			}
			a.cpus -= cpus
			a.mem -= mem
			a.disk -= d.Disk
			res := mesos.Resources{scalar("cpus", d.CPU), scalar("mem", d.Mem), scalar("disk", d.Disk)}
			var rg []mesos.Value_Range
			for range d.Ports {
				rg = append(rg, mesos.Value_Range{Begin: a.nextPort, End: a.nextPort})
				a.nextPort++
			}
			res = append(res, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: rg}})
			launches = append(launches, res)
			on[d.Key] = offers[i].AgentID.Value
			break
		}
	}
	if len(launches) != len(on) {
		panic("first-fit lost a placement")
	}
	return on
}

// spreadFraction returns the share of instances with two or more placed
// tasks whose placed tasks are all on distinct agents, and how many such
// instances there are.
func spreadFraction(on map[offermgr.Key]string) (float64, int) {
	hosts := map[string]map[string]int{}
	for k, agent := range on {
		if hosts[k.Instance] == nil {
			hosts[k.Instance] = map[string]int{}
		}
		hosts[k.Instance][agent]++
	}
	multi, spread := 0, 0
	for _, byAgent := range hosts {
		tasks := 0
		for _, n := range byAgent {
			tasks += n
		}
		if tasks < 2 {
			continue
		}
		multi++
		if len(byAgent) == tasks {
			spread++
		}
	}
	if multi == 0 {
		return 1, 0
	}
	return float64(spread) / float64(multi), multi
}

func thousands(v float64) string {
	s := strconv.FormatInt(int64(v), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
