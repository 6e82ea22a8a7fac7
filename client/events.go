package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Event is one event of GET /v1/events.
type Event struct {
	// ID is the event's ID; pass the last one read to Events to resume.
	ID string `json:"id"`
	// Type is e.g. "instance.created", "task.state", "instance.failover".
	Type     string         `json:"type"`
	Instance string         `json:"instance"`
	Task     string         `json:"task"`
	Time     time.Time      `json:"time"`
	Details  map[string]any `json:"details"`
}

// EventStream reads a server-sent event stream. It is not safe for
// concurrent use.
type EventStream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// maxEventLine bounds one line of the stream.
const maxEventLine = 1 << 20

// Events opens the live event stream: what happens from now on, or, with
// lastID, from after that event (as far as the scheduler still holds it;
// else the first event is a "resync"). instance "" means every instance.
// The stream ends when ctx ends, the scheduler stops or drops this reader
// for falling behind (Next returns io.EOF then: reconnect with the last ID).
func (c *Client) Events(ctx context.Context, instance, lastID string) (*EventStream, error) {
	u := *c.base
	u.Path += "/v1/events"
	u.RawPath = ""
	if instance != "" {
		u.RawQuery = url.Values{"instance": {instance}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	c.authorize(req)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, apiError(resp.StatusCode, body)
	}
	return &EventStream{body: resp.Body, r: bufio.NewReader(resp.Body)}, nil
}

// Next returns the next event, skipping comments (heartbeats). It returns
// io.EOF when the stream ends.
func (s *EventStream) Next() (*Event, error) {
	var id string
	var data []string
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("event stream: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(data) == 0 {
				continue
			}
			var ev Event
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ev); err != nil {
				return nil, fmt.Errorf("event stream: event %s: %w", id, err)
			}
			if ev.ID == "" {
				ev.ID = id
			}
			return &ev, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment
		case "id":
			id = value
		case "data":
			data = append(data, value)
		}
	}
}

// errLineTooLong ends a stream whose server sends a line longer than
// maxEventLine.
var errLineTooLong = fmt.Errorf("a line longer than %d bytes", maxEventLine)

// readLine returns the next line, holding at most maxEventLine bytes of
// it: a server that never ends a line cannot make the client hold more.
func (s *EventStream) readLine() (string, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(line)+len(chunk) > maxEventLine {
			return "", errLineTooLong
		}
		line = append(line, chunk...)
		if err != bufio.ErrBufferFull {
			return string(line), err
		}
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }
