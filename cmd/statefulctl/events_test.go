package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mesos-stateful/stateful/feed"
	"github.com/mesos-stateful/stateful/httplib"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEvents(t *testing.T) {
	hub := feed.NewHub(0, 0)
	svc := struct {
		*memService
		*feed.Hub
	}{newMemService(), hub}
	s, err := httplib.New(httplib.NewConfig(), svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"events"}, []string{"instance.failover  cache1        master cache1-0 → cache1-1", "task.state", "cache9-0      QUEUED → TASK_RUNNING on 127.0.0.2: started"}},
		{[]string{"events", "cache1", "-json"}, []string{`"type":"instance.failover","instance":"cache1"`, `"task":"cache1-2"`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			getenv := func(k string) string {
				if k == envAPI {
					return srv.URL
				}
				return ""
			}
			go func() { done <- run(ctx, tc.args, getenv, strings.NewReader(""), &stdout, &stderr) }()
			waitUntil(t, "the command to subscribe", func() bool { return hub.Subscribers() == 1 })
			hub.Publish(
				feed.Event{Type: feed.InstanceFailover, Instance: "cache1", Details: map[string]any{"from_task": "cache1-0", "to_task": "cache1-1"}},
				feed.Event{Type: feed.TaskState, Instance: "cache9", Task: "cache9-0", Details: map[string]any{"from": "QUEUED", "to": "TASK_RUNNING", "host": "127.0.0.2", "message": "started"}},
				// Printed after cache9's, if that is printed at all.
				feed.Event{Type: feed.TaskState, Instance: "cache1", Task: "cache1-2", Details: map[string]any{"from": "QUEUED", "to": "TASK_RUNNING"}},
			)
			waitUntil(t, "the events printed", func() bool {
				for _, w := range tc.want {
					if !strings.Contains(stdout.String(), w) {
						return false
					}
				}
				return true
			})
			if slices.Contains(tc.args, "cache1") && strings.Contains(stdout.String(), "cache9") {
				t.Errorf("events of cache1 printed another instance's: %s", stdout.String())
			}
			cancel() // as Ctrl-C does
			if code := <-done; code != exitOK {
				t.Errorf("exit %d after an interrupt, want 0; stderr %s", code, stderr.String())
			}
			waitUntil(t, "the stream to close", func() bool { return hub.Subscribers() == 0 })
		})
	}

	// A scheduler without a feed: the API's answer, exit 1.
	r := cli(t, startAPI(t).url, "", "events")
	expect(t, r, exitError, nil, []string{"501", "no event feed"})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
