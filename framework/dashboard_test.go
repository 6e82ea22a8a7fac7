package framework_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/framework/internal/testworkload"
	"github.com/mesos-stateful/stateful/internal/chromiumtest"
)

// ScreenshotEnv names where TestDashboard saves its screenshot (the
// README's docs/dashboard.png is made so); unset, it goes to the test's
// temporary directory.
const screenshotEnv = "STATEFUL_DASHBOARD_SCREENSHOT"

// TestDashboard opens /ui/ of a real scheduler in headless Chromium: the
// page loads without errors, shows an instance created after it loaded,
// follows a failover live (the events, and the new master in the table)
// without being reloaded, and drops the instance once it is destroyed.
func TestDashboard(t *testing.T) {
	browser := chromiumtest.Start(t)
	cluster := startCluster(t, 3)
	cfg := testConfig(t, cluster.MasterURL(), t.TempDir())
	cfg.ExecutorStatsInterval = time.Second
	s := runScheduler(t, cfg, testworkload.New())

	page := browser.NewPage(t, 1400, 820)
	page.Navigate(s.api + "/ui/")
	shown := `document.body.innerText`
	page.Poll("the event stream", stepTimeout, `document.getElementById("feed-status").textContent === "live"`, shown)
	page.Poll("the health", stepTimeout, `document.getElementById("health").textContent === "ok"`, shown)

	call(t, http.MethodPost, s.api+"/v1/instances", createBody("web", stateful.TypeMasterSlave, 1, 2), http.StatusAccepted)
	row := `document.querySelector("#instances tr[data-instance=web]")`
	page.Poll("web RUNNING", stepTimeout, row+`?.querySelector("[data-field=status]").textContent === "RUNNING" && `+
		row+`.querySelector("[data-field=running]").textContent === "3/3 running"`, shown)
	page.Poll("the creation in the events", stepTimeout, `document.querySelector("#events li[data-type='instance.created'][data-instance=web]")`, shown)
	inst := waitRunning(t, s.api, "web")
	oldMaster := inst.Tasks[inst.MasterOrdinal].Name
	page.Poll("web's master", stepTimeout, row+`.querySelector("[data-field=master]").textContent === "`+oldMaster+`"`, shown)

	killWorkload(t, inst.Tasks[inst.MasterOrdinal])
	page.Poll("the failover in the events", stepTimeout,
		`document.querySelector("#events li[data-type='instance.failover'][data-instance=web]")?.textContent.includes("master `+oldMaster+` → ")`, shown)
	page.Poll("a new master in the table", stepTimeout,
		row+`.querySelector("[data-field=master]").textContent.startsWith("web-") && `+
			row+`.querySelector("[data-field=master]").textContent !== "`+oldMaster+`"`, shown)
	page.Poll("web RUNNING again, with stats", stepTimeout, row+`.querySelector("[data-field=status]").textContent === "RUNNING" && `+
		row+`.querySelector("[data-field=running]").textContent === "3/3 running" && `+
		`document.querySelectorAll("[data-task] .stats span").length > 0`, shown)
	var roles string
	if err := page.Eval(`[...document.querySelectorAll("tr[data-task]")].map(r => r.dataset.task + "=" + r.dataset.role).join(" ")`, &roles); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(roles, oldMaster+"=master") || strings.Count(roles, "=master") != 1 {
		t.Errorf("the tasks table shows roles %s after %s's failover", roles, oldMaster)
	}

	shot := os.Getenv(screenshotEnv)
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "dashboard.png")
	}
	page.Screenshot(shot)
	t.Logf("screenshot: %s", shot)

	// Destroyed, it leaves the table once its tasks have ended.
	call(t, http.MethodDelete, s.api+"/v1/instances/web", nil, http.StatusAccepted)
	page.Poll("web gone", stepTimeout, `!`+row+` && document.querySelector("#events li[data-type='instance.deleted'][data-instance=web]")`, shown)
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
