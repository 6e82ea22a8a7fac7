package wirehttp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/mesos-stateful/stateful/localmesos/internal/master"
)

// TestBadMessagesAreRefused: a message the master cannot read is answered
// 400 naming what is wrong, and registers nothing.
func TestBadMessagesAreRefused(t *testing.T) {
	m, err := master.New(master.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	side := NewMasterSide(m, Config{})
	defer side.Close()
	srv := httptest.NewServer(side.Handler())
	defer srv.Close()

	for _, c := range []struct{ path, body, want string }{
		{pathRegister, `{"info":`, "invalid body"},
		{pathRegister, `{"info":{"hostname":"h"},"address":"127.0.0.1:1"}`, "info.id"},
		{pathRegister, `{"info":{"id":{"value":"A-S0"},"hostname":"h"}}`, "address"},
		{pathStatusUpdate, `[1]`, "invalid body"},
	} {
		res, err := http.Post(srv.URL+c.path, "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), c.want) {
			t.Errorf("POST %s %s: %d %q; want 400 naming %q", c.path, c.body, res.StatusCode, b, c.want)
		}
	}
	if m.HasAgent(mesos.AgentID{Value: "A-S0"}) {
		t.Error("a refused registration registered the agent")
	}
	if res, err := http.Get(srv.URL + pathRegister); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %v %v; want 405", pathRegister, res, err)
	}
}
