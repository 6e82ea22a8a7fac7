package httplib

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
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

// TestDashboardSendsTheToken: with a token entered, every call of the page
// (the JSON ones and the event stream) carries "Authorization: Bearer
// <token>"; forgotten, none does. The token is kept for the tab only.
func TestDashboardSendsTheToken(t *testing.T) {
	browser := chromiumtest.Start(t)
	svc := docService{seeded(), feed.NewHub(0, 0)}
	s, err := New(NewConfig(), svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{} // "path auth" → requests
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path+" "+r.Header.Get("Authorization")]++
		mu.Unlock()
		s.Handler().ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base, endStreams := withShutdown()
	srv := &http.Server{Handler: record, BaseContext: func(net.Listener) context.Context { return base }}
	srv.RegisterOnShutdown(endStreams)
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	count := func(path, auth string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[path+" "+auth]
	}
	saw := func(path, auth string) bool { return count(path, auth) > 0 }
	waitSaw := func(path, auth string) {
		t.Helper()
		waitFor(t, path+" with Authorization "+auth, func() bool { return saw(path, auth) })
	}

	page := browser.NewPage(t, 1200, 800)
	page.Navigate("http://" + ln.Addr().String() + "/ui/")
	waitSaw("/v1/events", "")
	waitSaw("/v1/instances", "")

	var stored string
	if err := page.Eval(`document.getElementById("token").value = "s3cret-token";
		document.getElementById("token-form").requestSubmit();
		sessionStorage.getItem("stateful.apiToken")`, &stored); err != nil || stored != "s3cret-token" {
		t.Fatalf("token kept in sessionStorage: %q, %v", stored, err)
	}
	for _, path := range []string{"/v1/events", "/v1/instances", "/v1/instances/cache1", "/v1/health"} {
		waitSaw(path, "Bearer s3cret-token")
	}
	// The page reads the instances twice with the new token: at once, and
	// when its event stream has reconnected with it. Both must be done
	// before Forget, or the second is taken for one sent after it.
	for _, name := range []string{"cache1", "going", "ring", "single"} {
		waitFor(t, name+" read twice with the token", func() bool { return count("/v1/instances/"+name, "Bearer s3cret-token") >= 2 })
	}
	var field string
	if err := page.Eval(`document.getElementById("token").value`, &field); err != nil || field != "" {
		t.Errorf("the token field still shows %q after use", field)
	}

	mu.Lock()
	clear(seen)
	mu.Unlock()
	if err := page.Eval(`document.getElementById("token-clear").click(); sessionStorage.getItem("stateful.apiToken") ?? "(none)"`, &stored); err != nil || stored != "(none)" {
		t.Fatalf("after Forget, sessionStorage holds %q (%v)", stored, err)
	}
	waitSaw("/v1/events", "")
	waitSaw("/v1/instances", "")
	// Reads the page sent just before Forget (its 5 s poll) may arrive
	// after the click, on other connections than the reads sent after it,
	// so what arrives right after Forget proves nothing. A refresh awaited
	// here has outlived them; the refresh after it is all the page's own
	// doing without the token, the stream included.
	refresh := func() {
		t.Helper()
		var done bool
		if err := page.Eval(`refreshAll().then(() => refreshHealth()).then(() => true)`, &done); err != nil || !done {
			t.Fatalf("refreshing: %v", err)
		}
	}
	refresh()
	mu.Lock()
	clear(seen)
	mu.Unlock()
	refresh()
	for _, path := range []string{"/v1/instances", "/v1/instances/cache1", "/v1/health"} {
		waitSaw(path, "")
	}
	mu.Lock()
	for k := range seen {
		if strings.Contains(k, "s3cret-token") {
			t.Errorf("the token was sent after Forget: %s", k)
		}
	}
	mu.Unlock()
	if errs := page.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestDashboardWithAuthentication: with tokens on, the page itself loads
// without one and, while the API answers 401, says a token is needed
// (rather than failing in the console); with a read token entered it lists
// the instances and follows the events; a wrong one is said to be wrong.
func TestDashboardWithAuthentication(t *testing.T) {
	browser := chromiumtest.Start(t)
	svc := docService{seeded(), feed.NewHub(0, 0)}
	cfg := NewConfig()
	cfg.Tokens = testTokens(t)
	s, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, s)
	page := browser.NewPage(t, 1400, 900)
	page.Navigate(base + "/ui/")
	shown := `document.body.innerText`
	page.Poll("the token prompt", 30*time.Second,
		`!document.getElementById("api-error").hidden && document.getElementById("api-error").textContent.includes("enter an API token")`, shown)
	page.Poll("the stream refused", 30*time.Second, `document.getElementById("feed-status").textContent === "unauthorized"`, shown)
	// The health check is open.
	page.Poll("the health", 30*time.Second, `document.getElementById("health").textContent === "ok"`, shown)
	var rows int
	if err := page.Eval(`document.querySelectorAll("#instances tr[data-instance]").length`, &rows); err != nil || rows != 0 {
		t.Errorf("without a token the page lists %d instances (%v)", rows, err)
	}

	enter := func(token string) {
		t.Helper()
		if err := page.Eval(`document.getElementById("token").value = `+strconv.Quote(token)+`;
			document.getElementById("token-form").requestSubmit()`, nil); err != nil {
			t.Fatal(err)
		}
	}
	enter("wrong-token-0123456789")
	page.Poll("the wrong token said so", 30*time.Second,
		`document.getElementById("api-error").textContent.includes("not valid")`, shown)

	enter(readToken)
	page.Poll("the instances", 30*time.Second, `document.querySelectorAll("#instances tr[data-instance]").length === 4`, shown)
	page.Poll("the prompt gone", 30*time.Second, `document.getElementById("api-error").hidden`, shown)
	page.Poll("the event stream", 30*time.Second, `document.getElementById("feed-status").textContent === "live"`, shown)
	before := len(page.Errors())
	svc.Publish(feed.Event{Type: feed.InstanceFailover, Instance: "cache1", Details: map[string]any{"from_task": "cache1-0", "to_task": "cache1-1"}})
	page.Poll("the failover event", 30*time.Second,
		`document.querySelector("#events li[data-type='instance.failover']")?.textContent.includes("master cache1-0 → cache1-1")`, shown)
	var refreshed bool // a poll with the token, which must log nothing
	if err := page.Eval(`refreshAll().then(() => refreshHealth()).then(() => true)`, &refreshed); err != nil || !refreshed {
		t.Errorf("refreshing: %v", err)
	}

	// Chromium itself logs every 4xx answer to the console, the refusals
	// without a token included; those are expected. The page's own code
	// must report nothing, and nothing once the token works.
	errs := page.Errors()
	if len(errs) > before {
		t.Errorf("the page reported errors with a read token:\n%s", strings.Join(errs[before:], "\n"))
	}
	for _, e := range errs[:before] {
		if !strings.HasPrefix(e, "network error: Failed to load resource: the server responded with a status of 401") {
			t.Errorf("the page reported an error while unauthorized: %s", e)
		}
	}
}
