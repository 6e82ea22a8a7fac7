package localmesos

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// remoteMaster is a master alone with short Mesos timers: an agent is
// unreachable after 3 pings of 300 ms go unanswered.
func remoteMaster(t *testing.T) *MasterServer {
	t.Helper()
	cfg := NewMasterConfig()
	cfg.Host, cfg.Port = "127.0.0.1", 0
	cfg.AgentPingTimeout, cfg.MaxAgentPingTimeouts = 300*time.Millisecond, 3
	cfg.StatusUpdateRetryInterval = 2 * time.Second
	m, err := StartMaster(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func remoteAgentConfig(m *MasterServer, ip, workDir string) AgentConfig {
	cfg := NewAgentConfig(strings.TrimPrefix(m.MasterURL(), "http://"), ip)
	cfg.Resources = "cpus:2;mem:1024;disk:1024;ports:[42000-42099]"
	cfg.WorkDir = workDir
	cfg.AgentPingTimeout, cfg.MaxAgentPingTimeouts = 300*time.Millisecond, 3
	cfg.ExecutorShutdownGracePeriod = time.Second
	cfg.ExecutorReregistrationTimeout = 500 * time.Millisecond
	cfg.StatusUpdateRetryInterval = 2 * time.Second
	return cfg
}

// remoteFrameworkInfo is a checkpointing, PARTITION_AWARE framework: its
// tasks outlive an agent's restart and become TASK_UNREACHABLE.
func remoteFrameworkInfo() mesos.FrameworkInfo {
	info := schedFrameworkInfo("remote", time.Minute)
	info.Checkpoint = proto.Bool(true)
	info.Capabilities = append(info.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE})
	return info
}

// TestRemoteAgentRunsTasks: a master alone and an agent alone, talking
// over HTTP, run a task as one cluster does; the agent restarted on its
// work dir (tasks kept) comes back with the same ID and the task still
// answers a kill.
func TestRemoteAgentRunsTasks(t *testing.T) {
	m := remoteMaster(t)
	work := filepath.Join(t.TempDir(), "agent")
	acfg := remoteAgentConfig(m, "127.0.13.2", work)
	acfg.KeepTasksOnClose = true
	a, err := StartAgent(context.Background(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)

	sc := schedRunClient(t, m, codecs.MediaTypeProtobuf, remoteFrameworkInfo(), "")
	sc.awaitType(scheduler.Event_SUBSCRIBED)
	o := sc.offer()
	if o.AgentID.Value != a.ID() || o.GetHostname() != "127.0.13.2" {
		t.Fatalf("offer from agent %s on %s; want %s on 127.0.13.2", o.AgentID.Value, o.GetHostname(), a.ID())
	}
	sc.launch(o, schedCommandTask(o, "sleeper", "sleep 60"))
	sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)

	a.Close() // leaves the task running
	a2, err := StartAgent(context.Background(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a2.Close)
	if a2.ID() != a.ID() {
		t.Fatalf("agent restarted on its work dir has ID %s, want %s", a2.ID(), a.ID())
	}
	waitAgents(t, m.MasterURL(), 1, 0)
	sc.mustCall(calls.Kill("sleeper", a.ID()))
	sc.awaitUpdate("sleeper", mesos.TASK_KILLED)
}

// TestRemoteAgentUnreachableAndBack: an agent whose process is gone is
// unreachable after its missed pings (its tasks TASK_UNREACHABLE for a
// PARTITION_AWARE framework); started again it re-registers by itself.
func TestRemoteAgentUnreachableAndBack(t *testing.T) {
	m := remoteMaster(t)
	work := filepath.Join(t.TempDir(), "agent")
	acfg := remoteAgentConfig(m, "127.0.13.3", work)
	acfg.KeepTasksOnClose = true
	a, err := StartAgent(context.Background(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	sc := schedRunClient(t, m, codecs.MediaTypeProtobuf, remoteFrameworkInfo(), "")
	sc.awaitType(scheduler.Event_SUBSCRIBED)
	o := sc.offer()
	sc.launch(o, schedCommandTask(o, "sleeper", "sleep 60"))
	sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)

	a.Close()
	start := time.Now()
	st := sc.awaitUpdate("sleeper", mesos.TASK_UNREACHABLE)
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("unreachable after %v; want about 3 missed pings of 300ms", took)
	}
	if st.GetReason() != mesos.REASON_AGENT_REMOVED {
		t.Errorf("TASK_UNREACHABLE reason %v, want REASON_AGENT_REMOVED", st.GetReason())
	}
	waitAgents(t, m.MasterURL(), 0, 1)

	acfg.KeepTasksOnClose = false
	a2, err := StartAgent(context.Background(), acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a2.Close)
	// Mesos tells a PARTITION_AWARE framework its task is back.
	back := sc.awaitUpdate("sleeper", mesos.TASK_RUNNING)
	if back.GetReason() != mesos.REASON_AGENT_REREGISTERED {
		t.Errorf("TASK_RUNNING after the agent came back: reason %v, want REASON_AGENT_REREGISTERED", back.GetReason())
	}
	waitAgents(t, m.MasterURL(), 1, 0)
	sc.mustCall(calls.Kill("sleeper", a.ID()))
	sc.awaitUpdate("sleeper", mesos.TASK_KILLED)
}

// waitAgents polls /master/state until it lists n agents and u
// unreachable ones.
func waitAgents(t *testing.T, url string, n, u int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got, gotU int
	for time.Now().Before(deadline) {
		res, err := http.Get(url + "/master/state")
		if err == nil {
			var s struct {
				Slaves            []json.RawMessage `json:"slaves"`
				UnreachableSlaves int               `json:"unreachable_slaves"`
			}
			err = json.NewDecoder(res.Body).Decode(&s)
			res.Body.Close()
			got, gotU = len(s.Slaves), s.UnreachableSlaves
			if err == nil && got == n && gotU == u {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/master/state: %d agents, %d unreachable; want %d and %d", got, gotU, n, u)
}

// TestMasterConfigValidate: a master alone refuses settings that cannot
// work, naming the first bad one in the same order on every run.
func TestMasterConfigValidate(t *testing.T) {
	if err := NewMasterConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*MasterConfig)
		want   string
	}{
		{"port", func(c *MasterConfig) { c.Port = -1 }, "port"},
		{"host", func(c *MasterConfig) { c.Host = "localhost" }, "host"},
		{"pings", func(c *MasterConfig) { c.MaxAgentPingTimeouts = 0 }, "max agent ping timeouts"},
		{"timers", func(c *MasterConfig) { c.HeartbeatInterval, c.AllocationInterval = 0, -time.Second }, "allocation interval -1s"},
	} {
		for range 5 {
			cfg := NewMasterConfig()
			tc.change(&cfg)
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: Validate() = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		}
	}
}
