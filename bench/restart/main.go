// Command restart measures what a scheduler restart costs: with 100 tasks
// running on the framework's embedded cluster (--master=local), the
// framework binary is killed with SIGKILL and started again on the same
// data dir; it prints the time from that start until every instance is
// RUNNING again with the master running the very same attempts, and how
// many tasks were relaunched. Beside it, the same 100 tasks brought up by a
// framework on a fresh data dir: what a restart cost when every task was
// relaunched.
//
//	go run ./bench/restart [-instances 10] [-peers 10] [-runs 3]
//
// The framework is this binary run again (BENCH_RESTART_ROLE=scheduler),
// with a workload of "sleep" processes; it runs itself as the executor.
// Figures are printed, not asserted; they depend on the machine and its
// load.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/executor"
	"github.com/mesos-stateful/stateful/framework"
)

const roleEnv = "BENCH_RESTART_ROLE"

// sleeper is the benchmark's workload: a process that sleeps.
type sleeper struct{ stateful.BaseWorkload }

func (sleeper) Defaults() stateful.Spec {
	return stateful.Spec{CPU: 0.01, Mem: 8, Disk: 1, Command: "exec sleep 86400", Network: stateful.NetworkHost}
}

func main() {
	if executor.IsExecutorInvocation(os.Args) || os.Getenv(roleEnv) == "scheduler" {
		framework.Main(sleeper{}, func(c *framework.Config) {
			c.Creator.RelaunchBackoff = 100 * time.Millisecond
			c.Creator.RelaunchMaxBackoff = time.Second
			c.Offers.DeclineRefuse = 200 * time.Millisecond
			c.Offers.ReviveInterval = 100 * time.Millisecond
			c.Offers.ResyncInterval = 200 * time.Millisecond
			c.LeaderTTL = time.Second
		})
		return
	}
	instances := flag.Int("instances", 10, "instances of type C")
	peers := flag.Int("peers", 10, "tasks per instance (one per agent)")
	runs := flag.Int("runs", 3, "restarts measured")
	flag.Parse()
	if err := bench(*instances, *peers, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "restart:", err)
		os.Exit(1)
	}
}

func bench(instances, peers, runs int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "bench-restart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	total := instances * peers
	fmt.Printf("%d tasks (%d instances of %d peers) on %d embedded agents\n\n", total, instances, peers, peers)

	// A fresh data dir: every task is launched.
	fresh, err := startScheduler(self, filepath.Join(root, "fresh"), peers, false)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := createAll(fresh, instances, peers); err != nil {
		fresh.stop()
		return err
	}
	if _, err := waitAll(fresh, instances, 5*time.Minute); err != nil {
		fresh.stop()
		return err
	}
	freshTook := time.Since(start)
	fresh.stop()

	// The same data dir after SIGKILL: every task should be taken back.
	p, err := startScheduler(self, filepath.Join(root, "same"), peers, true)
	if err != nil {
		return err
	}
	defer p.stopAll(self)
	if err := createAll(p, instances, peers); err != nil {
		return err
	}
	before, err := waitAll(p, instances, 5*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("%-34s %12s %12s\n", "", "to RUNNING", "relaunched")
	fmt.Printf("%-34s %12s %12d\n", "fresh data dir (launch all)", freshTook.Round(time.Millisecond), total)
	for i := range runs {
		p.kill()
		start := time.Now()
		if err := p.start(); err != nil {
			return err
		}
		after, err := waitAll(p, instances, 5*time.Minute)
		if err != nil {
			return err
		}
		if err := waitMaster(p, after, time.Minute); err != nil {
			return err
		}
		took := time.Since(start)
		relaunched := 0
		for id, tid := range after {
			if before[id] != tid {
				relaunched++
			}
		}
		fmt.Printf("%-34s %12s %12d\n", fmt.Sprintf("same data dir after SIGKILL (#%d)", i+1), took.Round(time.Millisecond), relaunched)
		before = after
	}
	return nil
}

// scheduler is the framework binary run as a subprocess.
type scheduler struct {
	args    []string
	dataDir string
	api     *client.Client
	master  string
	cmd     *exec.Cmd
	exited  chan struct{}
}

func startScheduler(self, dataDir string, agents int, keep bool) (*scheduler, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	api, err := freePort()
	if err != nil {
		return nil, err
	}
	master, err := freePort()
	if err != nil {
		return nil, err
	}
	cli, err := client.New("http://127.0.0.1:"+api, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	s := &scheduler{dataDir: dataDir, api: cli, master: "http://127.0.0.1:" + master}
	s.args = []string{
		self, "--http=127.0.0.1:" + api, "--master=local", "--local-port=" + master,
		"--local-agents=" + strconv.Itoa(agents), "--local-resources=cpus:4;mem:8192;disk:8192;ports:[22000-22999]",
		"--data-dir=" + dataDir, "--runtime=process", "--name=benchrestart", "--executor-mode=path",
	}
	if keep {
		s.args = append(s.args, "--local-keep-tasks")
	}
	return s, s.start()
}

func (s *scheduler) start() error {
	logf, err := os.OpenFile(filepath.Join(s.dataDir, "scheduler.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Env = append(os.Environ(), roleEnv+"=scheduler")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(s.cmd, s.exited)
	return poll(time.Minute, "the scheduler's health", func() (bool, error) {
		select {
		case <-s.exited:
			return false, fmt.Errorf("the scheduler exited (%s); see %s", s.cmd.ProcessState, filepath.Join(s.dataDir, "scheduler.log"))
		default:
		}
		h, err := s.api.Health(context.Background())
		return err == nil && h.OK(), nil
	})
}

// kill ends the scheduler with SIGKILL.
func (s *scheduler) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop ends the scheduler with SIGTERM; without --local-keep-tasks that
// stops every task.
func (s *scheduler) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		s.kill()
	}
}

// stopAll leaves nothing running: a last start without keeping tasks,
// then a stop.
func (s *scheduler) stopAll(self string) {
	s.stop()
	s.args = slices.DeleteFunc(s.args, func(a string) bool { return a == "--local-keep-tasks" })
	if err := s.start(); err == nil {
		s.stop()
	}
}

func createAll(s *scheduler, instances, peers int) error {
	for i := range instances {
		name := fmt.Sprintf("bench%d", i)
		if _, err := s.api.Create(context.Background(), client.CreateRequest{Name: name, Type: string(stateful.TypeCluster), Masters: &peers}); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	return nil
}

// waitAll waits until every instance is RUNNING and returns each task's
// current attempt.
func waitAll(s *scheduler, instances int, timeout time.Duration) (map[string]string, error) {
	var ids map[string]string
	err := poll(timeout, "every instance RUNNING", func() (bool, error) {
		ids = map[string]string{}
		for i := range instances {
			inst, err := s.api.Get(context.Background(), fmt.Sprintf("bench%d", i))
			if err != nil {
				return false, nil
			}
			if inst.Status != stateful.StatusRunning {
				return false, nil
			}
			for _, t := range inst.Tasks {
				ids[t.Name] = t.TaskID
			}
		}
		return true, nil
	})
	return ids, err
}

// waitMaster waits until the master runs exactly the given attempts: the
// agents re-registered with what they recovered.
func waitMaster(s *scheduler, ids map[string]string, timeout time.Duration) error {
	return poll(timeout, "the master runs every task", func() (bool, error) {
		b, err := getBody(s.master + "/master/state")
		if err != nil {
			return false, nil
		}
		var st struct {
			Frameworks []struct {
				Tasks []struct {
					ID    string `json:"id"`
					State string `json:"state"`
				} `json:"tasks"`
			} `json:"frameworks"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return false, err
		}
		running := map[string]bool{}
		for _, f := range st.Frameworks {
			for _, t := range f.Tasks {
				if t.State == "TASK_RUNNING" {
					running[t.ID] = true
				}
			}
		}
		for _, id := range ids {
			if !running[id] {
				return false, nil
			}
		}
		return true, nil
	})
}

func poll(timeout time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, _ := strings.Cut(l.Addr().String(), ":")
	return port, nil
}

// getBody returns the body of a 200 answer to GET url.
func getBody(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}
