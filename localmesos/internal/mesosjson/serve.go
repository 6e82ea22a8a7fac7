package mesosjson

import (
	"net/http"
	"strconv"

	"github.com/golang/glog"
)

// ServeDocument answers a read-only endpoint (/master/state,
// /metrics/snapshot, ...) as libprocess does: GET or HEAD only, the
// document build returns written by Document, with its length. build
// reports false when its owner is gone; the answer is then 503 with gone.
func ServeDocument(w http.ResponseWriter, r *http.Request, gone string, build func() (any, bool)) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		Text(w, http.StatusMethodNotAllowed, "405 Method Not Allowed. Expecting one of { 'GET' }, but received '"+r.Method+"'.")
		return
	}
	doc, ok := build()
	if !ok {
		Text(w, http.StatusServiceUnavailable, gone)
		return
	}
	b, err := Document(doc)
	if err != nil {
		glog.Errorf("encoding %s: %v", r.URL.Path, err)
		Text(w, http.StatusInternalServerError, "Failed to encode "+r.URL.Path+": "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// Text writes a plain-text answer, as libprocess writes its errors.
func Text(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}
