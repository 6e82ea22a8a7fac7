package master

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

const launchSleeper = `"accept":{"offer_ids":[{"value":"%OFFER%"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"sleeper","task_id":{"value":"%TASK%"},"agent_id":{"value":"%AGENT%"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32}}],"command":{"value":"sleep 600"}}]}}],"filters":{"refuse_seconds":0}}`

func launchBody(offer, task, agent string) string {
	r := strings.NewReplacer("%OFFER%", offer, "%TASK%", task, "%AGENT%", agent)
	return r.Replace(launchSleeper)
}

func TestSubscribeOffersAndLaunch(t *testing.T) {
	c := newTestCluster(t, testConfig())
	a := c.addAgent(0)
	s := c.subscribeFramework("smoke", "")
	if s.res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q", s.res.Header.Get("Content-Type"))
	}
	if s.res.ContentLength != -1 {
		t.Fatalf("SUBSCRIBE answer has a Content-Length (%d); mesos-go needs a stream", s.res.ContentLength)
	}
	if !strings.HasPrefix(s.fid, c.m.ID()+"-0000") {
		t.Fatalf("framework ID %q, want %s-0000", s.fid, c.m.ID())
	}
	offers := s.offers()
	if len(offers) != 1 {
		t.Fatalf("want one offer, got %v", offers)
	}
	o := offers[0]
	if got := str(o, "allocation_info", "role"); got != "*" {
		t.Fatalf("offer allocation role %q", got)
	}
	res := c.callOn(s, "ACCEPT", launchBody(offerID(o), "t1", a.id))
	s.expectStatus(202, res)
	a.waitFor(t, "RunTask t1")
	task := a.lastTask()
	if task.Resources[0].GetAllocationInfo().GetRole() != "*" {
		t.Fatalf("task resources lack allocation_info: %v", task.Resources)
	}

	// The rest of the offer comes back (refuse_seconds 0) without the task's share.
	offers = s.offers()
	cpus := 0.0
	for _, r := range path(offers[0], "resources").([]any) {
		if str(r, "name") == "cpus" {
			v, _ := path(r, "scalar", "value").(interface{ Float64() (float64, error) }).Float64()
			cpus = v
		}
	}
	if cpus != 1.9 {
		t.Fatalf("second offer cpus %v, want 1.9", cpus)
	}

	// An executor's update reaches the scheduler with its uuid.
	uuid := c.sendUpdate(a.id, s.fid, "t1", 1 /* TASK_RUNNING */, 1, "t1")
	up := s.next("UPDATE")
	if str(up, "update", "status", "state") != "TASK_RUNNING" || str(up, "update", "status", "uuid") != base64.StdEncoding.EncodeToString(uuid) {
		t.Fatalf("update %v", up)
	}
	ack := `"acknowledge":{"agent_id":{"value":"` + a.id + `"},"task_id":{"value":"t1"},"uuid":"` + base64.StdEncoding.EncodeToString(uuid) + `"}`
	s.expectStatus(202, c.callOn(s, "ACKNOWLEDGE", ack))
	a.waitFor(t, "Acknowledge t1")
	_ = time.Second
}
