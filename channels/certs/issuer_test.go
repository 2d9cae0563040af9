package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/certs/pebbletest"
	"golang.org/x/crypto/acme"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openDir(t *testing.T, path string) *Dir {
	t.Helper()
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// verifyIssued checks that name's stored pair loads as a TLS key pair and
// that its chain verifies against the CA's root for name.
func verifyIssued(t *testing.T, d *Dir, ca *pebbletest.CA, name string) {
	t.Helper()
	base, _ := FileName(name)
	crt, key := filepath.Join(d.Path(), base+".crt"), filepath.Join(d.Path(), base+".key")
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatalf("the saved pair does not load: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Roots(t), Intermediates: inter}); err != nil {
		t.Fatalf("the issued chain does not verify against Pebble's root: %v", err)
	}
	for _, f := range []string{crt, key} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", filepath.Base(f), fi.Mode().Perm())
		}
	}
}

func TestObtainIssuesACertificateForTheDomain(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort)
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, Email: "ops@slipway.test", HTTPClient: ca.HTTPClient(), Responder: r}

	var log bytes.Buffer
	info, err := iss.Obtain(testContext(t), "App.Test", &log)
	if err != nil {
		t.Fatalf("Obtain: %v\nlog:\n%s", err, log.String())
	}
	if info.Name != "app.test" || len(info.Domains) != 1 || info.Domains[0] != "app.test" {
		t.Errorf("Info = %+v", info)
	}
	if info.Issuer == "" || !info.NotAfter.After(time.Now()) {
		t.Errorf("Info = %+v", info)
	}
	verifyIssued(t, d, ca, "app.test")

	fi, err := os.Stat(filepath.Join(d.Path(), "acme", "account.key"))
	if err != nil {
		t.Fatalf("no account key: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("account.key is %v, want 0600", fi.Mode().Perm())
	}
	if r.count(http01) != 1 || r.count(tlsALPN01) != 0 {
		t.Errorf("presented %v, want one http-01 answer", r.presented)
	}
	if r.left() != 0 {
		t.Errorf("%d challenge answers were left in place", r.left())
	}
	// The operation log tells the story in these lines, in this order.
	want := []string{
		"ordering a certificate for app.test from " + ca.DirectoryURL,
		"registering an account with the CA",
		"answering the http-01 challenge",
		"authorized",
		"issued, valid until " + info.NotAfter.Format(time.DateOnly),
	}
	rest := log.String()
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("the log lacks %q (in order):\n%s", w, log.String())
		}
		rest = rest[i+len(w):]
	}
}

// countingTransport counts the requests made to one URL.
type countingTransport struct {
	url string
	n   atomic.Int32
	rt  http.RoundTripper
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.String() == c.url {
		c.n.Add(1)
	}
	return c.rt.RoundTrip(req)
}

func TestASecondIssuerReusesTheAccount(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort)
	path := filepath.Join(t.TempDir(), "certs")
	dir, err := (&acme.Client{DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient()}).Discover(testContext(t))
	if err != nil {
		t.Fatal(err)
	}

	obtain := func(domain string) int32 {
		t.Helper()
		client := ca.HTTPClient()
		counter := &countingTransport{url: dir.RegURL, rt: client.Transport}
		client.Transport = counter
		// A new Dir and Issuer each time, as after a restart of the daemon.
		iss := &Issuer{Dir: openDir(t, path), DirectoryURL: ca.DirectoryURL, HTTPClient: client, Responder: r}
		if _, err := iss.Obtain(testContext(t), domain, nil); err != nil {
			t.Fatalf("Obtain %s: %v", domain, err)
		}
		return counter.n.Load()
	}
	readAccount := func() (key []byte, url string) {
		t.Helper()
		key, err := os.ReadFile(filepath.Join(path, "acme", "account.key"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(path, "acme", "accounts.json"))
		if err != nil {
			t.Fatal(err)
		}
		var urls map[string]string
		if err := json.Unmarshal(b, &urls); err != nil {
			t.Fatal(err)
		}
		return key, urls[ca.DirectoryURL]
	}

	if n := obtain("one.test"); n == 0 {
		t.Fatal("the first Obtain did not register an account")
	}
	key1, url1 := readAccount()
	if url1 == "" {
		t.Fatal("the account URL was not recorded")
	}
	if n := obtain("two.test"); n != 0 {
		t.Errorf("the second Issuer registered again (%d newAccount requests)", n)
	}
	key2, url2 := readAccount()
	if !bytes.Equal(key1, key2) || url1 != url2 {
		t.Errorf("the account changed: %s -> %s", url1, url2)
	}
	verifyIssued(t, openDir(t, path), ca, "two.test")
}

func TestObtainRegistersAgainWhenTheCAForgotTheAccount(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort)
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	// An account URL of this CA that it does not know (as after a reset of the CA).
	forgotten := strings.TrimSuffix(ca.DirectoryURL, "/dir") + "/my-account/999999"
	if err := d.setAccountURL(ca.DirectoryURL, forgotten); err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient(), Responder: r}
	if _, err := iss.Obtain(testContext(t), "again.test", nil); err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	if url, _ := d.accountURL(ca.DirectoryURL); url == forgotten || url == "" {
		t.Errorf("the account URL is %q, want the new registration's", url)
	}
	verifyIssued(t, d, ca, "again.test")
}

func TestObtainAnswersTLSALPNWhenHTTPIsNotAnswered(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t, answer404)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort)
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient(), Responder: r}

	var log bytes.Buffer
	if _, err := iss.Obtain(testContext(t), "alpn.test", &log); err != nil {
		t.Fatalf("Obtain: %v\nlog:\n%s", err, log.String())
	}
	t.Logf("log:\n%s", log.String())
	if r.count(http01) != 1 || r.count(tlsALPN01) != 1 {
		t.Errorf("presented %v, want http-01 then tls-alpn-01", r.presented)
	}
	if r.left() != 0 {
		t.Errorf("%d challenge answers were left in place", r.left())
	}
	verifyIssued(t, d, ca, "alpn.test")
}

func TestObtainSaysPointTheDNSHereWhenNoChallengeIsAnswered(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t, answer404, noALPN)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort)
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient(), Responder: r}

	_, err := iss.Obtain(testContext(t), "elsewhere.test", nil)
	var ie *IssueError
	if !errors.As(err, &ie) || ie.Kind != KindChallenge {
		t.Fatalf("Obtain = %v, want a challenge failure", err)
	}
	msg := err.Error()
	t.Logf("reason: %s", msg)
	for _, w := range []string{"elsewhere.test: the CA could not reach this host over HTTP (", "point elsewhere.test's DNS at this host", "port 80"} {
		if !strings.Contains(msg, w) {
			t.Errorf("the reason lacks %q: %s", w, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("the reason is more than one line: %q", msg)
	}
	if r.left() != 0 {
		t.Errorf("%d challenge answers were left in place after the failure", r.left())
	}
	if _, err := d.Load("elsewhere.test"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after the failure = %v, want ErrNotFound", err)
	}
	if _, ok := RetryAfter(err); ok {
		t.Error("a challenge failure reads as a rate limit")
	}
}

func TestObtainNamesTheCAWhenItIsDown(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort)
	ca.Stop()
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient(), Responder: r}

	_, err := iss.Obtain(testContext(t), "app.test", nil)
	t.Logf("reason: %v", err)
	var ie *IssueError
	if !errors.As(err, &ie) || ie.Kind != KindCAUnreachable {
		t.Fatalf("Obtain = %v, want the CA unreachable", err)
	}
	if want := "the CA at " + ca.DirectoryURL + " does not answer: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("the reason is %q, want it to start %q", err, want)
	}
	if infos, _ := d.List(); len(infos) != 0 {
		t.Errorf("List = %+v after a failure", infos)
	}
}

// A CA that rate limits: the directory and nonces answer, new accounts get
// 429 with a Retry-After, as Let's Encrypt answers too many registrations.
func TestObtainSaysWhenTheCARateLimits(t *testing.T) {
	t.Parallel()
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Replay-Nonce", "nonce")
		switch req.URL.Path {
		case "/dir":
			json.NewEncoder(w).Encode(map[string]string{
				"newNonce": srv.URL + "/nonce", "newAccount": srv.URL + "/account", "newOrder": srv.URL + "/order",
			})
		case "/nonce":
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new registrations from this IP address"}`))
		}
	}))
	t.Cleanup(srv.Close)
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: srv.URL + "/dir", HTTPClient: srv.Client(), Responder: newTestResponder(t)}

	start := time.Now()
	_, err := iss.Obtain(testContext(t), "app.test", nil)
	if time.Since(start) > 5*time.Second {
		t.Errorf("Obtain waited out the rate limit (%v): the daemon reschedules instead", time.Since(start))
	}
	t.Logf("reason: %v", err)
	wait, ok := RetryAfter(err)
	if !ok || wait != time.Hour {
		t.Fatalf("RetryAfter(%v) = %v, %v; want 1h, true", err, wait, ok)
	}
	for _, w := range []string{"rate limiting", "too many new registrations", "1h0m0s"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the reason lacks %q: %s", w, err)
		}
	}
}

func TestObtainRefusesAWildcard(t *testing.T) {
	t.Parallel()
	iss := &Issuer{Dir: openDir(t, t.TempDir()), DirectoryURL: "https://127.0.0.1:1/dir", Responder: newTestResponder(t)}
	_, err := iss.Obtain(testContext(t), "*.a.example", nil)
	var ie *IssueError
	if !errors.As(err, &ie) || ie.Kind != KindRefused || !strings.Contains(err.Error(), "DNS-01") {
		t.Fatalf("Obtain = %v, want the wildcard refused for want of DNS-01", err)
	}
}

// Pebble 2.4.0's certificateValidityPeriod gives short-lived certificates:
// Due renews them at two thirds of their life, not 30 days ahead.
func TestAShortLivedCertificateIsDueAtTwoThirds(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort, pebbletest.Validity(6*24*time.Hour))
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient(), Responder: r}
	info, err := iss.Obtain(testContext(t), "short.test", nil)
	if err != nil {
		t.Fatalf("Obtain: %v", err)
	}
	lifetime := info.NotAfter.Sub(info.NotBefore)
	if lifetime < 6*24*time.Hour-time.Minute || lifetime > 6*24*time.Hour {
		t.Fatalf("the certificate lives %v, want 6 days", lifetime)
	}
	const before = 30 * 24 * time.Hour
	if Due(info, time.Now(), before) {
		t.Error("a fresh 6-day certificate is due")
	}
	if Due(info, info.NotBefore.Add(lifetime*2/3-time.Minute), before) {
		t.Error("due before two thirds of its life")
	}
	if !Due(info, info.NotBefore.Add(lifetime*2/3), before) {
		t.Error("not due at two thirds of its life")
	}
}

// Renewing while the CA still holds a valid authorization for the name: no
// challenge is answered again.
func TestObtainAgainReusesAValidAuthorization(t *testing.T) {
	t.Parallel()
	r := newTestResponder(t)
	ca := pebbletest.Start(t, r.httpPort, r.tlsPort, pebbletest.Env("PEBBLE_AUTHZREUSE=100"))
	d := openDir(t, filepath.Join(t.TempDir(), "certs"))
	iss := &Issuer{Dir: d, DirectoryURL: ca.DirectoryURL, HTTPClient: ca.HTTPClient(), Responder: r}
	if _, err := iss.Obtain(testContext(t), "renew.test", nil); err != nil {
		t.Fatalf("first Obtain: %v", err)
	}
	crt := filepath.Join(d.Path(), "renew.test.crt")
	firstPEM, _ := os.ReadFile(crt)
	var log bytes.Buffer
	if _, err := iss.Obtain(testContext(t), "renew.test", &log); err != nil {
		t.Fatalf("second Obtain: %v", err)
	}
	if r.count(http01) != 1 {
		t.Errorf("%d http-01 answers for two orders, want 1 (the authorization is reused)", r.count(http01))
	}
	if !strings.Contains(log.String(), "already authorized for renew.test") {
		t.Errorf("the log does not say the authorization was reused:\n%s", log.String())
	}
	if secondPEM, _ := os.ReadFile(crt); bytes.Equal(firstPEM, secondPEM) {
		t.Error("the second certificate did not replace the first")
	}
	verifyIssued(t, d, ca, "renew.test")
}

func TestObtainSaysTheCAFailsWhenItAnswersServerErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"type":"urn:ietf:params:acme:error:serverInternal","detail":"down for maintenance"}`))
	}))
	t.Cleanup(srv.Close)
	iss := &Issuer{Dir: openDir(t, t.TempDir()), DirectoryURL: srv.URL + "/dir", HTTPClient: srv.Client(), Responder: newTestResponder(t)}

	_, err := iss.Obtain(testContext(t), "app.test", nil)
	var ie *IssueError
	if !errors.As(err, &ie) || ie.Kind != KindCAUnreachable {
		t.Fatalf("Obtain = %v, want the CA unreachable", err)
	}
	want := "the CA at " + srv.URL + "/dir does not answer: it replied 503 (down for maintenance)"
	if err.Error() != want {
		t.Errorf("the reason is %q, want %q", err, want)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("the CA was asked %d times: a server error is retried a few times", n)
	}
}
