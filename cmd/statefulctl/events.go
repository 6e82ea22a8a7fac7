package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mesos-stateful/stateful/client"
)

// eventRetry is how soon a stream that ended is opened again.
const eventRetry = time.Second

// setupEvents: follow GET /v1/events until interrupted, one line per event
// (or the event's JSON with -json), reconnecting from the last event seen
// when the stream ends.
func setupEvents(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print each event as one line of JSON")
	return func(ctx context.Context, a *app, fs *flag.FlagSet, args []string) error {
		name := ""
		if len(args) > 0 {
			var err error
			if name, err = instanceName(fs, args[0]); err != nil {
				return err
			}
		}
		last := ""
		for {
			stream, err := a.api.Events(ctx, name, last)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				var apiErr *client.Error
				if last == "" || errors.As(err, &apiErr) {
					return err
				}
				fmt.Fprintf(a.stderr, "statefulctl events: %v; retrying\n", err)
			} else {
				last = follow(stream, a.stdout, *asJSON, last)
				stream.Close()
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(eventRetry):
			}
		}
	}
}

// follow prints the stream's events until it ends and returns the last
// event ID seen.
func follow(stream *client.EventStream, w io.Writer, asJSON bool, last string) string {
	for {
		ev, err := stream.Next()
		if err != nil {
			return last
		}
		if ev.ID != "" {
			last = ev.ID
		}
		if asJSON {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "%s\n", b)
			continue
		}
		subject := ev.Task
		if subject == "" {
			subject = ev.Instance
		}
		fmt.Fprintf(w, "%s  %-17s  %-12s  %s\n", ev.Time.Local().Format(time.TimeOnly), ev.Type, subject, eventSummary(ev))
	}
}

// eventSummary says what an event's details say, in a few words.
func eventSummary(ev *client.Event) string {
	d := ev.Details
	get := func(k string) string {
		if v, ok := d[k]; ok && v != nil && v != "" {
			return fmt.Sprint(v)
		}
		return ""
	}
	arrow := func(from, to string) string {
		if from == "" {
			return to
		}
		return from + " → " + to
	}
	switch ev.Type {
	case "task.state", "instance.status":
		s := arrow(get("from"), get("to"))
		if h := get("host"); h != "" {
			s += " on " + h
		}
		if m := get("message"); m != "" {
			s += ": " + m
		}
		return s
	case "instance.failover":
		return "master " + arrow(get("from_task"), get("to_task"))
	case "task.promoted", "task.role":
		return arrow(get("from"), get("to"))
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+fmt.Sprint(d[k]))
	}
	return strings.Join(parts, " ")
}
