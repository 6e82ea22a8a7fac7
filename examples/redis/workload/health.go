package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/mesos-stateful/stateful"
)

// Stat keys this workload reports besides stateful.StatRole and
// stateful.StatReplicationOffset.
const (
	StatUsedMemory       = "used_memory"
	StatConnectedClients = "connected_clients"
	StatConnectedSlaves  = "connected_slaves"
	StatMasterLinkStatus = "master_link_status"
	// StatMaster is host:port of the master a slave replicates.
	StatMaster = "master"
	StatKeys   = "keys"
)

// Stats reports, from INFO: Redis' own role, the replication offset, memory
// used (bytes), connected clients, the number of keys, and for a master its
// connected slaves, for a slave its master and link status. It runs in the
// executor, next to the task.
func (r *Redis) Stats(ctx context.Context, task *stateful.Task, exec stateful.ExecFunc) (map[string]string, error) {
	inf, err := r.info(ctx, runFunc(exec), task)
	if err != nil {
		return nil, err
	}
	stats := map[string]string{
		stateful.StatRole:    inf.Role(),
		StatUsedMemory:       inf["used_memory"],
		StatConnectedClients: inf["connected_clients"],
		StatKeys:             strconv.FormatInt(inf.Keys(), 10),
	}
	if off, ok := inf.ReplicationOffset(); ok {
		stats[stateful.StatReplicationOffset] = strconv.FormatInt(off, 10)
	}
	switch inf.Role() {
	case "master":
		stats[StatConnectedSlaves] = inf["connected_slaves"]
	case "slave":
		stats[StatMasterLinkStatus] = inf["master_link_status"]
		if inf["master_host"] != "" {
			stats[StatMaster] = net.JoinHostPort(inf["master_host"], inf["master_port"])
		}
	}
	for k, v := range stats {
		if v == "" {
			delete(stats, k)
		}
	}
	return stats, nil
}

// CheckHealth passes when redis-server answers PING and, if it is a slave,
// its link to the master is up (its initial sync is done). It runs in the
// executor on every health interval, beside the spec's TCP check.
func (r *Redis) CheckHealth(ctx context.Context, task *stateful.Task, exec stateful.ExecFunc) error {
	run := runFunc(exec)
	out, err := r.cli(ctx, run, task, "PING")
	if err != nil {
		return err
	}
	if out != "PONG" {
		// e.g. LOADING while the append-only file is replayed.
		return fmt.Errorf("PING on %s answered %q", task.Name, firstLine(out))
	}
	inf, err := r.info(ctx, run, task, "replication")
	if err != nil {
		return err
	}
	switch inf.Role() {
	case "master":
		return nil
	case "slave":
		if !inf.LinkUp() {
			return fmt.Errorf("slave %s: link to master %s:%s is %s (sync in progress: %s)", task.Name,
				inf["master_host"], inf["master_port"], inf["master_link_status"], inf["master_sync_in_progress"])
		}
		return nil
	default:
		return errors.New("INFO replication names no role")
	}
}
