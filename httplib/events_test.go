package httplib

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/client"
	"github.com/mesos-stateful/stateful/feed"
)

// feedService is the in-memory service with a real event hub; the tests
// publish to it as the framework's statemgr observer would.
type feedService struct {
	*memService
	*feed.Hub
}

func newFeedService(buffer int) feedService {
	return feedService{seeded(), feed.NewHub(0, buffer)}
}

// eventServer serves the API over svc on a loopback port until the test
// ends and returns a client of it.
func eventServer(t *testing.T, cfg Config, svc Service) *client.Client {
	t.Helper()
	s, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(serve(t, s), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitSubscribers waits until the hub has n subscribers: the stream is
// open on the server's side, so nothing published from now on is missed.
func waitSubscribers(t *testing.T, h *feed.Hub, n int) {
	t.Helper()
	waitFor(t, "the event stream to subscribe", func() bool { return h.Subscribers() == n })
}

func next(t *testing.T, s *client.EventStream) *client.Event {
	t.Helper()
	ev, err := s.Next()
	if err != nil {
		t.Fatalf("reading the event stream: %v", err)
	}
	return ev
}

func TestEventStream(t *testing.T) {
	svc := newFeedService(0)
	c := eventServer(t, NewConfig(), svc)
	ctx := testCtx(t)
	all, err := c.Events(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	one, err := c.Events(ctx, "cache1", "")
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	waitSubscribers(t, svc.Hub, 2)

	svc.Publish(
		feed.Event{Type: feed.InstanceCreated, Instance: "other"},
		feed.Event{Type: feed.TaskState, Instance: "cache1", Task: "cache1-0", Details: map[string]any{"to": "TASK_RUNNING"}},
		feed.Event{Type: feed.InstanceFailover, Instance: "cache1", Details: map[string]any{"to_ordinal": 1}},
	)
	first, second, third := next(t, all), next(t, all), next(t, all)
	if first.Type != feed.InstanceCreated || first.Instance != "other" ||
		second.Type != feed.TaskState || second.Task != "cache1-0" || second.Details["to"] != "TASK_RUNNING" ||
		third.Type != feed.InstanceFailover || third.Details["to_ordinal"] != 1.0 {
		t.Errorf("events %+v %+v %+v", first, second, third)
	}
	if first.ID == "" || first.ID == second.ID || first.Time.IsZero() {
		t.Errorf("events need distinct IDs and a time: %+v %+v", first, second)
	}
	// ?instance= keeps that instance's events only.
	if ev := next(t, one); ev.ID != second.ID {
		t.Errorf("instance cache1's first event %+v, want %+v", ev, second)
	}
	if ev := next(t, one); ev.ID != third.ID {
		t.Errorf("instance cache1's second event %+v, want %+v", ev, third)
	}

	// Reconnecting with the last ID seen replays what came after it.
	resumed, err := c.Events(ctx, "", first.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	if a, b := next(t, resumed), next(t, resumed); a.ID != second.ID || b.ID != third.ID {
		t.Errorf("resumed after %s: %s %s, want %s %s", first.ID, a.ID, b.ID, second.ID, third.ID)
	}
	// An ID the scheduler does not hold (another process's): resync.
	stale, err := c.Events(ctx, "", "feedbeef-12")
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if ev := next(t, stale); ev.Type != feed.Resync || ev.ID != third.ID {
		t.Errorf("after an unknown ID: %+v, want a resync with the latest ID %s", ev, third.ID)
	}
}

func TestEventStreamErrors(t *testing.T) {
	c := eventServer(t, NewConfig(), newFeedService(0))
	_, err := c.Events(testCtx(t), "Not_A_Name", "")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Field != "instance" {
		t.Errorf("a bad instance name: %v, want a 400 naming the field instance", err)
	}
	// A service without a feed.
	c = eventServer(t, NewConfig(), seeded())
	_, err = c.Events(testCtx(t), "", "")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotImplemented {
		t.Errorf("without a feed: %v, want 501", err)
	}
}

// rawStream opens GET /v1/events and returns its lines.
func rawStream(t *testing.T, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, url+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp, bufio.NewReader(resp.Body)
}

// readUntil reads lines until one starts with prefix, failing at the end
// of the stream.
func readUntil(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, prefix) {
			return line
		}
		if err != nil {
			t.Fatalf("stream ended (%v) before a line starting %q", err, prefix)
		}
	}
}

func TestEventStreamHeartbeatAndShutdown(t *testing.T) {
	svc := newFeedService(0)
	cfg := NewConfig()
	cfg.EventHeartbeat = 50 * time.Millisecond
	s, err := New(cfg, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	url, cancel, done := start(t, s)
	defer cancel()
	_, r := rawStream(t, url)
	readUntil(t, r, ": heartbeat")
	readUntil(t, r, ": heartbeat")

	// Shutting down ends the stream at once, not after the shutdown
	// timeout: Serve returns without cutting anything off.
	cancel()
	readUntil(t, r, ": the scheduler is shutting down")
	if rest, err := io.ReadAll(r); err != nil || strings.TrimSpace(string(rest)) != "" {
		t.Errorf("after the shutdown comment: %q, %v; want the end of the stream", rest, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestSlowClientIsDropped: a client that stops reading is dropped once its
// buffer is full, while publishing goes on unhindered.
func TestSlowClientIsDropped(t *testing.T) {
	svc := newFeedService(4)
	s, err := New(NewConfig(), svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, s)
	_, r := rawStream(t, url)
	waitSubscribers(t, svc.Hub, 1)

	// Big events fill the socket buffers quickly; then the handler blocks
	// in a write, its subscription fills and is dropped.
	big := strings.Repeat("x", 64<<10)
	start := time.Now()
	published := 0
	for svc.Subscribers() > 0 {
		if published == 5000 {
			t.Fatalf("still subscribed after %d events of 64 KiB that nobody read", published)
		}
		svc.Publish(feed.Event{Type: feed.TaskState, Instance: "cache1", Details: map[string]any{"pad": big}})
		published++
	}
	t.Logf("dropped after %d events in %v", published, time.Since(start))
	// The client, reading again, gets what was sent and then the reason.
	readUntil(t, r, ": dropped")
}
