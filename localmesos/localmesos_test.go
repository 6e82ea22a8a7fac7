package localmesos

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func TestParseResources(t *testing.T) {
	rs, err := ParseResources("cpus:4;mem:8192;disk:20480;ports:[31000-32000]")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpus": "4", "mem": "8192", "disk": "20480", "ports": "[31000-32000]"}
	if len(rs) != len(want) {
		t.Fatalf("got %d resources, want %d", len(rs), len(want))
	}
	for _, r := range rs {
		switch r.Name {
		case "ports":
			if got := r.Ranges.Range; len(got) != 1 || got[0].Begin != 31000 || got[0].End != 32000 {
				t.Errorf("ports = %v", got)
			}
		default:
			if got := r.Scalar.Value; want[r.Name] == "" || got <= 0 {
				t.Errorf("%s = %v", r.Name, got)
			}
		}
		if r.Role != nil {
			t.Errorf("%s has role %q, want unreserved", r.Name, *r.Role)
		}
	}

	more, err := ParseResources(" cpus(web):0.5 ; ports:[1-3,5,7-8] ; zones:{a, b} ")
	if err != nil {
		t.Fatal(err)
	}
	if more[0].GetRole() != "web" || more[0].Scalar.Value != 0.5 {
		t.Errorf("role or value lost: %+v", more[0])
	}
	if got := mesos.Ranges(more[1].Ranges.Range).Size(); got != 6 {
		t.Errorf("ports size = %d, want 6", got)
	}
	if got := more[2].Set.Item; len(got) != 2 || got[1] != "b" {
		t.Errorf("set = %v", got)
	}

	for _, bad := range []string{
		"", "cpus", "cpus:", "cpus:-1", "cpus:abc", "cpus:NaN", "cpus:1;cpus:2",
		"ports:[10-5]", "ports:[1-2", "ports:[]", "zones:{a", ":4", "cpus():1", "(r)cpus:1",
	} {
		if _, err := ParseResources(bad); err == nil {
			t.Errorf("ParseResources(%q) accepted", bad)
		}
	}
}

func TestSplitPortsIsDisjointAndComplete(t *testing.T) {
	rs, err := ParseResources("cpus:1;ports:[31000-31009,32000-32004]")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for i := 0; i < 3; i++ {
		mine, err := splitPorts(rs, i, 3)
		if err != nil {
			t.Fatal(err)
		}
		if mine[0].Name != "cpus" || mine[0].Scalar.Value != 1 {
			t.Errorf("agent %d: cpus changed: %+v", i, mine[0])
		}
		for _, r := range mine[1].Ranges.Range {
			for p := r.Begin; p <= r.End; p++ {
				seen[p]++
			}
		}
	}
	if len(seen) != 15 {
		t.Errorf("agents got %d distinct ports of 15", len(seen))
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("port %d given to %d agents", p, n)
		}
	}
	if _, err := splitPorts(rs, 0, 16); err == nil {
		t.Error("15 ports split among 16 agents: want an error")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := NewConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"port", func(c *Config) { c.Port = 70000 }, "port"},
		{"agents", func(c *Config) { c.Agents = 0 }, "agents"},
		{"host", func(c *Config) { c.Host = "localhost:1" }, "host"},
		{"agent ip", func(c *Config) { c.FirstAgentIP = "10.0.0.2" }, "loopback"},
		{"agent room", func(c *Config) { c.FirstAgentIP = "127.0.0.250"; c.Agents = 10 }, "no room"},
		{"resources", func(c *Config) { c.Resources = "cpus:x" }, "resources"},
		{"ports split", func(c *Config) { c.Resources = "cpus:1;ports:[1-2]" }, "split"},
		{"timer", func(c *Config) { c.AgentPingTimeout = 0 }, "agent ping timeout"},
	} {
		cfg := NewConfig()
		tc.change(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Errorf("%s: Start accepted an invalid config", tc.name)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	cfg := NewConfig()
	cfg.Port = 0
	cfg.Agents = 2
	cfg.WorkDir = t.TempDir()
	cfg.AgentPingTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	call := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, c.MasterURL()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := call("GET", "/admin/agents")
	var agents []AgentInfo
	if code != 200 || json.Unmarshal([]byte(body), &agents) != nil || len(agents) != 2 {
		t.Fatalf("GET /admin/agents = %d %s", code, body)
	}
	if agents[0].Hostname != "127.0.0.2" || agents[1].Hostname != "127.0.0.3" {
		t.Errorf("agent addresses %q %q, want 127.0.0.2 and 127.0.0.3", agents[0].Hostname, agents[1].Hostname)
	}
	if code, _ := call("POST", "/admin/agents/nope/remove"); code != http.StatusNotFound {
		t.Errorf("remove unknown agent: %d, want 404", code)
	}
	if code, _ := call("POST", "/admin/agents/"+agents[0].ID+"/executors/kill"); code != http.StatusBadRequest {
		t.Errorf("kill executor without ids: %d, want 400", code)
	}
	if code, body := call("POST", "/admin/agents/"+agents[1].ID+"/restart"); code != http.StatusNoContent {
		t.Errorf("restart agent: %d %s", code, body)
	}
	if code, body := call("POST", "/admin/agents/"+agents[0].ID+"/remove"); code != http.StatusNoContent {
		t.Fatalf("remove agent: %d %s", code, body)
	}
	if code, _ := call("POST", "/admin/agents/"+agents[0].ID+"/restart"); code != http.StatusConflict {
		t.Errorf("restart a removed agent: %d, want 409", code)
	}
	if got := c.Agents(); !got[0].Removed || got[1].Removed {
		t.Errorf("Agents() after remove = %+v", got)
	}

	// The master marks the removed agent unreachable after the ping
	// timeout; /master/state must then list only the live one as active.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := call("GET", "/master/state")
		var st struct {
			Agents []struct {
				ID     string `json:"id"`
				Active bool   `json:"active"`
			} `json:"slaves"`
		}
		_ = json.Unmarshal([]byte(body), &st)
		active := 0
		for _, a := range st.Agents {
			if a.Active {
				active++
			}
		}
		if active == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("master still lists %d active agents after removal: %s", active, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if code, _ := call("POST", "/admin/master/failover"); code != http.StatusNoContent {
		t.Errorf("master failover: %d", code)
	}
	c.Close()
	c.Close() // idempotent
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}
