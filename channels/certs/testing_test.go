package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testResponder answers HTTP-01 on one loopback port and TLS-ALPN-01 on
// another, as the proxy does on 80 and 443; it stands in for the daemon's
// Responder over the proxy's control socket.
type testResponder struct {
	httpPort, tlsPort int

	mu     sync.Mutex
	tokens map[string]string
	alpn   map[string]tls.Certificate
	// http404: the HTTP port answers every challenge with 404 (a host the
	// domain does not point at). alpnOff: no TLS-ALPN answer is served.
	http404, alpnOff bool
	// presented counts answers put in place, by challenge type.
	presented map[string]int
}

type responderOption func(*testResponder)

func answer404(r *testResponder) { r.http404 = true }
func noALPN(r *testResponder)    { r.alpnOff = true }

func newTestResponder(t *testing.T, opts ...responderOption) *testResponder {
	t.Helper()
	r := &testResponder{
		tokens:    map[string]string{},
		alpn:      map[string]tls.Certificate{},
		presented: map[string]int{},
	}
	for _, o := range opts {
		o(r)
	}

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.httpPort = hl.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(r.serveHTTP)}
	go srv.Serve(hl)
	t.Cleanup(func() { srv.Close() })

	tl, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		NextProtos:     []string{"acme-tls/1"},
		GetCertificate: r.certificate,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.tlsPort = tl.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	t.Cleanup(func() {
		tl.Close()
		wg.Wait()
	})
	return r
}

func (r *testResponder) serveHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, "/.well-known/acme-challenge/")
	r.mu.Lock()
	keyAuth, found := r.tokens[token]
	r.mu.Unlock()
	if !ok || !found || r.http404 {
		http.NotFound(w, req)
		return
	}
	w.Write([]byte(keyAuth))
}

func (r *testResponder) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.alpnOff || !slices.Contains(hello.SupportedProtos, "acme-tls/1") {
		return nil, errors.New("no certificate here")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.alpn[hello.ServerName]
	if !ok {
		return nil, errors.New("no challenge for " + hello.ServerName)
	}
	return &c, nil
}

func (r *testResponder) Challenge(ctx context.Context, token, keyAuth string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if keyAuth == "" {
		delete(r.tokens, token)
		return nil
	}
	r.tokens[token] = keyAuth
	r.presented[http01]++
	return nil
}

func (r *testResponder) ALPNChallenge(ctx context.Context, domain string, certPEM, keyPEM []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(certPEM) == 0 {
		delete(r.alpn, domain)
		return nil
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	r.alpn[domain] = c
	r.presented[tlsALPN01]++
	return nil
}

// left is how many answers are still presented.
func (r *testResponder) left() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tokens) + len(r.alpn)
}

func (r *testResponder) count(typ string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.presented[typ]
}

// testPair makes a certificate for names valid from notBefore to notAfter,
// signed by a throw-away CA, and returns the chain (leaf, CA) and the leaf's
// key as PEM.
func testPair(t *testing.T, names []string, notBefore, notAfter time.Time) (chainPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test CA"},
		NotBefore:             notBefore.Add(-time.Hour),
		NotAfter:              notAfter.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	chainPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	return chainPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}
