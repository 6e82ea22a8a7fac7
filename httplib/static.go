package httplib

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/gorilla/mux"
)

// openAPIDoc is the API's OpenAPI 3 document, served at /v1/openapi.json;
// a test checks it against the routes and the answers they give.
//
//go:embed openapi.json
var openAPIDoc []byte

// uiFiles is the dashboard served at /ui/: plain HTML, CSS and JavaScript
// that call this API from the browser, with no build step and nothing
// fetched from elsewhere.
//
//go:embed ui
var uiFiles embed.FS

// openAPI: GET /v1/openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, openAPIDoc)
}

// uiRedirect: GET /ui, to the page.
func (s *Server) uiRedirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/", http.StatusPermanentRedirect)
}

// uiFile: GET /ui/ and /ui/{file}.
func (s *Server) uiFile(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["file"]
	if name == "" {
		name = "index.html"
	}
	data, err := fs.ReadFile(uiFiles, path.Join("ui", name))
	if err != nil || !fs.ValidPath(name) {
		writeError(w, http.StatusNotFound, "no such file of the dashboard: "+echo(name), "")
		return
	}
	h := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	// The page runs only its own files and talks only to this API.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
