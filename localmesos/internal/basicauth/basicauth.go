// Package basicauth is Mesos' HTTP Basic authenticator (libprocess'
// BasicAuthenticator) for localmesos: principals and secrets from a
// credentials file, a 401 with a Basic challenge for the realm when a
// request carries no valid credentials.
package basicauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// Realms Mesos uses: the scheduler API (--authenticate_http_frameworks),
// read-only endpoints such as /master/state (--authenticate_http_readonly)
// and endpoints that change something (--authenticate_http_readwrite).
const (
	RealmScheduler = "mesos-master-scheduler"
	RealmReadOnly  = "mesos-master-readonly"
	RealmReadWrite = "mesos-master-readwrite"
)

// Credentials maps each principal to its secret. A nil or empty
// Credentials authenticates nobody; callers skip authentication then.
type Credentials map[string]string

// Authenticate returns the principal r authenticates as. Like Mesos, it
// wants exactly "Basic base64(principal:secret)" with one colon.
func (c Credentials) Authenticate(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	parts := strings.Split(h, " ")
	if len(parts) != 2 || parts[0] != "Basic" {
		return "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	pair := strings.Split(string(decoded), ":")
	if len(pair) != 2 {
		return "", false
	}
	secret, ok := c[pair[0]]
	// Hashes make the comparison constant-time whatever the lengths.
	got, want := sha256.Sum256([]byte(pair[1])), sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
		return "", false
	}
	return pair[0], true
}

// Unauthorized answers as libprocess does: 401, a Basic challenge for
// realm, no body.
func Unauthorized(w http.ResponseWriter, realm string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

// Require wraps h: with credentials, a request must authenticate in realm.
func (c Credentials) Require(realm string, h http.Handler) http.Handler {
	if len(c) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := c.Authenticate(r); !ok {
			Unauthorized(w, realm)
			return
		}
		h.ServeHTTP(w, r)
	})
}
