package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// certIndex maps a canonical name (lower case, no trailing dot; "*.parent" for a
// wildcard) to the certificate that serves it. Like the route table it is immutable
// once published: a reload builds a new one and swaps it in whole.
type certIndex map[string]*tls.Certificate

// LoadCerts reads every pair NAME.crt (PEM chain, leaf first) and NAME.key (PEM
// private key) in dir and serves them from now on, in place of those loaded before.
// Each certificate is indexed by every DNS name of its leaf, so file names do not
// matter; when two cover a name, the one that expires later serves it. A pair that
// does not load is logged and skipped, and the others serve. It returns how many
// pairs loaded, and an error only when dir cannot be read (a missing dir holds none).
func (p *Proxy) LoadCerts(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		entries, err = nil, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the certificates: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".crt"); ok && !e.IsDir() && !strings.HasPrefix(name, ".") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	idx := certIndex{}
	loaded := 0
	for _, name := range names {
		crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		cert, err := tls.LoadX509KeyPair(crt, key)
		if err == nil && cert.Leaf == nil {
			cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0])
		}
		if err == nil && len(cert.Leaf.DNSNames) == 0 {
			err = errors.New("its certificate names no DNS name")
		}
		if err != nil {
			p.logger.Warn("Skipped a certificate that does not load", "cert", crt, "err", err)
			continue
		}
		loaded++
		for _, dns := range cert.Leaf.DNSNames {
			dns = canonicalName(dns)
			if prev := idx[dns]; prev == nil || cert.Leaf.NotAfter.After(prev.Leaf.NotAfter) {
				idx[dns] = &cert
			}
		}
	}
	p.certs.Store(&idx)
	p.logger.Info("Loaded certificates", "dir", dir, "pairs", loaded, "names", len(idx))
	return loaded, nil
}

// certFor returns the certificate for a server name: the exact name, then the
// wildcard of its parent; nil if none.
func (p *Proxy) certFor(name string) *tls.Certificate {
	idx := *p.certs.Load()
	if c := idx[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return idx["*"+name[i:]]
	}
	return nil
}

// canonicalName is a DNS name as certificates and SNI are matched: lower case,
// without a trailing dot.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// tlsConfig is ServeTLS's configuration: certificates from the index by SNI, for
// hosts served over HTTPS, and the ACME challenge certificate to a client that asks
// for acme-tls/1 alone.
func (p *Proxy) tlsConfig() *tls.Config {
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: p.getCertificate,
	}
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if !slices.Contains(hello.SupportedProtos, acmeALPNProto) {
			return nil, nil
		}
		if cert := (*p.alpnCerts.Load())[canonicalName(hello.ServerName)]; cert != nil {
			return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{acmeALPNProto}, Certificates: []tls.Certificate{*cert}}, nil
		}
		return nil, nil
	}
	return base
}

func (p *Proxy) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := canonicalName(hello.ServerName)
	if name == "" {
		return nil, errors.New("no server name (SNI) given")
	}
	if rt := (*p.routes.Load())[name]; rt == nil || rt.https == HTTPSOff {
		return nil, fmt.Errorf("%s is not served over HTTPS", name)
	}
	if cert := p.certFor(name); cert != nil {
		return cert, nil
	}
	return nil, fmt.Errorf("no certificate for %s", name)
}
