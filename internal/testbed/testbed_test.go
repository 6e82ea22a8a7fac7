package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

type state struct {
	Slaves []struct {
		ID     string `json:"id"`
		Active bool   `json:"active"`
	} `json:"slaves"`
	UnreachableSlaves int `json:"unreachable_slaves"`
}

// awaitState polls the master's /master/state from node c until ok
// accepts it, and returns how long that took.
func awaitState(t *testing.T, c *http.Client, url, what string, ok func(state) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	var s state
	for time.Now().Before(deadline) {
		if res, err := c.Get(url + "/master/state"); err == nil {
			s = state{}
			err = json.NewDecoder(res.Body).Decode(&s)
			res.Body.Close()
			if err == nil && ok(s) {
				return time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s within 30s; last state %+v", what, s)
	return 0
}

// TestFaultsOnLocalmesos runs `localmesos master` and `localmesos agent`
// on two nodes of a bed and checks each kind of fault the way Mesos
// reacts to it: a partition (both ways, one way, link down) or a paused
// agent makes the agent unreachable after its missed pings, and healing
// brings it back by itself under the same ID; the client node sees all of
// it over the bed's network.
func TestFaultsOnLocalmesos(t *testing.T) {
	b := New(t)
	bin := GoBuild(t, "../../cmd/localmesos")
	m, a, c := b.Node(t, "master"), b.Node(t, "agent1"), b.Node(t, "client")
	dir := t.TempDir()
	ping := []string{"--agent-ping-timeout", "300ms", "--max-agent-ping-timeouts", "3"}
	if _, err := m.Start(filepath.Join(dir, "master.log"), bin, append([]string{"master", "--ip", m.IP, "--port", "5050"}, ping...)...); err != nil {
		t.Fatal(err)
	}
	start := func() *Proc {
		p, err := a.Start(filepath.Join(dir, "agent.log"), bin, append([]string{"agent", "--master", m.IP + ":5050", "--ip", a.IP, "--port", "5051",
			"--resources", "cpus:1;mem:256;ports:[31000-31099]", "--work-dir", filepath.Join(dir, "agent"), "--keep-tasks"}, ping...)...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	agent := start()
	client := c.HTTPClient(2 * time.Second)
	url := fmt.Sprintf("http://%s:5050", m.IP)
	registered := func(s state) bool { return len(s.Slaves) == 1 && s.UnreachableSlaves == 0 }
	unreachable := func(s state) bool { return len(s.Slaves) == 0 && s.UnreachableSlaves == 1 }
	awaitState(t, client, url, "the agent registered", registered)

	faults := []struct {
		name       string
		fault, end func() error
	}{
		{"partition", func() error { return b.Isolate(a) }, b.Heal},
		{"one-way partition (the agent's packets dropped)", func() error { return b.Cut([]*Node{a}, b.Nodes()) }, b.Heal},
		{"link down", a.LinkDown, a.LinkUp},
		{"pause", agent.Stop, agent.Cont},
	}
	for _, f := range faults {
		if err := f.fault(); err != nil {
			t.Fatal(err)
		}
		took := awaitState(t, client, url, "the agent unreachable after "+f.name, unreachable)
		if took < 500*time.Millisecond {
			t.Errorf("%s: agent unreachable after %v; want the ping budget (3 x 300ms)", f.name, took)
		}
		if err := f.end(); err != nil {
			t.Fatal(err)
		}
		awaitState(t, client, url, "the agent back after "+f.name, registered)
	}

	// kill -9 and a new agent process on the same work dir: same ID.
	var before state
	res, err := client.Get(url + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&before)
	res.Body.Close()
	if err := agent.Kill9(); err != nil {
		t.Fatal(err)
	}
	start()
	awaitState(t, client, url, "the restarted agent with its ID", func(s state) bool {
		return registered(s) && reflect.DeepEqual(s.Slaves, before.Slaves)
	})
}

// TestPartitionIsInTheKernel: a cut between two nodes stops a TCP
// connection between them, and only between them.
func TestPartitionIsInTheKernel(t *testing.T) {
	b := New(t)
	x, y, z := b.Node(t, "x"), b.Node(t, "y"), b.Node(t, "z")
	if _, err := x.Start("", "python3", "-m", "http.server", "--bind", x.IP, "8000"); err != nil {
		t.Fatal(err)
	}
	get := func(n *Node) error {
		res, err := n.HTTPClient(time.Second).Get("http://" + x.IP + ":8000/")
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for get(y) != nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := b.Cut([]*Node{y}, []*Node{x}); err != nil {
		t.Fatal(err)
	}
	if err := get(y); err == nil {
		t.Error("y reached x through a cut")
	}
	if err := get(z); err != nil {
		t.Errorf("z cannot reach x, which nothing cut: %v", err)
	}
	if err := b.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := get(y); err != nil {
		t.Errorf("y cannot reach x after healing: %v", err)
	}
	if got, again := Plan(7, 5, []Kind{PartitionBoth, Pause}, []string{"a", "b"}, time.Second, time.Second, 2*time.Second), Plan(7, 5, []Kind{PartitionBoth, Pause}, []string{"a", "b"}, time.Second, time.Second, 2*time.Second); !reflect.DeepEqual(got, again) {
		t.Errorf("Plan(7) differs between calls: %v and %v", got, again)
	}
}
