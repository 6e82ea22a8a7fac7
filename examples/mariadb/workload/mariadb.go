// Package workload is the MariaDB example's workload, built on the stateful
// toolkit's public API only: a primary (master) and replicas (slaves) with
// GTID replication. A fresh volume is initialised in the executor
// (InitVolume): mariadb-install-db, and for a replica a copy of the primary
// (mariadb-dump --gtid --master-data into a temporary server) with its
// replication already configured, so it replicates from its first start.
// When the primary is lost the replica that has applied the most is
// promoted; a planned switchover sets the primary read-only, waits until the
// replica has every transaction (MASTER_GTID_WAIT) and promotes it.
//
// Clients use the user "app" (no password; it cannot write on a read-only
// server); the toolkit's own commands use "stateful" (all privileges). Both
// are created unlogged on every start (--init-file), so a server never
// makes transactions of its own that a replica would lack.
package workload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
)

// PortName is the port mariadbd listens on.
const PortName = "mysql"

// Users: AppUser for clients, AdminUser for the workload's commands.
const (
	AppUser   = "app"
	AdminUser = "stateful"
)

// DefaultCommand runs mariadbd on the task's volume (the process runtime
// sets $STATEFUL_VOLUME); Config appends the launch's options. The socket
// is a relative path (mariadbd runs in its datadir): a Unix socket's path
// may not exceed 107 bytes, which a volume's path under an agent's work
// dir can.
const DefaultCommand = `exec mariadbd --no-defaults --user="$(id -un)" --datadir="$STATEFUL_VOLUME/data" --socket=mysqld.sock --pid-file="$STATEFUL_VOLUME/mysqld.pid" --init-file="$STATEFUL_VOLUME/init.sql"`

// MariaDB is the workload.
type MariaDB struct {
	stateful.BaseWorkload
	handle atomic.Pointer[stateful.Handle]
}

var (
	_ stateful.Workload          = (*MariaDB)(nil)
	_ stateful.Initializer       = (*MariaDB)(nil)
	_ stateful.Switchoverer      = (*MariaDB)(nil)
	_ stateful.VolumeInitializer = (*MariaDB)(nil)
	_ stateful.HealthChecker     = (*MariaDB)(nil)
	_ stateful.StatsReporter     = (*MariaDB)(nil)
	_ stateful.InstanceValidator = (*MariaDB)(nil)
)

// New returns the workload.
func New() *MariaDB { return &MariaDB{} }

// Init keeps h for Config.
func (m *MariaDB) Init(h stateful.Handle) { m.handle.Store(&h) }

// Defaults: 0.5 CPU, 512 MB, a "mysql" port, a volume, a TCP health check
// (CheckHealth adds replication).
func (m *MariaDB) Defaults() stateful.Spec {
	return stateful.Spec{
		CPU: 0.5, Mem: 512, Disk: 1024,
		Command: DefaultCommand,
		Network: stateful.NetworkHost,
		Ports:   []string{PortName},
		Volume:  "/var/lib/mysql",
		Health:  &stateful.HealthCheck{TCP: PortName, IntervalS: 2, GraceS: 60, TimeoutS: 2, ConsecutiveFailures: ptr(30)},
	}
}

func ptr[T any](v T) *T { return &v }

// ValidateInstance refuses C instances and bridge networking.
func (m *MariaDB) ValidateInstance(inst *stateful.Instance) error {
	if inst.Type == stateful.TypeCluster {
		return &stateful.ValidationError{Field: "type", Msg: "the MariaDB example runs S and MS instances (primary and replicas)"}
	}
	if inst.Spec.Network == stateful.NetworkBridge {
		return &stateful.ValidationError{Field: "spec.network", Msg: "the MariaDB example needs host networking"}
	}
	if !inst.Spec.HasPort(PortName) {
		return &stateful.ValidationError{Field: "spec.ports", Msg: fmt.Sprintf("must name %q", PortName)}
	}
	if inst.Spec.Volume == "" {
		return &stateful.ValidationError{Field: "spec.volume", Msg: "MariaDB needs a volume"}
	}
	return nil
}

// Config gives mariadbd its address, a server id, binary logging with GTIDs
// and, for a replica, read-only.
func (m *MariaDB) Config(_ context.Context, inst *stateful.Instance, task *stateful.Task) (stateful.LaunchConfig, error) {
	port := task.Ports[PortName]
	if port <= 0 || task.Host == "" {
		return stateful.LaunchConfig{}, fmt.Errorf("task %s: not placed", task.Name)
	}
	args := []string{
		"--port=" + strconv.Itoa(port),
		"--bind-address=" + task.Host,
		// Server ids must differ within the instance.
		"--server-id=" + strconv.Itoa(task.Ordinal+1),
		"--log-bin=mysql-bin", "--log-slave-updates", "--binlog-format=ROW",
		"--gtid-strict-mode=1", "--skip-name-resolve",
		// The same relay log name as the seeding server's, whose
		// replication settings the replica starts from.
		"--relay-log=relay-bin",
		"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
		"--performance-schema=0",
	}
	if task.Role == stateful.RoleSlave {
		// A fresh replica is seeded from the primary: wait for it to run
		// (an error leaves the task queued for a later offer).
		tasks := inst.Tasks
		if len(tasks) == 0 {
			if h := m.handle.Load(); h != nil {
				tasks = (*h).Tasks(inst)
			}
		}
		if p := masterOf(inst, tasks); p == nil || !p.State.IsRunning() {
			return stateful.LaunchConfig{}, fmt.Errorf("replica %s waits for the primary to run", task.Name)
		}
		args = append(args, "--read-only=1")
	}
	return stateful.LaunchConfig{Args: args}, nil
}

// initSQL creates the users on every start, unlogged.
const initSQL = `SET sql_log_bin=0;
CREATE USER IF NOT EXISTS 'stateful'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'stateful'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'app'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES ON *.* TO 'app'@'%';
`

// InitVolume (in the executor) makes a fresh data directory; for a replica
// it copies the primary into it with a temporary server and configures
// replication from the copy's GTID position.
func (m *MariaDB) InitVolume(ctx context.Context, task *stateful.Task, volume string, master *stateful.Task) error {
	data := filepath.Join(volume, "data")
	// An interrupted earlier call may have left a half-made directory.
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(volume, "init.sql"), []byte(initSQL), 0o640); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--datadir="+data, "--user="+currentUser(),
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db: %w: %s", err, tail(out))
	}
	if task.Role != stateful.RoleSlave {
		return nil
	}
	if master == nil {
		return errors.New("a replica's volume needs the primary's address to be seeded, and none was given")
	}
	host, port := master.Host, master.Ports[PortName]
	if host == "" || port <= 0 {
		return fmt.Errorf("primary %s has no address", master.Name)
	}
	return seed(ctx, volume, host, port)
}

// seed loads a dump of the primary into the fresh data directory through a
// temporary server without networking or binary log, and records where
// replication starts (the dump's gtid_slave_pos) with CHANGE MASTER.
func seed(ctx context.Context, volume, host string, port int) error {
	// The socket is relative to the data directory, where mariadbd runs
	// and so do its clients here: a Unix socket's path may not exceed 107
	// bytes, which the volume's can.
	const sock = "seed.sock"
	dataDir := filepath.Join(volume, "data")
	srv := exec.Command("mariadbd", "--no-defaults", "--user="+currentUser(), "--datadir="+dataDir,
		"--socket="+sock, "--skip-networking", "--skip-grant-tables", "--skip-slave-start", "--server-id=99", "--relay-log=relay-bin",
		"--innodb-buffer-pool-size=32M", "--performance-schema=0", "--pid-file="+filepath.Join(volume, "seed.pid"))
	var srvLog strings.Builder
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		return fmt.Errorf("temporary server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	}()
	local := func(sql string) error {
		cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--socket="+sock, "-u", "root", "-e", sql)
		cmd.Dir = dataDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w: %s", sql, err, tail(out))
		}
		return nil
	}
	// Wait for the temporary server.
	for {
		if local("SELECT 1") == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("temporary server exited: %v: %s", err, tail([]byte(srvLog.String())))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	dump := exec.CommandContext(ctx, "mariadb-dump", "--no-defaults", "-h", host, "-P", strconv.Itoa(port), "-u", AdminUser,
		"--all-databases", "--single-transaction", "--gtid", "--master-data=1", "--routines", "--events", "--triggers")
	load := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--socket="+sock, "-u", "root")
	load.Dir = dataDir
	pipe, err := dump.StdoutPipe()
	if err != nil {
		return err
	}
	load.Stdin = pipe
	var dumpErr, loadOut strings.Builder
	dump.Stderr = &dumpErr
	load.Stdout, load.Stderr = &loadOut, &loadOut
	if err := dump.Start(); err != nil {
		return fmt.Errorf("mariadb-dump: %w", err)
	}
	lerr := load.Run()
	derr := dump.Wait()
	if derr != nil {
		return fmt.Errorf("mariadb-dump from %s:%d: %w: %s", host, port, derr, tail([]byte(dumpErr.String())))
	}
	if lerr != nil {
		return fmt.Errorf("loading the dump: %w: %s", lerr, tail([]byte(loadOut.String())))
	}
	return local(fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", host, port, AdminUser))
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid())
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// runFunc runs a command inside a task: Handle.Exec or the executor's
// ExecFunc.
type runFunc func(ctx context.Context, cmd []string) (stateful.ExecResult, error)

func onTask(h stateful.Handle, t *stateful.Task) runFunc {
	return func(ctx context.Context, cmd []string) (stateful.ExecResult, error) { return h.Exec(ctx, t, cmd) }
}

func execFunc(exec stateful.ExecFunc) runFunc { return runFunc(exec) }

// query runs SQL as the admin user against task's server and returns the
// tab-separated rows (no header).
func query(ctx context.Context, run runFunc, task *stateful.Task, sql string) ([][]string, error) {
	port := task.Ports[PortName]
	if task.Host == "" || port <= 0 {
		return nil, fmt.Errorf("task %s has no address", task.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := run(ctx, []string{"mariadb", "--no-defaults", "-h", task.Host, "-P", strconv.Itoa(port), "-u", AdminUser, "-N", "-B", "-e", sql})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", sql, task.Name, err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s on %s: %s", sql, task.Name, strings.TrimSpace(res.Stderr+res.Stdout))
	}
	var rows [][]string
	for line := range strings.Lines(res.Stdout) {
		line = strings.TrimRight(line, "\n")
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

func exec1(ctx context.Context, run runFunc, task *stateful.Task, sql string) error {
	_, err := query(ctx, run, task, sql)
	return err
}

// slaveStatus reads SHOW SLAVE STATUS: configured is false when the server
// replicates nothing; failed when a thread stopped on an error; detail
// says what the threads do.
func slaveStatus(ctx context.Context, run runFunc, task *stateful.Task) (configured, running, failed bool, detail string, err error) {
	rows, err := query(ctx, run, task, "SHOW SLAVE STATUS")
	if err != nil {
		return false, false, false, "", err
	}
	if len(rows) == 0 {
		return false, false, false, "", nil
	}
	r := rows[0]
	col := func(i int) string {
		if i < len(r) {
			return r[i]
		}
		return ""
	}
	// Columns of SHOW SLAVE STATUS: 1 Master_Host, 3 Master_Port, 10
	// Slave_IO_Running, 11 Slave_SQL_Running, 34 Last_IO_Errno, 35
	// Last_IO_Error, 36 Last_SQL_Errno, 37 Last_SQL_Error.
	running = col(10) == "Yes" && col(11) == "Yes"
	failed = (col(34) != "" && col(34) != "0") || (col(36) != "" && col(36) != "0")
	detail = fmt.Sprintf("master %s:%s, IO %s, SQL %s", col(1), col(3), col(10), col(11))
	if failed {
		detail += fmt.Sprintf("; IO error %s %s; SQL error %s %s", col(34), col(35), col(36), col(37))
	}
	return true, running, failed, detail, nil
}

// CheckHealth (in the executor): the server answers; a replica must
// replicate once it has been pointed at a primary.
func (m *MariaDB) CheckHealth(ctx context.Context, task *stateful.Task, run stateful.ExecFunc) error {
	if err := exec1(ctx, execFunc(run), task, "SELECT 1"); err != nil {
		return err
	}
	if task.Role != stateful.RoleSlave {
		return nil
	}
	configured, running, failed, detail, err := slaveStatus(ctx, execFunc(run), task)
	if err != nil {
		return err
	}
	if configured && !running {
		// A replica whose threads stopped without an error (e.g. they
		// did not start with the server) is started here: nothing else
		// would, as SlaveRunning waits for it to be healthy.
		if !failed && exec1(ctx, execFunc(run), task, "START SLAVE") == nil {
			return fmt.Errorf("replica %s was not replicating; started it", task.Name)
		}
		return fmt.Errorf("replica %s is not replicating: %s", task.Name, detail)
	}
	return nil
}

// Stats (in the executor): the role the server plays and how far it has
// applied (the sequence number of its GTID position).
func (m *MariaDB) Stats(ctx context.Context, task *stateful.Task, run stateful.ExecFunc) (map[string]string, error) {
	rows, err := query(ctx, execFunc(run), task, "SELECT @@read_only, @@gtid_current_pos")
	if err != nil || len(rows) == 0 || len(rows[0]) < 2 {
		return nil, fmt.Errorf("stats of %s: %v", task.Name, err)
	}
	role := "master"
	if rows[0][0] == "1" {
		role = "slave"
	}
	return map[string]string{
		stateful.StatRole:              role,
		stateful.StatReplicationOffset: strconv.FormatInt(gtidSeq(rows[0][1]), 10),
		"gtid_current_pos":             rows[0][1],
	}, nil
}

// gtidSeq is the largest sequence number in a GTID position
// ("0-1-42,1-2-7" → 42).
func gtidSeq(pos string) int64 {
	var best int64
	for g := range strings.SplitSeq(strings.TrimSpace(pos), ",") {
		parts := strings.Split(g, "-")
		if len(parts) != 3 {
			continue
		}
		if n, err := strconv.ParseInt(parts[2], 10, 64); err == nil {
			best = max(best, n)
		}
	}
	return best
}

// point makes task replicate master from its own GTID position.
func point(ctx context.Context, run runFunc, task, master *stateful.Task) error {
	sql := fmt.Sprintf("STOP SLAVE; CHANGE MASTER TO MASTER_HOST='%s', MASTER_PORT=%d, MASTER_USER='%s', MASTER_USE_GTID=current_pos, MASTER_CONNECT_RETRY=1; SET GLOBAL read_only=1; START SLAVE",
		master.Host, master.Ports[PortName], AdminUser)
	return exec1(ctx, run, task, sql)
}

// promote makes task's server a primary.
func promote(ctx context.Context, run runFunc, task *stateful.Task) error {
	return exec1(ctx, run, task, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only=0")
}

func masterOf(inst *stateful.Instance, tasks []*stateful.Task) *stateful.Task {
	for _, t := range tasks {
		if t.Role == stateful.RoleMaster && t.Ordinal == inst.MasterOrdinal {
			return t
		}
	}
	return nil
}

func same(a, b *stateful.Task) bool { return a != nil && b != nil && a.Ordinal == b.Ordinal }

// SlaveRunning points the replica at the current primary when it
// replicates another (the primary moved while it was down) or nothing.
func (m *MariaDB) SlaveRunning(ctx context.Context, h stateful.Handle, inst *stateful.Instance, task *stateful.Task) error {
	master := masterOf(inst, h.Tasks(inst))
	if master == nil || !master.State.IsRunning() || same(master, task) {
		return nil
	}
	rows, err := query(ctx, onTask(h, task), task, "SHOW SLAVE STATUS")
	if err != nil {
		return err
	}
	want := net.JoinHostPort(master.Host, strconv.Itoa(master.Ports[PortName]))
	if len(rows) > 0 && len(rows[0]) > 3 && net.JoinHostPort(rows[0][1], rows[0][3]) == want {
		return nil
	}
	return point(ctx, onTask(h, task), task, master)
}

// MasterRunning makes sure the primary is writable (it may have been a
// replica before this launch's spec was written).
func (m *MariaDB) MasterRunning(ctx context.Context, h stateful.Handle, inst *stateful.Instance, task *stateful.Task) error {
	return exec1(ctx, onTask(h, task), task, "SET GLOBAL read_only=0")
}

// MasterLost promotes the running replica that has applied the most and
// re-points the others.
func (m *MariaDB) MasterLost(ctx context.Context, h stateful.Handle, inst *stateful.Instance, lost *stateful.Task) error {
	if inst.Type != stateful.TypeMasterSlave {
		return nil
	}
	tasks := h.Tasks(inst)
	next := masterOf(inst, tasks)
	if next == nil || same(next, lost) {
		type cand struct {
			t   *stateful.Task
			seq int64
		}
		var cands []cand
		for _, t := range tasks {
			if t.Role != stateful.RoleSlave || !t.State.IsRunning() || same(t, lost) {
				continue
			}
			rows, err := query(ctx, onTask(h, t), t, "SELECT @@gtid_current_pos")
			if err != nil || len(rows) == 0 {
				glog.Warningf("instance %s: replica %s: %v", inst.Name, t.Name, err)
				continue
			}
			cands = append(cands, cand{t, gtidSeq(rows[0][0])})
		}
		if len(cands) == 0 {
			glog.Infof("instance %s: primary %s lost, no replica answers: relaunching it in place", inst.Name, lost.Name)
			return nil
		}
		best := slices.MinFunc(cands, func(a, b cand) int {
			if c := cmp.Compare(b.seq, a.seq); c != 0 {
				return c
			}
			return cmp.Compare(a.t.Ordinal, b.t.Ordinal)
		})
		next = best.t
	}
	if !next.State.IsRunning() {
		return nil
	}
	if err := promote(ctx, onTask(h, next), next); err != nil {
		return err
	}
	if next.Role != stateful.RoleMaster {
		if err := h.Promote(ctx, inst, next); err != nil {
			return err
		}
		glog.Infof("instance %s: %s is the primary after %s was lost", inst.Name, next.Name, lost.Name)
	}
	return m.repoint(ctx, h, inst, next, lost)
}

func (m *MariaDB) repoint(ctx context.Context, h stateful.Handle, inst *stateful.Instance, master, skip *stateful.Task) error {
	var errs []error
	for _, t := range h.Tasks(inst) {
		if t.Role != stateful.RoleSlave || !t.State.IsRunning() || same(t, master) || same(t, skip) {
			continue
		}
		if err := point(ctx, onTask(h, t), t, master); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Switchover: the primary becomes read-only (clients' writes fail with
// ER_OPTION_PREVENTS_STATEMENT and retry on the new primary), the replica
// waits for the primary's last transaction (MASTER_GTID_WAIT) and is
// promoted, and the old primary and the other replicas replicate it.
func (m *MariaDB) Switchover(ctx context.Context, h stateful.Handle, inst *stateful.Instance, from, to *stateful.Task) error {
	runFrom, runTo := onTask(h, from), onTask(h, to)
	rows, err := query(ctx, runFrom, from, "SET GLOBAL read_only=1; SELECT @@gtid_binlog_pos")
	if err != nil {
		return err
	}
	pos := ""
	if len(rows) > 0 {
		pos = rows[0][0]
	}
	if pos != "" {
		got, err := query(ctx, runTo, to, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 8)", pos))
		if err != nil {
			return err
		}
		if len(got) == 0 || got[0][0] != "0" {
			_ = exec1(ctx, runFrom, from, "SET GLOBAL read_only=0")
			return fmt.Errorf("replica %s did not reach %s in time", to.Name, pos)
		}
	}
	if err := promote(ctx, runTo, to); err != nil {
		return err
	}
	if err := point(ctx, runFrom, from, to); err != nil {
		return err
	}
	glog.Infof("instance %s: switched over from %s to %s at %s", inst.Name, from.Name, to.Name, pos)
	return m.repoint(ctx, h, inst, to, from)
}
