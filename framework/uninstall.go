package framework

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/destroyer"
	"github.com/mesos-stateful/stateful/httplib"
	"github.com/mesos-stateful/stateful/mesoslib"
	"github.com/mesos-stateful/stateful/statemgr"
)

// uninstaller removes the framework from Mesos for good: every instance is
// deleted (its tasks killed, its reservations and volumes released), and
// once none is left the framework is torn down, after which Run returns
// nil. Without it a stopped scheduler's tasks keep running for the
// failover timeout, as a restart needs.
type uninstaller struct {
	store     *statemgr.Store
	destroyer *destroyer.Destroyer
	client    *mesoslib.Client
	// requested outlives the term: a request taken by one term is carried
	// out by the next if leadership changes meanwhile.
	requested *atomic.Bool
	tick      time.Duration
}

// Uninstall implements httplib.Lifecycle's part: it marks every instance
// DELETING (durably) and asks for the teardown once they are gone. Asked
// again, it does the same. A later leadership term of the same process
// carries the request on; a scheduler restarted meanwhile finishes the
// deletes but needs the request (or --uninstall) again for the teardown.
func (u *uninstaller) Uninstall(ctx context.Context) (httplib.UninstallStatus, error) {
	u.requested.Store(true)
	st := httplib.UninstallStatus{Deleting: []string{}}
	for _, inst := range u.store.Instances() {
		if _, err := u.destroyer.Destroy(ctx, inst.Name); err != nil && !errors.Is(err, stateful.ErrNotFound) {
			return st, fmt.Errorf("delete instance %s: %w", inst.Name, err)
		}
		st.Deleting = append(st.Deleting, inst.Name)
	}
	st.Message = fmt.Sprintf("deleting %d instances with their reservations and volumes; the framework is then torn down on Mesos and the scheduler exits", len(st.Deleting))
	glog.Infof("framework: uninstall requested: %s", st.Message)
	return st, nil
}

// Run tears the framework down once an uninstall was asked for and no
// instance is left; it then waits for ctx (the torn-down subscription
// ends Run).
func (u *uninstaller) Run(ctx context.Context) error {
	t := time.NewTicker(u.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !u.requested.Load() || len(u.store.Instances()) > 0 || !u.client.Connected() {
			continue
		}
		if err := u.client.Teardown(ctx); err != nil {
			glog.Warningf("framework: uninstall: TEARDOWN: %v (retrying)", err)
			continue
		}
		glog.Infof("framework: uninstalled: every instance deleted, framework torn down on Mesos")
		<-ctx.Done()
		return nil
	}
}
