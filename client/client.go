// Package client is a small Go client of the scheduler's REST API
// (DESIGN §6): list, get, create, patch and destroy instances, and the
// health check. It speaks only net/http and encoding/json and decodes the
// documents into the stateful package's types, whose JSON names are the
// API's contract.
//
// Request bodies carry the spec as raw JSON, exactly as the caller wrote
// it: the API checks it completely (unknown keys, types) and its answer is
// the one to show, rather than one the client made up by dropping what it
// did not understand.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mesos-stateful/stateful"
)

// maxBody bounds the answers the client reads: far more than any
// instance list, far less than a runaway reply could eat.
const maxBody = 64 << 20

// Client calls one scheduler's REST API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as the bearer token of every request (the API's
// --api-tokens). The token is never part of an error.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// New returns a client of the API at base (e.g. http://127.0.0.1:5656).
// httpClient nil means http.DefaultClient (for HTTPS with a private CA,
// pass one whose transport trusts it); callers bound each call with its
// context.
func New(base string, httpClient *http.Client, opts ...Option) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("API address %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("API address %q: want http:// or https://", base)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("API address %q: no host", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("API address %q: no query or fragment, please", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	c := &Client{base: u, http: httpClient}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Base returns the API address the client calls.
func (c *Client) Base() string { return c.base.String() }

// Error is an answer of the API other than the one the call expects.
type Error struct {
	// StatusCode is the HTTP status, e.g. 400.
	StatusCode int
	// Message is the API's "error", or the start of a body that was not
	// the API's JSON (a proxy's page), or the status text if empty.
	Message string
	// Field is the JSON path of the request field at fault, if any.
	Field string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

// IsUnauthorized reports whether err is the API's 401 (no token, or one
// it does not know) or 403 (a read-only token for a change).
func IsUnauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// CreateRequest is the body of POST /v1/instances. Nil counts are left
// out (the API's defaults for the type apply).
type CreateRequest struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Masters *int   `json:"masters,omitempty"`
	Slaves  *int   `json:"slaves,omitempty"`
	// Spec is a JSON object, passed on as given; empty leaves it out.
	Spec json.RawMessage `json:"spec,omitempty"`
}

// PatchRequest is the body of PATCH /v1/instances/{name}: a new slave
// count, spec fields to replace, or both.
type PatchRequest struct {
	Slaves *int            `json:"slaves,omitempty"`
	Spec   json.RawMessage `json:"spec,omitempty"`
}

// Problem is one reason the scheduler is unhealthy.
type Problem struct {
	Component string `json:"component"`
	Message   string `json:"message"`
}

// Health is the answer of GET /v1/health.
type Health struct {
	// Status is "ok" or "unhealthy".
	Status   string    `json:"status"`
	Problems []Problem `json:"problems"`
}

// OK reports whether the scheduler says it is healthy.
func (h *Health) OK() bool { return h.Status == "ok" && len(h.Problems) == 0 }

// List returns every instance, sorted by name.
func (c *Client) List(ctx context.Context) ([]*stateful.Instance, error) {
	var list []*stateful.Instance
	if err := c.call(ctx, http.MethodGet, "/v1/instances", nil, http.StatusOK, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// Get returns the named instance with its tasks.
func (c *Client) Get(ctx context.Context, name string) (*stateful.Instance, error) {
	var inst stateful.Instance
	if err := c.call(ctx, http.MethodGet, instancePath(name), nil, http.StatusOK, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// GetJSON returns the named instance's document as the API sent it,
// including fields this client's types do not know.
func (c *Client) GetJSON(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, instancePath(name), nil, http.StatusOK, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Create asks for a new instance; the API answers once it is stored.
func (c *Client) Create(ctx context.Context, req CreateRequest) (*stateful.Instance, error) {
	var inst stateful.Instance
	if err := c.call(ctx, http.MethodPost, "/v1/instances", req, http.StatusAccepted, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// Update scales the named instance or changes its spec.
func (c *Client) Update(ctx context.Context, name string, req PatchRequest) (*stateful.Instance, error) {
	var inst stateful.Instance
	if err := c.call(ctx, http.MethodPatch, instancePath(name), req, http.StatusAccepted, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// Delete asks for the named instance to be destroyed; it shows DELETING
// until every task has ended and is then gone (404).
func (c *Client) Delete(ctx context.Context, name string) (*stateful.Instance, error) {
	var inst stateful.Instance
	if err := c.call(ctx, http.MethodDelete, instancePath(name), nil, http.StatusAccepted, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// Health returns the scheduler's health report; an unhealthy one (503) is
// a report, not an error.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	code, body, err := c.do(ctx, http.MethodGet, "/v1/health", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK && code != http.StatusServiceUnavailable {
		return nil, apiError(code, body)
	}
	var h Health
	if err := json.Unmarshal(body, &h); err != nil || h.Status == "" {
		if code == http.StatusServiceUnavailable {
			// Not our API's report (a proxy's 503): say so as an error.
			return nil, apiError(code, body)
		}
		return nil, fmt.Errorf("GET /v1/health: unreadable answer %q", truncate(string(body), 200))
	}
	return &h, nil
}

func instancePath(name string) string { return "/v1/instances/" + url.PathEscape(name) }

// call sends body as JSON and decodes an answer with status want into out;
// any other status is an *Error.
func (c *Client) call(ctx context.Context, method, path string, body any, want int, out any) error {
	code, answer, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code != want {
		return apiError(code, answer)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		r = bytes.NewReader(raw)
	}
	// path is already escaped (instancePath): keep it so, so that a name
	// with a '/' stays one segment.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	unescaped, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.Path = unescaped
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	c.authorize(req)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if len(answer) > maxBody {
		return 0, nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxBody)
	}
	return resp.StatusCode, answer, nil
}

// authorize gives req the client's bearer token, if it has one. Every
// request the client builds goes through here.
func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// apiError makes an *Error of an answer: the API's {"error","field"} when
// it is one, else what the body says.
func apiError(code int, body []byte) *Error {
	var e struct {
		Error *string `json:"error"`
		Field string  `json:"field"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil && *e.Error != "" {
		return &Error{StatusCode: code, Message: *e.Error, Field: e.Field}
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = strings.ToLower(http.StatusText(code))
	}
	return &Error{StatusCode: code, Message: truncate(msg, 200)}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// Switchover asks for the master of the named MS instance to move to the
// slave with ordinal to, or to the slave that has replicated the most when
// to is nil, without losing acknowledged writes.
func (c *Client) Switchover(ctx context.Context, name string, to *int) (*stateful.Instance, error) {
	var inst stateful.Instance
	body := struct {
		To *int `json:"to,omitempty"`
	}{to}
	if err := c.call(ctx, http.MethodPost, instancePath(name)+"/switchover", body, http.StatusAccepted, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// PauseRollout holds the named instance's rolling spec change where it is
// (paused), or lets it go on.
func (c *Client) PauseRollout(ctx context.Context, name string, paused bool) (*stateful.Instance, error) {
	action := "/rollout/resume"
	if paused {
		action = "/rollout/pause"
	}
	var inst stateful.Instance
	if err := c.call(ctx, http.MethodPost, instancePath(name)+action, nil, http.StatusAccepted, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// AbortRollout stops the named instance's rolling spec change and goes back
// to the spec before it.
func (c *Client) AbortRollout(ctx context.Context, name string) (*stateful.Instance, error) {
	var inst stateful.Instance
	if err := c.call(ctx, http.MethodPost, instancePath(name)+"/rollout/abort", nil, http.StatusAccepted, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}
