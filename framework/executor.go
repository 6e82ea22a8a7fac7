package framework

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/executor"
)

// ExecutorArg is the first argument agents start the framework binary with
// when it is to be the executor.
const ExecutorArg = "executor"

// executorCommand is how agents start the executor in path mode: this
// binary, by its absolute path, with the executor argument.
func executorCommand(cfg Config) (mesos.CommandInfo, error) {
	if _, err := os.Stat(cfg.ExecutorBinary); err != nil {
		return mesos.CommandInfo{}, fmt.Errorf("framework: executor binary: %w", err)
	}
	shell := false
	return mesos.CommandInfo{
		Shell:     &shell,
		Value:     &cfg.ExecutorBinary,
		Arguments: executorArgs(cfg, cfg.ExecutorBinary),
	}, nil
}

// executorArgs is the executor's argv.
func executorArgs(cfg Config, program string) []string {
	args := []string{program, ExecutorArg}
	if cfg.ExecutorStatsInterval > 0 {
		args = append(args, "--stats-interval="+cfg.ExecutorStatsInterval.String())
	}
	return args
}

// binaryServer serves this binary to agents (serve mode), under a path that
// names its content hash, so agents' fetcher caches never hand out a stale
// executor.
type binaryServer struct {
	addr string
	path string // URL path
	file string // the binary
}

func newBinaryServer(cfg Config) (*binaryServer, mesos.CommandInfo, error) {
	f, err := os.Open(cfg.ExecutorBinary)
	if err != nil {
		return nil, mesos.CommandInfo{}, fmt.Errorf("framework: executor binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, mesos.CommandInfo{}, fmt.Errorf("framework: executor binary: %w", err)
	}
	name := filepath.Base(cfg.ExecutorBinary)
	listen, advertise, err := binaryAddrs(cfg.ExecutorHTTP, cfg.Advertise)
	if err != nil {
		return nil, mesos.CommandInfo{}, err
	}
	b := &binaryServer{
		addr: listen,
		path: "/executor/" + hex.EncodeToString(h.Sum(nil))[:16] + "/" + name,
		file: cfg.ExecutorBinary,
	}
	url := "http://" + advertise + b.path
	yes, no := true, false
	value := "./" + name
	cmd := mesos.CommandInfo{
		URIs:      []mesos.CommandInfo_URI{{Value: url, Executable: &yes, Extract: &no, Cache: &yes, OutputFile: &name}},
		Shell:     &no,
		Value:     &value,
		Arguments: executorArgs(cfg, value),
	}
	glog.Infof("framework: agents fetch the executor from %s", url)
	return b, cmd, nil
}

// binaryAddrs returns where the binary is served and the host:port agents
// fetch it from, given --executor-http and --advertise (either may be
// empty). The server listens only where agents are told to connect: the
// advertised address, or loopback when nothing is said (agents on this
// host); every interface only when --executor-http says so.
func binaryAddrs(listen, advertise string) (string, string, error) {
	port := DefaultExecutorPort
	if listen != "" {
		_, port, _ = net.SplitHostPort(listen) // validated
	}
	if advertise != "" {
		if _, _, err := net.SplitHostPort(advertise); err != nil {
			advertise = net.JoinHostPort(advertise, port)
		}
	}
	switch {
	case listen == "" && advertise != "":
		listen = advertise
	case listen == "":
		listen = net.JoinHostPort("127.0.0.1", port)
	}
	if advertise == "" {
		host, _, _ := net.SplitHostPort(listen)
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			return listen, listen, nil
		}
		name, err := os.Hostname()
		if err != nil {
			return "", "", fmt.Errorf("framework: --advertise not given and no hostname: %w", err)
		}
		advertise = net.JoinHostPort(name, port)
	}
	return listen, advertise, nil
}

// Run serves the binary until ctx ends.
func (b *binaryServer) Run(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+b.path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeFile(w, r, b.file)
	})
	srv := &http.Server{Addr: b.addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", b.addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// RunExecutor runs this process as the executor of workload w, until the
// agent shuts it down or ctx ends. The workload's StatsReporter, if it has
// one, adds its figures to every stats report, and its HealthChecker, if
// it has one, runs beside each task's spec health check. Main calls it
// when the process was started as an executor; a TestMain may too.
func RunExecutor(ctx context.Context, w stateful.Workload) error {
	return runExecutor(ctx, w, 0)
}

func runExecutor(ctx context.Context, w stateful.Workload, statsInterval time.Duration) error {
	opts := executor.Options{StatsInterval: statsInterval}
	if r, ok := w.(stateful.StatsReporter); ok {
		opts.Stats = statsProvider(r)
	}
	if c, ok := w.(stateful.HealthChecker); ok {
		opts.Health = healthProvider(c)
	}
	if vi, ok := w.(stateful.VolumeInitializer); ok {
		opts.InitVolume = volumeInit(vi)
	}
	return executor.Run(ctx, opts)
}

// statsProvider runs the workload's Stats in the executor.
func statsProvider(r stateful.StatsReporter) executor.StatsProvider {
	return executor.StatsProviderFunc(func(ctx context.Context, th executor.TaskHandle) (map[string]string, error) {
		return r.Stats(ctx, executorTask(th), taskExec(th))
	})
}

// healthProvider runs the workload's CheckHealth in the executor.
func healthProvider(c stateful.HealthChecker) executor.HealthProvider {
	return executor.HealthProviderFunc(func(ctx context.Context, th executor.TaskHandle) error {
		return c.CheckHealth(ctx, executorTask(th), taskExec(th))
	})
}

// volumeInit runs the workload's InitVolume in the executor, with the
// master the scheduler named in the task's data.
func volumeInit(vi stateful.VolumeInitializer) executor.VolumeInitHook {
	return func(ctx context.Context, th executor.TaskHandle, volume string) error {
		var master *stateful.Task
		if d := th.Data; d != nil && d.Master != nil {
			master = &stateful.Task{Name: d.Master.Name, Host: d.Master.Host, Role: stateful.RoleMaster, State: stateful.TaskRunning}
			if inst, ordinal, err := stateful.ParseTaskName(d.Master.Name); err == nil {
				master.Instance, master.Ordinal = inst, ordinal
			}
			if len(d.Master.Ports) > 0 {
				master.Ports = make(map[string]int, len(d.Master.Ports))
				for name, p := range d.Master.Ports {
					master.Ports[name] = int(p)
				}
			}
		}
		return vi.InitVolume(ctx, executorTask(th), volume, master)
	}
}

// taskExec runs commands inside the executor's own task.
func taskExec(th executor.TaskHandle) stateful.ExecFunc {
	return func(ctx context.Context, cmd []string) (stateful.ExecResult, error) {
		out, err := th.Exec(ctx, cmd...)
		return stateful.ExecResult{ExitCode: out.ExitCode, Stdout: out.Stdout, Stderr: out.Stderr}, err
	}
}

// executorTask describes the executor's own task the way the scheduler
// does.
func executorTask(th executor.TaskHandle) *stateful.Task {
	t := &stateful.Task{TaskID: th.ID, State: stateful.TaskRunning, Host: th.Host}
	if id, err := stateful.ParseTaskID(th.ID); err == nil {
		t.Instance, t.Ordinal, t.Attempt, t.Name = id.Instance, id.Ordinal, id.Attempt, id.TaskName()
	}
	t.Role = stateful.Role(th.Role())
	if d := th.Data; d != nil {
		if len(d.Ports) > 0 {
			t.Ports = make(map[string]int, len(d.Ports))
			for name, p := range d.Ports {
				t.Ports[name] = int(p)
			}
		}
	}
	return t
}
