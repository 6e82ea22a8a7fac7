package httplib

import (
	"net/http"
	"testing"
	"time"
)

// staleService is the in-memory service answering reads from a cache that
// may be stale.
type staleService struct {
	*memService
	asOf  time.Time
	stale bool
}

func (s *staleService) ReadsStale() (time.Time, bool) { return s.asOf, s.stale }

// TestStaleReadsAreMarked: while the service says its reads are stale,
// GET of one instance and of the list carry X-Stateful-Stale, the time
// they are current as of, and a Warning; fresh reads carry none.
func TestStaleReadsAreMarked(t *testing.T) {
	asOf := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	svc := &staleService{memService: seeded(), asOf: asOf, stale: true}
	h := newTestServer(t, svc).Handler()
	for _, path := range []string{"/v1/instances", "/v1/instances/cache1"} {
		rec := do(h, http.MethodGet, path, "", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if got := rec.Header().Get(HeaderStale); got != "true" {
			t.Errorf("GET %s: %s %q, want true", path, HeaderStale, got)
		}
		if got := rec.Header().Get(HeaderAsOf); got != "2026-12-07T02:00:00Z" {
			t.Errorf("GET %s: %s %q", path, HeaderAsOf, got)
		}
		if got := rec.Header().Get("Warning"); got == "" {
			t.Errorf("GET %s: no Warning header", path)
		}
	}
	svc.stale = false
	for _, path := range []string{"/v1/instances", "/v1/instances/cache1"} {
		rec := do(h, http.MethodGet, path, "", nil)
		if rec.Header().Get(HeaderStale) != "" || rec.Header().Get(HeaderAsOf) != "" || rec.Header().Get("Warning") != "" {
			t.Errorf("fresh GET %s marked: %v", path, rec.Header())
		}
	}
}
