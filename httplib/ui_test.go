package httplib

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/internal/chromiumtest"
)

// TestDashboardInChromium loads /ui/ in headless Chromium against the
// in-memory service: no errors, the instances and the selected one's
// tasks shown, events appended live. (framework's TestDashboard does the
// same against a real scheduler, with a failover.)
func TestDashboardInChromium(t *testing.T) {
	browser := chromiumtest.Start(t)
	svc := docService{seeded(), feed.NewHub(0, 0)}
	s, err := New(NewConfig(), svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	page := browser.NewPage(t, 1400, 900)
	page.Navigate(base + "/ui/")
	shown := `document.body.innerText`
	page.Poll("the instances", 30*time.Second, `document.querySelectorAll("#instances tr[data-instance]").length === 4`, shown)
	page.Poll("cache1's tasks", 30*time.Second,
		`document.querySelector("[data-task='cache1-2'] [data-field=unplaced]")?.textContent.includes("mem exhausted on 3 agents")`, shown)
	page.Poll("the event stream", 30*time.Second, `document.getElementById("feed-status").textContent === "live"`, shown)
	page.Poll("the runtime", 30*time.Second, `document.getElementById("runtime").textContent === "runtime auto → process"`, shown)

	svc.Publish(feed.Event{Type: feed.InstanceFailover, Instance: "cache1", Details: map[string]any{"from_task": "cache1-0", "to_task": "cache1-1"}})
	page.Poll("the failover event", 30*time.Second,
		`document.querySelector("#events li[data-type='instance.failover']")?.textContent.includes("master cache1-0 → cache1-1")`, shown)
	if p := os.Getenv("STATEFUL_TEST_SHOT"); p != "" {
		page.Screenshot(p)
	}
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
