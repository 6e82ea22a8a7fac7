package master

import (
	"fmt"
	"net/http"

	"github.com/golang/glog"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// refuseDefaultExecutor answers an ACCEPT whose LAUNCH_GROUP names the
// DEFAULT executor with 501 before anything changes (its offers stay
// outstanding): localmesos has no default executor, and accepting the
// group only for every task to fail at the agent would look like a
// workload failure. LAUNCH_GROUP with a CUSTOM executor is delivered.
func refuseDefaultExecutor(acc *scheduler.Call_Accept) (answer, bool) {
	for i, op := range acc.Operations {
		if op.Type != mesos.Offer_Operation_LAUNCH_GROUP || op.LaunchGroup == nil || op.LaunchGroup.Executor.GetType() != mesos.ExecutorInfo_DEFAULT {
			continue
		}
		msg := fmt.Sprintf("localmesos has no DEFAULT executor: LAUNCH_GROUP (accept.operations[%d]) needs a CUSTOM executor; the ACCEPT call was not applied and its offers are still outstanding", i)
		glog.Warning(msg)
		return answer{status: http.StatusNotImplemented, body: msg}, true
	}
	return answer{}, false
}
