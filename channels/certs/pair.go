package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// parseChain reads the CERTIFICATE blocks of a PEM chain, leaf first.
func parseChain(b []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, invalid("the certificate file holds a private key: give the key separately")
			}
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, invalid("the certificate does not parse: " + strings.TrimPrefix(err.Error(), "x509: "))
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, invalid("no PEM certificate found")
	}
	return chain, nil
}

// parseKey reads a PEM private key: PKCS #8, or the older EC and RSA forms.
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, invalid("no PEM private key found")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, invalid("the private key is encrypted: give it without a passphrase")
		default:
			continue // EC PARAMETERS and the like
		}
		if err != nil {
			return nil, invalid("the private key does not parse: " + strings.TrimPrefix(err.Error(), "x509: "))
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, invalid(fmt.Sprintf("a %T private key cannot sign", key))
		}
		return s, nil
	}
}

// checkPair is Save's check: the key is the leaf's, the leaf covers name and
// is in date, and the next certificate (if any) issued the leaf.
func checkPair(name string, chain []*x509.Certificate, key crypto.Signer, now time.Time) error {
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return invalid("the key does not match the certificate")
	}
	if !covers(leaf, name) {
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		if len(names) == 0 {
			return invalid(fmt.Sprintf("the certificate names no domain, not %s", name))
		}
		return invalid(fmt.Sprintf("the certificate is for %s, not %s", strings.Join(names, ", "), name))
	}
	if now.After(leaf.NotAfter) {
		return invalid("the certificate expired on " + leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if len(chain) > 1 && leaf.CheckSignatureFrom(chain[1]) != nil {
		return invalid("the chain is out of order: the second certificate did not issue the first (give the leaf first, then its issuer)")
	}
	return nil
}

// covers reports whether leaf is valid for name, which may itself be a
// wildcard (then only the same wildcard covers it).
func covers(leaf *x509.Certificate, name string) bool {
	for _, san := range leaf.DNSNames {
		san = strings.TrimSuffix(strings.ToLower(san), ".")
		if san == name {
			return true
		}
		if rest, ok := strings.CutPrefix(san, "*."); ok && !strings.HasPrefix(name, "*.") {
			if _, parent, ok := strings.Cut(name, "."); ok && parent == rest {
				return true
			}
		}
	}
	return false
}
