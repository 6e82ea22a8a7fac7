package framework_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/localmesos"
)

// The fault loop's knobs. By default it runs a short variant (a few rounds,
// outages of 5-8 s) within the normal test run; -faultloop.rounds=N (or
// STATEFUL_FAULT_ROUNDS=N) runs N rounds with outages of 5-30 s, e.g.
//
//	go test -race -run TestFaultLoop -faultloop.rounds=50 -timeout 3h ./framework/
//
// A run is replayed with its seed: -faultloop.seed=S (or
// STATEFUL_FAULT_SEED=S). The flags go after the package, as they are the
// test binary's.
var (
	faultRounds = flag.Int("faultloop.rounds", 0, "rounds of TestFaultLoop (0: the short variant, or STATEFUL_FAULT_ROUNDS)")
	faultSeed   = flag.Uint64("faultloop.seed", 0, "seed of TestFaultLoop (0: from the clock, or STATEFUL_FAULT_SEED)")
)

// faultLoopConfig is the loop's length and pace.
func faultLoopConfig() (rounds int, minOutage, maxOutage time.Duration, seed uint64) {
	rounds, minOutage, maxOutage = 3, 5*time.Second, 8*time.Second
	n := *faultRounds
	if n == 0 {
		n, _ = strconv.Atoi(os.Getenv("STATEFUL_FAULT_ROUNDS"))
	}
	if n > 0 {
		rounds, maxOutage = n, 30*time.Second
	}
	seed = *faultSeed
	if seed == 0 {
		seed, _ = strconv.ParseUint(os.Getenv("STATEFUL_FAULT_SEED"), 10, 64)
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return rounds, minOutage, maxOutage, seed
}

// faultLoop is the state of TestFaultLoop: what the test asked for and
// what it saw.
type faultLoop struct {
	t       *testing.T
	rng     *rand.Rand
	etcd    *etcdProcess
	cluster *localmesos.Cluster
	p       *subprocess
	prefix  string
	next    int
	redis   bool // tasks run redis-server: replication is checked
	// killed is the master a failover round killed, nil if none.
	killed *stateful.Task
	// live are the instances that must exist, by name.
	live map[string]bool
	// faults and actions count what was done, by kind.
	faults, actions map[string]int
	violations      int
}

// violation reports a broken invariant and counts it.
func (f *faultLoop) violation(format string, args ...any) {
	f.t.Helper()
	f.violations++
	f.t.Errorf("violation: "+format, args...)
}

// TestFaultLoop is the seeded fault loop: each round starts a create, a
// delete or a failover (an MS master's executor killed) and, at a random
// moment during it, stops or freezes etcd for a while, kills the
// scheduler with SIGKILL, or both; then it restores what it broke,
// restarts the scheduler if it was killed, and checks: no task died that
// should not have (every task of an instance the round did not touch is
// the same attempt), no slave replicates from a master other than its
// instance's current one (INFO replication on the real redis-server),
// nothing lost (every accepted instance is there and RUNNING), nothing
// duplicated (Mesos runs exactly the attempts the scheduler reports), and
// nothing left behind (a deleted instance has no task and no process).
func TestFaultLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("stops etcd and kills the scheduler for minutes")
	}
	rounds, minOutage, maxOutage, seed := faultLoopConfig()
	t.Logf("fault loop: seed %d (replay with -faultloop.seed=%d), %d rounds, outages of %v-%v", seed, seed, rounds, minOutage, maxOutage)
	f := &faultLoop{
		t: t, rng: rand.New(rand.NewPCG(seed, seed>>1)),
		etcd:    startEtcdProcess(t),
		cluster: startCluster(t, 3),
		prefix:  fmt.Sprintf("f%x", seed%0xffff),
		redis:   testworkload.New().Redis,
		live:    map[string]bool{},
		faults:  map[string]int{}, actions: map[string]int{},
	}
	dataDir := t.TempDir()
	f.p = newSubprocess(t, dataDir, "--master="+f.cluster.MasterURL(), "--etcd="+f.etcd.client)
	f.p.start()
	f.create(stateful.TypeMasterSlave, 1, 2)
	f.create(stateful.TypeSingle, 1, 0)
	f.converge(nil)

	for round := 1; round <= rounds; round++ {
		before := f.snapshot()
		action, touched := f.act()
		outage := minOutage + time.Duration(f.rng.Int64N(int64(maxOutage-minOutage)+1))
		fault := []string{"etcd-stop", "etcd-freeze", "kill-9"}[f.rng.IntN(3)]
		alsoKill := fault != "kill-9" && f.rng.IntN(4) == 0
		if fault == "kill-9" {
			// The scheduler stays down a while: Mesos holds its updates.
			outage = time.Duration(f.rng.Int64N(int64(3 * time.Second)))
		}
		t.Logf("round %d: %s %s; %s for %v (kill -9 during it too: %t)", round, action, touched, fault, outage.Round(time.Millisecond), alsoKill)
		f.faults[fault]++
		// The fault strikes while the action is under way.
		time.Sleep(time.Duration(f.rng.Int64N(int64(1500 * time.Millisecond))))
		switch fault {
		case "kill-9":
			f.p.crash()
			time.Sleep(outage) // down for a while, not a synchronisation
			f.p.start()
		default:
			if fault == "etcd-stop" {
				f.etcd.stop()
			} else {
				f.etcd.freeze()
			}
			rest := outage
			if alsoKill {
				killAt := time.Duration(f.rng.Int64N(int64(outage)))
				time.Sleep(killAt)
				f.faults["kill-9"]++
				f.p.crash()
				rest -= killAt
			}
			time.Sleep(rest) // the (rest of the) outage itself
			if fault == "etcd-stop" {
				f.etcd.start()
			} else {
				f.etcd.thaw()
			}
			if alsoKill {
				f.p.start()
			}
		}
		if k := f.killed; k != nil {
			f.waitHealthy()
			// Until the scheduler has seen the master die, GET still
			// shows it running: the round is over only once it has
			// been replaced.
			eventually(t, k.TaskID+" replaced", func() (bool, string) {
				inst, _ := get(t, f.p.api, k.Instance)
				if inst == nil {
					return false, "no instance"
				}
				for _, task := range inst.Tasks {
					if task.Ordinal == k.Ordinal {
						return task.TaskID != k.TaskID, describe(inst)
					}
				}
				return false, describe(inst)
			})
			f.killed = nil
		}
		f.converge(before)
		spare := -1 // the ordinal the round may relaunch
		switch action {
		case "failover":
			spare = before[touched].MasterOrdinal
		case "create", "delete":
			delete(before, touched)
		}
		f.checkSurvivors(before, touched, spare)
	}
	t.Logf("fault loop figures: seed %d; %d rounds; faults %v; actions %v; violations %d", seed, rounds, f.faults, f.actions, f.violations)
}

// create asks for a new instance; the scheduler is healthy by then (the
// first instances, or a round's action before its fault).
func (f *faultLoop) create(typ stateful.InstanceType, masters, slaves int) string {
	f.t.Helper()
	f.next++
	name := fmt.Sprintf("%sn%d", f.prefix, f.next)
	call(f.t, http.MethodPost, f.p.api+"/v1/instances", createBody(name, typ, masters, slaves), http.StatusAccepted)
	f.live[name] = true
	return name
}

// act starts this round's action and returns what it was and the instance
// it touched.
func (f *faultLoop) act() (string, string) {
	f.t.Helper()
	var ms, any []string
	for name := range f.live {
		any = append(any, name)
		if inst, _ := get(f.t, f.p.api, name); inst != nil && inst.Type == stateful.TypeMasterSlave {
			ms = append(ms, name)
		}
	}
	choice := f.rng.IntN(3)
	switch {
	case choice == 1 && len(any) > 1:
		name := any[f.rng.IntN(len(any))]
		call(f.t, http.MethodDelete, f.p.api+"/v1/instances/"+name, nil, http.StatusAccepted)
		delete(f.live, name)
		f.actions["delete"]++
		return "delete", name
	case choice == 2 && len(ms) > 0:
		name := ms[f.rng.IntN(len(ms))]
		inst, _ := get(f.t, f.p.api, name)
		f.killed = inst.Tasks[inst.MasterOrdinal]
		killExecutor(f.t, f.cluster, f.killed)
		f.actions["failover"]++
		return "failover", name
	}
	typ, slaves := stateful.TypeMasterSlave, 2
	if f.rng.IntN(3) == 0 {
		typ, slaves = stateful.TypeSingle, 0
	}
	f.actions["create"]++
	return "create", f.create(typ, 1, slaves)
}

// snapshot is every live instance as GET shows it.
func (f *faultLoop) snapshot() map[string]*stateful.Instance {
	out := map[string]*stateful.Instance{}
	for name := range f.live {
		inst, _ := get(f.t, f.p.api, name)
		out[name] = inst
	}
	return out
}

// waitHealthy waits until the scheduler leads again, etcd answers and it
// is subscribed to Mesos: until then GET answers from a cache that may be
// stale.
func (f *faultLoop) waitHealthy() {
	f.t.Helper()
	eventually(f.t, "scheduler healthy", func() (bool, string) {
		code, body, err := do(http.MethodGet, f.p.api+"/v1/health", nil)
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
	})
}

// converge waits until every live instance is RUNNING and every deleted
// one is gone without a trace, then checks what must hold of each.
func (f *faultLoop) converge(before map[string]*stateful.Instance) {
	f.t.Helper()
	f.waitHealthy()
	for name := range f.live {
		inst := waitRunning(f.t, f.p.api, name)
		checkNoDuplicates(f.t, f.cluster, inst)
		if inst.Type == stateful.TypeMasterSlave && f.redis {
			f.checkReplication(inst)
		}
	}
	for name := range before {
		if f.live[name] {
			continue
		}
		eventually(f.t, name+" deleted", func() (bool, string) {
			_, code := get(f.t, f.p.api, name)
			return code == http.StatusNotFound, fmt.Sprint(code)
		})
		if live := liveMasterTasks(f.t, f.cluster.MasterURL(), name); len(live) != 0 {
			f.violation("deleted %s still has tasks at the master: %v", name, live)
		}
		eventually(f.t, "no process of "+name+" left", func() (bool, string) {
			pids := processesOf(name)
			return len(pids) == 0, fmt.Sprint(pids)
		})
	}
	// Nothing lost: the scheduler lists exactly the live instances.
	var listed []stateful.Instance
	body := call(f.t, http.MethodGet, f.p.api+"/v1/instances", nil, http.StatusOK)
	if err := json.Unmarshal(body, &listed); err != nil {
		f.t.Fatal(err)
	}
	names := map[string]bool{}
	for _, inst := range listed {
		if strings.HasPrefix(inst.Name, f.prefix) {
			names[inst.Name] = true
		}
	}
	for name := range f.live {
		if !names[name] {
			f.violation("instance %s was accepted and is not listed", name)
		}
		delete(names, name)
	}
	for name := range names {
		f.violation("instance %s is listed but should not exist", name)
	}
}

// checkSurvivors checks that every task of the instances of before is
// still the same attempt, but ordinal spare of instance touched (the
// failed-over master).
func (f *faultLoop) checkSurvivors(before map[string]*stateful.Instance, touched string, spare int) {
	f.t.Helper()
	for name, was := range before {
		if was == nil || !f.live[name] {
			continue
		}
		now, _ := get(f.t, f.p.api, name)
		if now == nil {
			f.violation("%s is gone", name)
			continue
		}
		for i, task := range now.Tasks {
			if name == touched && task.Ordinal == spare {
				continue
			}
			if i < len(was.Tasks) && task.TaskID != was.Tasks[i].TaskID {
				f.violation("%s was relaunched (%s → %s) although its instance was not touched", task.Name, was.Tasks[i].TaskID, task.TaskID)
			}
		}
	}
}

// checkReplication checks that every slave of inst replicates from its
// current master (with redis-server), counting a violation when one does
// not within the step timeout.
func (f *faultLoop) checkReplication(inst *stateful.Instance) {
	f.t.Helper()
	master := inst.Tasks[inst.MasterOrdinal]
	for _, task := range inst.Tasks {
		if task.Role != stateful.RoleSlave {
			continue
		}
		if ok, info := poll(stepTimeout, replicatesFrom(task, master)); !ok {
			f.violation("slave %s does not replicate from %s (%s:%d): %s", task.Name, master.Name, master.Host, master.Ports[testworkload.Port], info)
		}
	}
}
