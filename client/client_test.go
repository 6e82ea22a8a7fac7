package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewChecksTheAddress(t *testing.T) {
	for _, tc := range []struct {
		base, errHas string
	}{
		{"http://127.0.0.1:5656", ""},
		{"https://api.example:443/", ""},
		{"127.0.0.1:5656", "API address"},
		{"ftp://host", "want http:// or https://"},
		{"http://", "no host"},
		{"http://host/?x=1", "no query"},
		{"http://host:port:x", "API address"},
	} {
		_, err := New(tc.base, nil)
		if tc.errHas == "" && err != nil || tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
			t.Errorf("New(%q) = %v, want error containing %q", tc.base, err, tc.errHas)
		}
	}
}

// A scheduler behind a path prefix (a proxy) is reached under it, and
// names are escaped in paths.
func TestPathsUnderThePrefix(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+r.Header.Get("Content-Type"))
		http.Error(w, `{"error":"instance \"a/b\" not found","field":""}`, http.StatusNotFound)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/stateful/", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = c.Get(ctx, "a/b")
	if !IsNotFound(err) || err.Error() != `404 Not Found: instance "a/b" not found` {
		t.Errorf("Get: %v", err)
	}
	if _, err := c.Update(ctx, "x", PatchRequest{Spec: []byte(`{"mem": 1}`)}); !IsNotFound(err) {
		t.Errorf("Update: %v", err)
	}
	want := []string{"GET /stateful/v1/instances/a%2Fb ", "PATCH /stateful/v1/instances/x application/json"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", got, want)
	}
}

func TestErrorNamesTheField(t *testing.T) {
	e := apiError(http.StatusBadRequest, []byte(`{"error": "must be positive", "field": "spec.mem"}`))
	if e.Error() != "400 Bad Request: must be positive (field spec.mem)" || e.Field != "spec.mem" {
		t.Errorf("%v", e)
	}
	e = apiError(http.StatusBadGateway, nil)
	if e.Error() != "502 Bad Gateway: bad gateway" {
		t.Errorf("%v", e)
	}
	var target *Error
	if !errors.As(error(e), &target) || IsNotFound(e) {
		t.Errorf("errors.As / IsNotFound on %v", e)
	}
	long := apiError(http.StatusBadGateway, []byte(strings.Repeat("é", 300)))
	if len(long.Message) > 210 || !strings.HasSuffix(long.Message, "...") {
		t.Errorf("long body kept as %d bytes", len(long.Message))
	}
}

// A server that never ends a line gets an error once the line passes
// maxEventLine, not a client holding all it sends.
func TestEventLineIsBounded(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := []byte(strings.Repeat("a", 64<<10))
		w.Write([]byte("data: "))
		for range maxEventLine/len(chunk) + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		w.(http.Flusher).Flush()
		select { // hold the line open: only the bound can end Next
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	c, err := New(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Events(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Next()
	if ctx.Err() != nil {
		t.Fatal("Next returned only when the context ended: it held the whole line")
	}
	if !errors.Is(err, errLineTooLong) {
		t.Fatalf("Next = %v, want %v", err, errLineTooLong)
	}
}
