package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/certs"
)

// httpsConfig opens the certificate directory the proxy serves from and,
// unless --acme-url is off, the issuer that fills it, answering the CA's
// challenges through the proxy.
func (d *Daemon) httpsConfig() (channels.HTTPSConfig, error) {
	dir, err := certs.OpenDir(d.cfg.certsDir())
	if err != nil {
		return channels.HTTPSConfig{}, err
	}
	cfg := channels.HTTPSConfig{Certs: dir, RenewBefore: d.cfg.ACME.RenewBefore}
	if d.cfg.ACME.URL == "off" {
		return cfg, nil
	}
	client, err := acmeClient(d.cfg.ACME.Roots)
	if err != nil {
		return cfg, err
	}
	cfg.Issuer = &certs.Issuer{Dir: dir, DirectoryURL: d.cfg.ACME.URL, Email: d.cfg.ACME.Email,
		HTTPClient: client, Responder: d.responder()}
	return cfg, nil
}

// acmeClient is the HTTP client for the CA's directory: the system's roots,
// or those in the --acme-roots file (a private CA such as step-ca).
func acmeClient(rootsFile string) (*http.Client, error) {
	if rootsFile == "" {
		return nil, nil // certs' own, with its limit per request
	}
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		return nil, fmt.Errorf("--acme-roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--acme-roots %s: no PEM certificate in it", rootsFile)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: transport, Timeout: 30 * time.Second}, nil
}

// responder sets ACME challenges on the proxy, or on every cluster member's:
// the CA may ask any of them.
func (d *Daemon) responder() certs.Responder {
	if r, ok := d.router.(certs.Responder); ok {
		return r
	}
	return d.proxy.Client()
}
