// Package chromiumtest drives a headless Chromium (Debian's chromium
// package) from tests through the DevTools protocol: open a page, evaluate
// JavaScript in it, take a screenshot, and collect what the page reported
// as an error (console errors, uncaught exceptions, failed loads).
//
// It speaks the protocol over gorilla/websocket, which the module already
// depends on through etcd, rather than pulling in a browser-automation
// framework for the four commands the tests need.
package chromiumtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Browser is a headless Chromium run for one test.
type Browser struct {
	debugURL string // http://127.0.0.1:<port>
}

// Start runs headless Chromium until the test ends; the test is skipped
// when no chromium binary is installed.
func Start(t testing.TB) *Browser {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium is not installed (Debian: apt-get install chromium)")
	}
	profile := t.TempDir()
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-sync", "--metrics-recording-only",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+profile, "about:blank")
	// Its own process group: the renderers and helpers it starts are
	// stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &tail{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// Chromium writes the port it chose to DevToolsActivePort.
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if port, _, ok := strings.Cut(string(b), "\n"); err == nil && ok && port != "" {
			return &Browser{debugURL: "http://127.0.0.1:" + port}
		}
		select {
		case <-exited:
			t.Fatalf("chromium exited at start: %s", stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium did not open its DevTools port within 60 s: %s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Page is one tab.
type Page struct {
	t    testing.TB
	conn *websocket.Conn

	writeMu sync.Mutex
	mu      sync.Mutex
	nextID  int64
	waiting map[int64]chan reply
	errs    []string
	closed  error
	done    chan struct{}
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type message struct {
	ID     int64           `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	reply
}

// NewPage opens a tab of width×height pixels that reports errors.
func (b *Browser) NewPage(t testing.TB, width, height int) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, b.debugURL+"/json/new?about:blank", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("DevTools: new tab: %v", err)
	}
	defer resp.Body.Close()
	var target struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&target); err != nil || target.WebSocketDebuggerURL == "" {
		t.Fatalf("DevTools: new tab: %d %v", resp.StatusCode, err)
	}
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, target.WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatalf("DevTools: connecting to the tab: %v", err)
	}
	p := &Page{t: t, conn: conn, waiting: map[int64]chan reply{}, done: make(chan struct{})}
	go p.read()
	t.Cleanup(func() {
		conn.Close()
		<-p.done
	})
	for _, m := range []string{"Runtime.enable", "Log.enable", "Page.enable"} {
		p.Call(m, nil, nil)
	}
	p.Call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
	}, nil)
	return p
}

// read dispatches replies to their callers and records reported errors,
// until the connection closes.
func (p *Page) read() {
	defer close(p.done)
	for {
		var m message
		if err := p.conn.ReadJSON(&m); err != nil {
			p.mu.Lock()
			p.closed = err
			for id, ch := range p.waiting {
				close(ch)
				delete(p.waiting, id)
			}
			p.mu.Unlock()
			return
		}
		if m.ID != 0 {
			p.mu.Lock()
			ch := p.waiting[m.ID]
			delete(p.waiting, m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m.reply
			}
			continue
		}
		if e := reported(m.Method, m.Params); e != "" {
			p.mu.Lock()
			p.errs = append(p.errs, e)
			p.mu.Unlock()
		}
	}
}

// reported returns the error an event reports, if it is one.
func reported(method string, params json.RawMessage) string {
	switch method {
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		if json.Unmarshal(params, &ev) != nil || (ev.Type != "error" && ev.Type != "assert") {
			return ""
		}
		var parts []string
		for _, a := range ev.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, fmt.Sprint(a.Value))
			}
		}
		return "console." + ev.Type + ": " + strings.Join(parts, " ")
	case "Runtime.exceptionThrown":
		var ev struct {
			Details struct {
				Text      string `json:"text"`
				URL       string `json:"url"`
				Line      int    `json:"lineNumber"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &ev) != nil {
			return "an exception"
		}
		d := ev.Details
		return fmt.Sprintf("exception at %s:%d: %s %s", d.URL, d.Line+1, d.Text, d.Exception.Description)
	case "Log.entryAdded":
		var ev struct {
			Entry struct {
				Level  string `json:"level"`
				Source string `json:"source"`
				Text   string `json:"text"`
				URL    string `json:"url"`
			} `json:"entry"`
		}
		if json.Unmarshal(params, &ev) != nil || ev.Entry.Level != "error" {
			return ""
		}
		return fmt.Sprintf("%s error: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	}
	return ""
}

// Call sends a DevTools command and decodes its result into out (if not
// nil), failing the test on an error.
func (p *Page) Call(method string, params any, out any) {
	p.t.Helper()
	if err := p.call(method, params, out); err != nil {
		p.t.Fatalf("DevTools %s: %v", method, err)
	}
}

func (p *Page) call(method string, params any, out any) error {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan reply, 1)
	p.mu.Lock()
	if p.closed != nil {
		p.mu.Unlock()
		return p.closed
	}
	p.nextID++
	id := p.nextID
	p.waiting[id] = ch
	p.mu.Unlock()
	p.writeMu.Lock()
	err := p.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params})
	p.writeMu.Unlock()
	if err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return errors.New("the connection to the tab closed")
		}
		if r.Error != nil {
			return fmt.Errorf("%d %s", r.Error.Code, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-time.After(60 * time.Second):
		return errors.New("no answer within 60 s")
	}
}

// Navigate loads url and waits for its load event.
func (p *Page) Navigate(url string) {
	p.t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	p.Call("Page.navigate", map[string]any{"url": url}, &res)
	if res.ErrorText != "" {
		p.t.Fatalf("loading %s: %s", url, res.ErrorText)
	}
	p.Poll("the page to load", 30*time.Second, `document.readyState === "complete"`)
}

// Eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into out.
func (p *Page) Eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := p.call("Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &res); err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("%s %s", res.Exception.Text, res.Exception.Exception.Description)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// Poll evaluates a JavaScript expression until it is true, failing the
// test after timeout with the last value of describe (if given; a
// JavaScript expression saying what the page shows).
func (p *Page) Poll(what string, timeout time.Duration, cond string, describe ...string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := p.Eval("Boolean("+cond+")", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			shown := ""
			if len(describe) > 0 {
				var s any
				_ = p.Eval(describe[0], &s)
				shown = fmt.Sprint(s)
			}
			p.t.Fatalf("waited %v for %s (%v); the page shows: %s", timeout, what, err, shown)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Screenshot writes a PNG of the page to path.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	p.Call("Page.captureScreenshot", map[string]any{"format": "png"}, &res)
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
}

// Errors returns what the page reported as errors so far.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// tail keeps the end of a stream (Chromium's stderr) for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tail) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if len(w.buf) > 4096 {
		w.buf = w.buf[len(w.buf)-4096:]
	}
	return len(b), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

var _ io.Writer = (*tail)(nil)
