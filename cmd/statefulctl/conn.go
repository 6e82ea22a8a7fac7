package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/mesos-stateful/stateful/client"
)

// connFlags are the global flags that say how to reach and authenticate to
// the API.
type connFlags struct {
	token, tokenFile string
	ca               string
	cert, key        string
}

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.token, "token", "", "bearer token of the API (also $"+envToken+"; visible in ps: prefer -token-file or the environment)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the API's bearer token")
	fs.StringVar(&f.ca, "ca", "", "PEM CA certificate(s) to verify an https API with (default: the system's)")
	fs.StringVar(&f.cert, "cert", "", "PEM client certificate, for an API that requires one (with -key)")
	fs.StringVar(&f.key, "key", "", "PEM key of -cert")
}

// client returns the HTTP client and options the flags ask for; nil for
// the default client.
func (f *connFlags) client(getenv func(string) string) (*http.Client, []client.Option, error) {
	token := f.token
	switch {
	case f.token != "" && f.tokenFile != "":
		return nil, nil, errors.New("-token and -token-file: give one")
	case f.tokenFile != "":
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("-token-file: %w", err)
		}
		if token = strings.TrimSpace(string(data)); token == "" {
			return nil, nil, fmt.Errorf("-token-file %s: empty", f.tokenFile)
		}
	case token == "":
		token = getenv(envToken)
	}
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	if f.ca == "" && f.cert == "" && f.key == "" {
		return nil, opts, nil
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("-ca %s: no PEM certificate in it", f.ca)
		}
		tcfg.RootCAs = pool
	}
	if (f.cert == "") != (f.key == "") {
		return nil, nil, errors.New("-cert and -key go together")
	}
	if f.cert != "" {
		cert, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, nil, fmt.Errorf("-cert/-key: %w", err)
		}
		tcfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tcfg
	return &http.Client{Transport: tr}, opts, nil
}
