package main

// Restart recovery: how long a cluster killed with SIGKILL takes, once
// started again on its work dir, to have every task running again. The
// cluster runs in a child process (this binary, started again with the
// cluster's Config in restartChildEnv) so that it can be killed.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos"
)

// restartChildEnv makes this binary run a cluster (its Config in JSON)
// until SIGTERM, printing "master <url>" once it serves.
const restartChildEnv = "LOCALMESOS_BENCH_RESTART_CLUSTER"

func init() {
	if js := os.Getenv(restartChildEnv); js != "" {
		os.Exit(runChildCluster(js))
	}
}

func runChildCluster(js string) int {
	var cfg localmesos.Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	c, err := localmesos.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	fmt.Printf("master %s\n", c.MasterURL())
	<-c.Done()
	return 0
}

// childCluster is one run of the cluster process.
type childCluster struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func startChildCluster(cfg localmesos.Config, log string) (*childCluster, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), restartChildEnv+"="+string(js))
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childCluster{cmd: cmd, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "master "); ok {
				urls <- u
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	select {
	case c.url = <-urls:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("cluster process exited before serving (log: %s)", log)
	case <-time.After(time.Minute):
		c.stop(syscall.SIGKILL)
		return nil, fmt.Errorf("cluster process not serving after a minute (log: %s)", log)
	}
}

func (c *childCluster) stop(sig syscall.Signal) {
	_ = c.cmd.Process.Signal(sig)
	<-c.done
}

// runningTasks counts the tasks /master/state shows TASK_RUNNING.
func runningTasks(url string) (int, error) {
	resp, err := http.Get(url + "/master/state")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Frameworks []struct {
			Tasks []struct {
				State string `json:"state"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, err
	}
	n := 0
	for _, f := range st.Frameworks {
		for _, t := range f.Tasks {
			if t.State == "TASK_RUNNING" {
				n++
			}
		}
	}
	return n, nil
}

// measureRestart runs n command tasks (of a checkpointing framework) on a
// cluster process, kills it with SIGKILL, starts it again on the same work
// dir and returns how long after that start /master/state shows every
// task RUNNING again: every agent recovered, every executor re-subscribed
// and every agent re-registered. That includes the executor
// re-registration timeout, which an agent always waits out (as Mesos'
// does) before it re-registers.
func measureRestart(agents, n int) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "localmesos-bench-restart-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	cfg := localmesos.NewConfig()
	cfg.Port = 0
	cfg.Agents = agents
	cfg.AllocationInterval = allocationInterval
	cfg.Resources = "cpus:4;mem:8192;disk:20480;ports:[31000-32000]"
	cfg.SharePorts = true
	cfg.WorkDir = filepath.Join(dir, "work")
	log := filepath.Join(dir, "cluster.log")

	// Tasks outlive a killed cluster process: whatever is left when this
	// returns is killed.
	defer killLeftovers(cfg.WorkDir)
	first, err := startChildCluster(cfg, log)
	if err != nil {
		return 0, err
	}
	defer first.stop(syscall.SIGKILL)
	if err := launchAndWait(first.url, agents, n); err != nil {
		return 0, err
	}
	first.stop(syscall.SIGKILL)

	cfg.Port, _ = strconv.Atoi(first.url[strings.LastIndexByte(first.url, ':')+1:])
	start := time.Now()
	second, err := startChildCluster(cfg, log)
	if err != nil {
		return 0, err
	}
	// The default close stops every task: nothing is left behind.
	defer second.stop(syscall.SIGTERM)
	deadline := start.Add(5 * time.Minute)
	for {
		running, err := runningTasks(second.url)
		if err == nil && running == n {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d tasks RUNNING 5 minutes after the restart (err %v; log %s)", running, n, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killLeftovers kills every process whose sandbox is under workDir.
func killLeftovers(workDir string) {
	entries, _ := os.ReadDir("/proc")
	marker := "MESOS_SANDBOX=" + workDir + "/"
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if strings.Contains(string(env), marker) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// launchAndWait launches n command tasks through the scheduler client and
// returns once all are RUNNING, leaving them running.
func launchAndWait(url string, agents, n int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFramework()
	offers := make(chan mesos.Offer, 4096)
	f.onOffers = func(batch []mesos.Offer) {
		for _, o := range batch {
			select {
			case offers <- o:
			case <-ctx.Done():
				return
			}
		}
	}
	client, errc, err := connect(ctx, url, f)
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		<-errc
	}()
	perAgent := (n + agents - 1) / agents
	launched, seq := 0, 0
	deadline := time.After(5 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for f.running.Load() < int64(n) {
		select {
		case o := <-offers:
			var infos []mesos.TaskInfo
			for i := 0; i < perAgent && launched < n; i++ {
				seq++
				launched++
				infos = append(infos, commandTask("r"+strconv.Itoa(seq), o.AgentID))
			}
			if len(infos) == 0 {
				_ = client.Decline(ctx, []mesos.OfferID{o.ID}, time.Hour)
				continue
			}
			op := mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: infos}}
			if err := client.Accept(ctx, []mesos.OfferID{o.ID}, []mesos.Offer_Operation{op}, time.Hour); err != nil {
				return fmt.Errorf("accept: %w", err)
			}
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("only %d of %d tasks RUNNING after 5 minutes", f.running.Load(), n)
		}
	}
	return nil
}

var restartTasks = flag.Int("restart-tasks", 0, "command tasks running across the kill -9 of the cluster process (0: -tasks)")

// restartFigure measures restart recovery runs times and formats the
// median as a row of the figures table.
func restartFigure(agents, tasks, runs int) (string, error) {
	n := *restartTasks
	if n <= 0 {
		n = tasks
	}
	var secs []float64
	for r := 0; r < runs; r++ {
		d, err := measureRestart(agents, n)
		if err != nil {
			return "", fmt.Errorf("restart recovery: %w", err)
		}
		fmt.Printf("restart run %d: %d tasks RUNNING again %.2fs after the restart\n", r+1, n, d.Seconds())
		secs = append(secs, d.Seconds())
	}
	return fmt.Sprintf("  %-44s %12s   %v of it: executor re-registration timeout the agents wait out",
		fmt.Sprintf("restart recovery (kill -9, %d tasks)", n), fmt.Sprintf("%.2f s", median(secs)), localmesos.DefaultExecutorReregistrationTimeout), nil
}
