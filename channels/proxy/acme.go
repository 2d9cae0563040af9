package proxy

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
)

// The proxy answers ACME challenges itself, for every host and before routing: a CA
// checks a domain before slipway has a certificate for it, often before the host
// serves anything, and in redirect mode the app would never see the request. The
// challenges are transient (the daemon sets one while an order is pending), so they
// are kept here and not in the route table's state file.

// acmeChallengePath is where HTTP-01 looks (RFC 8555 §8.3).
const acmeChallengePath = "/.well-known/acme-challenge/"

// acmeALPNProto is the protocol a TLS-ALPN-01 validator offers (RFC 8737).
const acmeALPNProto = "acme-tls/1"

// SetChallenge answers GET /.well-known/acme-challenge/TOKEN on the HTTP listener,
// for any host, with keyAuth; an empty keyAuth removes the token.
func (p *Proxy) SetChallenge(token, keyAuth string) error {
	if token == "" || strings.ContainsAny(token, "/?#% ") {
		return fmt.Errorf("%q is not an ACME token", token)
	}
	p.acmeMu.Lock()
	defer p.acmeMu.Unlock()
	cur := *p.tokens.Load()
	next := make(map[string]string, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	if keyAuth == "" {
		delete(next, token)
	} else {
		next[token] = keyAuth
	}
	p.tokens.Store(&next)
	return nil
}

// SetALPNChallenge presents the certificate certPEM, keyPEM (the one
// acme.Client.TLSALPN01ChallengeCert makes) to a TLS client asking for domain with
// the protocol acme-tls/1, and to no other; empty PEMs remove it.
func (p *Proxy) SetALPNChallenge(domain string, certPEM, keyPEM []byte) error {
	domain = canonicalName(domain)
	if domain == "" {
		return fmt.Errorf("an ALPN challenge needs a domain")
	}
	var cert *tls.Certificate
	if len(certPEM) > 0 || len(keyPEM) > 0 {
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("the ALPN challenge certificate for %s: %w", domain, err)
		}
		cert = &c
	}
	p.acmeMu.Lock()
	defer p.acmeMu.Unlock()
	cur := *p.alpnCerts.Load()
	next := make(map[string]*tls.Certificate, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	if cert == nil {
		delete(next, domain)
	} else {
		next[domain] = cert
	}
	p.alpnCerts.Store(&next)
	return nil
}

// challengeAnswer returns the key authorization for an HTTP-01 request path.
func (p *Proxy) challengeAnswer(path string) (string, bool) {
	tokens := *p.tokens.Load()
	if len(tokens) == 0 {
		return "", false
	}
	token, ok := strings.CutPrefix(path, acmeChallengePath)
	if !ok {
		return "", false
	}
	keyAuth, ok := tokens[token]
	return keyAuth, ok
}

// hasChallenges reports whether any HTTP-01 token is set: the fast path hands off
// requests for the challenge path only then.
func (p *Proxy) hasChallenges() bool { return len(*p.tokens.Load()) > 0 }

func writeChallenge(w http.ResponseWriter, keyAuth string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(keyAuth))
}
