package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/slipway-dev/slipway/channels/proxy/testcert"
)

// tlsFront is a proxy serving HTTP and HTTPS on loopback, with a test CA's
// certificates in a directory of its own.
type tlsFront struct {
	p         *Proxy
	ca        *testcert.CA
	certDir   string
	httpAddr  string
	httpsAddr string
}

func newTLSFront(t *testing.T, setup func(p *Proxy)) *tlsFront {
	t.Helper()
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	p := New(testLogger(t))
	if setup != nil {
		setup(p)
	}
	f := &tlsFront{p: p, ca: ca, certDir: t.TempDir()}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.httpAddr, f.httpsAddr = plain.Addr().String(), secure.Addr().String()
	served := make(chan error, 2)
	go func() { served <- p.Serve(plain) }()
	go func() { served <- p.ServeTLS(secure) }()
	t.Cleanup(func() {
		p.Close()
		for range 2 {
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		}
	})
	return f
}

// issue writes a pair for names into the certificate directory and reloads it.
func (f *tlsFront) issue(t *testing.T, file string, notAfter time.Time, names ...string) {
	t.Helper()
	crt, key, err := f.ca.Issue(notAfter, names...)
	if err != nil {
		t.Fatal(err)
	}
	if err := testcert.WritePair(f.certDir, file, crt, key); err != nil {
		t.Fatal(err)
	}
	f.reload(t)
}

func (f *tlsFront) reload(t *testing.T) {
	t.Helper()
	if _, err := f.p.LoadCerts(f.certDir); err != nil {
		t.Fatal(err)
	}
}

// handshake connects to the HTTPS listener with SNI name, trusting the test CA,
// and returns the leaf the proxy presented.
func (f *tlsFront) handshake(name string, protos ...string) (*x509.Certificate, string, error) {
	conn, err := tls.Dial("tcp", f.httpsAddr, &tls.Config{ServerName: name, RootCAs: f.ca.Pool(), NextProtos: protos})
	if err != nil {
		return nil, "", err
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0], st.NegotiatedProtocol, nil
}

// client is an HTTP client that reaches every host on the front's listeners,
// trusting the test CA; h2 chooses HTTP/2 over TLS, and redirects are not followed.
func (f *tlsFront) client(h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: f.ca.Pool()},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasSuffix(addr, ":443") {
				return d.DialContext(ctx, network, f.httpsAddr)
			}
			return d.DialContext(ctx, network, f.httpAddr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// forwardedEcho answers with the request's forwarding fields as JSON.
func forwardedEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"xff":   strings.Join(r.Header["X-Forwarded-For"], "|"),
			"proto": strings.Join(r.Header["X-Forwarded-Proto"], "|"),
			"cf":    strings.Join(r.Header["Cf-Connecting-Ip"], "|"),
			"real":  strings.Join(r.Header["X-Real-Ip"], "|"),
			"path":  r.URL.RequestURI(),
		})
	})
}

func fetch(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	return fetchBody(t, c, url, header, "")
}

// fetchBody is fetch with a body, which takes net/http's path (a POST).
func fetchBody(t *testing.T, c *http.Client, url string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	method, rd := http.MethodGet, io.Reader(nil)
	if body != "" {
		method, rd = http.MethodPost, strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	got, _ := io.ReadAll(res.Body)
	return res, string(got)
}

func TestTLSPicksTheCertificateBySNI(t *testing.T) {
	f := newTLSFront(t, nil)
	for _, h := range []string{"a.test", "x.wild.test", "wild.test", "other.test"} {
		f.p.SetHTTPS(h, HTTPSOn, 0)
	}
	f.issue(t, "one", time.Time{}, "a.test")
	f.issue(t, "two", time.Time{}, "*.wild.test")

	for name, want := range map[string]string{"a.test": "a.test", "A.Test.": "a.test", "x.wild.test": "*.wild.test"} {
		leaf, _, err := f.handshake(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if leaf.DNSNames[0] != want {
			t.Errorf("%s got the certificate for %v, want %s", name, leaf.DNSNames, want)
		}
	}
	// A wildcard covers one label only, and a name no certificate covers fails.
	for _, name := range []string{"wild.test", "other.test", "nothing.test"} {
		if _, _, err := f.handshake(name); err == nil {
			t.Errorf("the handshake for %s succeeded with no certificate for it", name)
		}
	}
}

func TestTLSRefusesAHostWhoseHTTPSIsOff(t *testing.T) {
	f := newTLSFront(t, nil)
	f.issue(t, "a", time.Time{}, "a.test", "b.test")
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	f.p.AddHost("b.test")
	if _, _, err := f.handshake("a.test"); err != nil {
		t.Fatalf("a.test: %v", err)
	}
	if _, _, err := f.handshake("b.test"); err == nil {
		t.Error("the handshake for b.test, whose HTTPS is off, succeeded")
	}
}

func TestTLSPrefersTheLaterExpiryAndReloads(t *testing.T) {
	f := newTLSFront(t, nil)
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	soon, later := time.Now().Add(2*time.Hour).Truncate(time.Second), time.Now().Add(20*time.Hour).Truncate(time.Second)
	f.issue(t, "zz-later", later, "a.test")
	f.issue(t, "aa-soon", soon, "a.test")
	if leaf, _, err := f.handshake("a.test"); err != nil || !leaf.NotAfter.Equal(later) {
		t.Fatalf("got %v (%v), want the certificate expiring %v", leaf.NotAfter, err, later)
	}

	// The daemon renews: the file changes, and a reload serves the new one.
	renewed := time.Now().Add(23 * time.Hour).Truncate(time.Second)
	f.issue(t, "aa-soon", renewed, "a.test")
	if leaf, _, err := f.handshake("a.test"); err != nil || !leaf.NotAfter.Equal(renewed) {
		t.Fatalf("after the reload got %v (%v), want %v", leaf.NotAfter, err, renewed)
	}
	// A pair removed is no longer served.
	os.Remove(filepath.Join(f.certDir, "aa-soon.crt"))
	os.Remove(filepath.Join(f.certDir, "zz-later.crt"))
	f.reload(t)
	if _, _, err := f.handshake("a.test"); err == nil {
		t.Error("a certificate removed from the directory still serves")
	}
}

func TestTLSSkipsABadPair(t *testing.T) {
	f := newTLSFront(t, nil)
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	f.p.SetHTTPS("b.test", HTTPSOn, 0)
	crt, key, _ := f.ca.Issue(time.Time{}, "a.test")
	testcert.WritePair(f.certDir, "a", crt, key)
	crtB, _, _ := f.ca.Issue(time.Time{}, "b.test")
	_, otherKey, _ := f.ca.Issue(time.Time{}, "b.test")
	testcert.WritePair(f.certDir, "b", crtB, otherKey) // a key that is not the certificate's
	os.WriteFile(filepath.Join(f.certDir, "c.crt"), []byte("not PEM"), 0o600)
	os.WriteFile(filepath.Join(f.certDir, "d.crt"), crt, 0o600) // no key

	n, err := f.p.LoadCerts(f.certDir)
	if err != nil || n != 1 {
		t.Fatalf("loaded %d pairs (%v), want the one good pair", n, err)
	}
	if _, _, err := f.handshake("a.test"); err != nil {
		t.Errorf("the good pair does not serve: %v", err)
	}
	if _, _, err := f.handshake("b.test"); err == nil {
		t.Error("the bad pair serves")
	}
}

func TestHTTPSServesTheAppWithForwardedProtoAndHSTS(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run("h2="+strconv.FormatBool(h2), func(t *testing.T) {
			f := newTLSFront(t, nil)
			_, up := testBackend(t, "web", forwardedEcho())
			f.p.Swap("a.test", up)
			f.p.SetHTTPS("a.test", HTTPSOn, 600)
			f.issue(t, "a", time.Time{}, "a.test")
			c := f.client(h2)

			res, body := fetch(t, c, "https://a.test/x?y=1", nil)
			wantProto := "HTTP/1.1"
			if h2 {
				wantProto = "HTTP/2.0"
			}
			if res.StatusCode != 200 || res.Proto != wantProto {
				t.Fatalf("over HTTPS: %d %s, want 200 %s", res.StatusCode, res.Proto, wantProto)
			}
			var got map[string]string
			json.Unmarshal([]byte(body), &got)
			if got["proto"] != "https" || got["xff"] != "127.0.0.1" || got["path"] != "/x?y=1" {
				t.Errorf("the app saw %v, want X-Forwarded-Proto https from 127.0.0.1", got)
			}
			if hsts := res.Header.Get("Strict-Transport-Security"); hsts != "max-age=600" {
				t.Errorf("HTTPS response's Strict-Transport-Security = %q, want max-age=600", hsts)
			}

			// A request with a body takes net/http's path on HTTP/1.1: the same fields.
			res, body = fetchBody(t, c, "https://a.test/", nil, "a body")
			got = nil
			json.Unmarshal([]byte(body), &got)
			if res.StatusCode != 200 || got["proto"] != "https" || res.Header.Get("Strict-Transport-Security") != "max-age=600" {
				t.Errorf("a POST over HTTPS: %d, proto %q, HSTS %q", res.StatusCode, got["proto"], res.Header.Get("Strict-Transport-Security"))
			}

			res, body = fetch(t, c, "http://a.test/", nil)
			got = nil
			json.Unmarshal([]byte(body), &got)
			if res.StatusCode != 200 || got["proto"] != "http" {
				t.Errorf("over HTTP: %d, proto %q, want 200 http", res.StatusCode, got["proto"])
			}
			if hsts := res.Header.Get("Strict-Transport-Security"); hsts != "" {
				t.Errorf("an HTTP response carries Strict-Transport-Security %q", hsts)
			}
		})
	}
}

func TestHTTPSRefusesAHostNotServedOverItOnAConnectionForAnother(t *testing.T) {
	f := newTLSFront(t, nil)
	_, up := testBackend(t, "web", nameHandler("web"))
	f.p.Swap("a.test", up)
	f.p.Swap("b.test", up)
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	f.issue(t, "a", time.Time{}, "a.test")
	conn, err := tls.Dial("tcp", f.httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: f.ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("b.test (HTTPS off) on a.test's connection: %d, want 421", res.StatusCode)
	}
}

func TestRedirectModeSendsHTTPToHTTPS(t *testing.T) {
	f := newTLSFront(t, nil)
	_, up := testBackend(t, "web", nameHandler("web"))
	f.p.Swap("a.test", up)
	f.p.SetHTTPS("a.test", HTTPSRedirect, 0)
	c := f.client(false)
	if res, body := fetch(t, c, "http://a.test/", nil); res.StatusCode != 200 || body != "web" {
		t.Errorf("redirect mode with no certificate yet: %d %q, want HTTP to serve", res.StatusCode, body)
	}
	f.issue(t, "a", time.Time{}, "a.test")

	res, _ := fetch(t, c, "http://a.test/some/path?q=1&r=2", nil)
	_, port, _ := net.SplitHostPort(f.httpsAddr)
	want := "https://a.test:" + port + "/some/path?q=1&r=2"
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
		t.Fatalf("got %d to %q, want 308 to %s", res.StatusCode, res.Header.Get("Location"), want)
	}
	if res, body := fetch(t, c, "https://a.test/", nil); res.StatusCode != 200 || body != "web" {
		t.Errorf("over HTTPS: %d %q", res.StatusCode, body)
	}
	// With the proxy on 443, the target has no port.
	f.p.httpsPort.Store(443)
	if res, _ := fetch(t, c, "http://a.test/p", nil); res.Header.Get("Location") != "https://a.test/p" {
		t.Errorf("on 443 the target is %q", res.Header.Get("Location"))
	}
}

func TestHTTP01ChallengeIsAnsweredBeforeRouting(t *testing.T) {
	f := newTLSFront(t, nil)
	_, up := testBackend(t, "web", nameHandler("web"))
	f.p.Swap("a.test", up)
	f.p.SetHTTPS("a.test", HTTPSRedirect, 0)
	f.issue(t, "a", time.Time{}, "a.test")
	if err := f.p.SetChallenge("tok-1", "tok-1.thumb"); err != nil {
		t.Fatal(err)
	}
	c := f.client(false)
	for _, host := range []string{"a.test", "unknown.test"} {
		res, body := fetch(t, c, "http://"+host+acmeChallengePath+"tok-1", nil)
		if res.StatusCode != 200 || body != "tok-1.thumb" || res.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("%s: %d %q %q, want 200 text/plain tok-1.thumb", host, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	// Another token is not ours: it is neither answered nor redirected.
	if res, body := fetch(t, c, "http://a.test"+acmeChallengePath+"other", nil); res.StatusCode != 200 || body != "web" {
		t.Errorf("an unknown token: %d %q, want the app's answer", res.StatusCode, body)
	}
	f.p.SetChallenge("tok-1", "")
	if res, body := fetch(t, c, "http://a.test"+acmeChallengePath+"tok-1", nil); body != "web" {
		t.Errorf("a removed token: %d %q, want the app's answer", res.StatusCode, body)
	}
	if res, _ := fetch(t, c, "http://a.test/elsewhere", nil); res.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("another path: %d, want the redirect", res.StatusCode)
	}
}

func TestALPNChallengeCertOnlyForACMEProtocol(t *testing.T) {
	f := newTLSFront(t, nil)
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	f.issue(t, "a", time.Time{}, "a.test")
	key, err := x509ParseKey(t, f)
	if err != nil {
		t.Fatal(err)
	}
	chal, err := (&acme.Client{Key: key}).TLSALPN01ChallengeCert("token-abc", "a.test")
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chal.Certificate[0]})
	keyDER, _ := x509.MarshalPKCS8PrivateKey(chal.PrivateKey)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := f.p.SetALPNChallenge("a.test", certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}

	validator := func(protos ...string) (*x509.Certificate, string, error) {
		conn, err := tls.Dial("tcp", f.httpsAddr, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: protos})
		if err != nil {
			return nil, "", err
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return st.PeerCertificates[0], st.NegotiatedProtocol, nil
	}
	leaf, proto, err := validator(acmeALPNProto)
	if err != nil || proto != acmeALPNProto || !hasACMEExtension(leaf) {
		t.Fatalf("acme-tls/1: %v, protocol %q, challenge extension %v", err, proto, err == nil && hasACMEExtension(leaf))
	}
	leaf, proto, err = validator("h2", "http/1.1")
	if err != nil || hasACMEExtension(leaf) || proto != "h2" {
		t.Errorf("a browser got the challenge certificate (or failed: %v, %q)", err, proto)
	}
	f.p.SetALPNChallenge("a.test", nil, nil)
	if _, _, err := validator(acmeALPNProto); err == nil {
		t.Error("a removed ALPN challenge still completes")
	}
}

// x509ParseKey is an account key for the acme client: any signer does.
func x509ParseKey(t *testing.T, f *tlsFront) (*ecdsa.PrivateKey, error) {
	_, keyPEM, err := f.ca.Issue(time.Time{}, "account.test")
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	return k.(*ecdsa.PrivateKey), nil
}

// idPeAcmeIdentifier is the extension RFC 8737 puts in a challenge certificate.
var idPeAcmeIdentifier = []int{1, 3, 6, 1, 5, 5, 7, 1, 31}

func hasACMEExtension(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(idPeAcmeIdentifier) {
			return true
		}
	}
	return false
}

func TestTLSHandshakeTimeoutClosesTheConnection(t *testing.T) {
	f := newTLSFront(t, func(p *Proxy) { p.HandshakeTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", f.httpsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Say nothing: the proxy must give up and close, well before the test's deadline.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the proxy kept a silent connection open past its handshake timeout")
	}
	if err == nil {
		t.Fatal("the proxy wrote to a client that sent no ClientHello")
	}
}

func TestForwardedFieldsFromUntrustedAndTrustedPeers(t *testing.T) {
	spoof := http.Header{
		"X-Forwarded-For":   {"203.0.113.9"},
		"X-Forwarded-Proto": {"https"},
		"Cf-Connecting-Ip":  {"198.51.100.1"},
		"X-Real-Ip":         {"198.51.100.2"},
	}
	viaCDN := http.Header{
		"X-Forwarded-For":   {"198.51.100.7, 203.0.113.9"},
		"X-Forwarded-Proto": {"https"},
	}
	cases := []struct {
		name    string
		trusted []netip.Prefix
		header  http.Header
		want    map[string]string
	}{
		{"untrusted", nil, spoof, map[string]string{"xff": "127.0.0.1", "proto": "http", "cf": "", "real": "127.0.0.1"}},
		{"trusted CF", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, spoof,
			map[string]string{"xff": "203.0.113.9, 127.0.0.1", "proto": "https", "cf": "198.51.100.1", "real": "198.51.100.1"}},
		{"trusted XFF", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("203.0.113.0/24")}, viaCDN,
			map[string]string{"xff": "198.51.100.7, 203.0.113.9, 127.0.0.1", "proto": "https", "cf": "", "real": "198.51.100.7"}},
	}
	for _, tc := range cases {
		for _, path := range []string{"fast", "handoff"} {
			t.Run(tc.name+"/"+path, func(t *testing.T) {
				f := newTLSFront(t, func(p *Proxy) { p.TrustedProxies = tc.trusted })
				_, up := testBackend(t, "web", forwardedEcho())
				f.p.Swap("a.test", up)
				body := ""
				if path == "handoff" {
					body = "a body" // net/http's path
				}
				_, body = fetchBody(t, f.client(false), "http://a.test/", tc.header.Clone(), body)
				var got map[string]string
				json.Unmarshal([]byte(body), &got)
				for k, v := range tc.want {
					if got[k] != v {
						t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
					}
				}
			})
		}
	}
}

func TestTLSConnectionsCountAgainstThePerAddressCap(t *testing.T) {
	f := newTLSFront(t, func(p *Proxy) { p.MaxConnsPerIP = 1 })
	_, up := testBackend(t, "web", nameHandler("web"))
	f.p.Swap("a.test", up)
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	f.issue(t, "a", time.Time{}, "a.test")
	cfg := &tls.Config{ServerName: "a.test", RootCAs: f.ca.Pool(), NextProtos: []string{"h2"}}
	first, err := tls.Dial("tcp", f.httpsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("negotiated %q", first.ConnectionState().NegotiatedProtocol)
	}
	if second, err := tls.Dial("tcp", f.httpsAddr, cfg); err == nil {
		second.Close()
		t.Fatal("a second connection from the address was served, over a cap of one")
	}
	if f.p.Stats().RefusedConns != 1 {
		t.Errorf("refused %d connections, want 1", f.p.Stats().RefusedConns)
	}
	// Once the HTTP/2 connection is closed its address is free again.
	first.Close()
	eventuallyTLS(t, func() bool {
		c, err := tls.Dial("tcp", f.httpsAddr, cfg)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func TestShutdownClosesTheHTTPSListener(t *testing.T) {
	f := newTLSFront(t, nil)
	f.p.SetHTTPS("a.test", HTTPSOn, 0)
	f.issue(t, "a", time.Time{}, "a.test")
	if _, _, err := f.handshake("a.test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", f.httpsAddr); err == nil {
		conn.Close()
		t.Error("the HTTPS listener still accepts after Shutdown")
	}
}

func eventuallyTLS(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5 s")
}
