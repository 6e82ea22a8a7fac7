package httplib

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/mesos-stateful/stateful/internal/secretfile"
)

// Role is what a bearer token may do.
type Role int

// Roles, weakest first. RoleNone is an unauthenticated request.
const (
	RoleNone Role = iota
	// RoleRead may call every GET route; secrets in the answers (instance
	// env values) are redacted.
	RoleRead
	// RoleAdmin may call every route and sees everything.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// MinTokenLen is the shortest token a tokens file may hold: a guessable
// token protects nothing.
const MinTokenLen = 16

// Tokens is the set of bearer tokens the API accepts. Only SHA-256 hashes
// of the tokens are kept, and Lookup compares every one of them in
// constant time, so neither memory nor timing tells a token.
type Tokens struct {
	hashes [][sha256.Size]byte
	roles  []Role
}

// LoadTokens reads a tokens file, which must be mode 0600 (see
// ParseTokens for its format).
func LoadTokens(path string) (*Tokens, error) {
	data, err := secretfile.Read(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens parses a tokens file: one "TOKEN ROLE" per line, ROLE being
// "read" or "admin"; blank lines and lines starting with # are ignored.
// Tokens are at least MinTokenLen characters of printable ASCII without
// spaces, each listed once. Errors name the line, never the token.
func ParseTokens(data []byte) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want TOKEN ROLE, got %d fields", n, len(f))
		}
		var role Role
		switch f[1] {
		case "read":
			role = RoleRead
		case "admin":
			role = RoleAdmin
		default:
			return nil, fmt.Errorf("line %d: role %q: want read or admin", n, f[1])
		}
		if len(f[0]) < MinTokenLen {
			return nil, fmt.Errorf("line %d: token shorter than %d characters", n, MinTokenLen)
		}
		for _, c := range []byte(f[0]) {
			if c < 0x21 || c > 0x7e {
				return nil, fmt.Errorf("line %d: token has a character that is not printable ASCII", n)
			}
		}
		h := sha256.Sum256([]byte(f[0]))
		if seen[h] {
			return nil, fmt.Errorf("line %d: token listed twice", n)
		}
		seen[h] = true
		t.hashes = append(t.hashes, h)
		t.roles = append(t.roles, role)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.hashes) == 0 {
		return nil, errors.New("no tokens")
	}
	return t, nil
}

// Lookup returns the role of token, RoleNone if it is not one. Hashing
// first makes every comparison the same length, and every entry is
// compared whatever matched, so the time taken does not depend on the
// token.
func (t *Tokens) Lookup(token string) Role {
	h := sha256.Sum256([]byte(token))
	role := RoleNone
	for i := range t.hashes {
		match := subtle.ConstantTimeCompare(h[:], t.hashes[i][:])
		role = Role(subtle.ConstantTimeSelect(match, int(t.roles[i]), int(role)))
	}
	return role
}

// access is what a route requires.
type access int

const (
	accessOpen  access = iota // anyone, e.g. the health check
	accessRead                // a read or admin token
	accessAdmin               // an admin token
)

// accessFor is the access a route needs by default: reading for GET and
// HEAD, admin for anything that may change something.
func accessFor(method string) access {
	if method == http.MethodGet || method == http.MethodHead {
		return accessRead
	}
	return accessAdmin
}

// authenticate returns the role of r's bearer token, RoleAdmin for every
// request when the API has no tokens (authentication is off).
// ok is false when the request carries a token that is not valid (or a
// malformed Authorization header), which is answered 401 whatever the
// route needs.
func (s *Server) authenticate(r *http.Request) (role Role, ok bool) {
	if s.cfg.Tokens == nil {
		return RoleAdmin, true
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return RoleNone, true
	}
	scheme, token, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return RoleNone, false
	}
	role = s.cfg.Tokens.Lookup(strings.TrimSpace(token))
	return role, role != RoleNone
}

// authorize answers 401 or 403 and returns false unless role may call a
// route needing need. The answers never echo the token.
func authorize(w http.ResponseWriter, r *http.Request, need access, role Role, valid bool) bool {
	switch {
	case need == accessOpen:
		return true
	case !valid:
		w.Header().Set("WWW-Authenticate", `Bearer realm="stateful", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "the bearer token is not valid", "")
		return false
	case role == RoleNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="stateful"`)
		writeError(w, http.StatusUnauthorized, "authentication required: send Authorization: Bearer TOKEN", "")
		return false
	case need == accessAdmin && role != RoleAdmin:
		writeError(w, http.StatusForbidden,
			fmt.Sprintf("%s %s needs an admin token; this token is read-only", echo(r.Method), echo(r.URL.Path)), "")
		return false
	}
	return true
}

// LoadTLS returns the API's TLS configuration: the certificate chain in
// certFile with its key in keyFile (which must be mode 0600), and, if
// clientCAFile is not empty, client certificates required and verified
// against the CA certificates in it.
func LoadTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := secretfile.Read(keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if clientCAFile != "" {
		pool, err := LoadCAs(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// LoadCAs returns the pool of the PEM certificates in file.
func LoadCAs(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}
