package httplib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang/glog"

	"github.com/mesos-stateful/stateful"
	"github.com/mesos-stateful/stateful/feed"
)

// EventSource is a Service that also has a live feed of state changes,
// which GET /v1/events serves; the framework's service is one (its
// feed.Hub). Against a Service without a feed the route answers 501.
type EventSource interface {
	// Subscribe starts a feed from after lastID ("" for only what comes
	// next); see feed.Hub.Subscribe.
	Subscribe(lastID string) *feed.Subscription
}

// DefaultEventHeartbeat is how often an idle event stream gets a comment,
// so that proxies and clients can tell a quiet stream from a dead one.
const DefaultEventHeartbeat = 15 * time.Second

// shutdownKey carries, in every request's context, a channel closed when
// the server shuts down: streams end then, whereas other requests finish.
type shutdownKey struct{}

// streamEvents: GET /v1/events, server-sent events. Each event is
//
//	id: <id>
//	data: <feed.Event as JSON>
//
// with a ": heartbeat" comment every Config.EventHeartbeat. ?instance=NAME
// keeps one instance's events. A client that reconnects with the
// Last-Event-ID header gets what it missed, or a "resync" event when that
// is no longer held. A client that falls behind is sent a ": dropped"
// comment and disconnected; the scheduler never waits for it.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	src, ok := s.svc.(EventSource)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this scheduler has no event feed", "")
		return
	}
	instance := r.URL.Query().Get("instance")
	if instance != "" {
		if err := stateful.ValidateName(instance); err != nil {
			ve, _ := stateful.AsValidationError(err)
			writeError(w, http.StatusBadRequest, "instance in the query: "+ve.Msg, "instance")
			return
		}
	}
	sub := src.Subscribe(r.Header.Get("Last-Event-ID"))
	defer sub.Close()

	rc := http.NewResponseController(w)
	// Each write gets its own deadline (the server's WriteTimeout is meant
	// for ordinary requests and would cut the stream).
	write := func(format string, args ...any) error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.EventHeartbeat + writeSlack)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	send := func(ev feed.Event) error {
		if instance != "" && ev.Instance != instance && ev.Type != feed.Resync {
			return nil
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		return write("id: %s\ndata: %s\n\n", ev.ID, data)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// The retry field tells EventSource clients how soon to reconnect.
	if err := write(": stateful events\nretry: 2000\n\n"); err != nil {
		return
	}
	for _, ev := range sub.Replay {
		if err := send(ev); err != nil {
			return
		}
	}

	shutdown, _ := r.Context().Value(shutdownKey{}).(chan struct{})
	heartbeat := time.NewTicker(s.cfg.EventHeartbeat)
	defer heartbeat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-shutdown:
			_ = write(": the scheduler is shutting down\n\n")
			return
		case <-heartbeat.C:
			err = write(": heartbeat\n\n")
		case ev, ok := <-sub.C:
			if !ok {
				if sub.Dropped() {
					glog.Warningf("httplib: dropped an event stream to %s that fell behind", r.RemoteAddr)
					_ = write(": dropped: this client fell behind; reconnect with Last-Event-ID\n\n")
				}
				return
			}
			err = send(ev)
		}
		if err != nil {
			glog.V(1).Infof("httplib: event stream to %s: %v", r.RemoteAddr, err)
			return
		}
	}
}

// withShutdown returns the base context of a server's requests, carrying
// the channel streamEvents watches, and the function that closes it.
func withShutdown() (context.Context, func()) {
	ch := make(chan struct{})
	return context.WithValue(context.Background(), shutdownKey{}, ch), func() { close(ch) }
}
