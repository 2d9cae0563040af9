package router

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/proxy/testcert"
)

func TestSetHTTPSIsKeptInTheStateFile(t *testing.T) {
	b := newBackends(t, "web-1")
	state := filepath.Join(t.TempDir(), "routes.json")
	ctx := context.Background()
	px := proxy.New(nil)
	tbl, err := Open(px, b.dial, state)
	if err != nil {
		t.Fatal(err)
	}
	tbl.Route(ctx, "a.test", "web-1", 80)
	if err := tbl.SetHTTPS(ctx, "A.test", "redirect", 31536000); err != nil {
		t.Fatal(err)
	}
	if err := tbl.SetHTTPS(ctx, "a.test", "sometimes", 0); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("an unknown mode: %v, want a one-line error", err)
	}
	// A later route change keeps the mode.
	tbl.Maintenance(ctx, "a.test", false, "")

	px2 := proxy.New(nil)
	tbl2, err := Open(px2, b.dial, state)
	if err != nil {
		t.Fatal(err)
	}
	// Redirects wait for a certificate.
	certs := t.TempDir()
	ca, _ := testcert.NewCA()
	crt, key, _ := ca.Issue(time.Time{}, "a.test")
	testcert.WritePair(certs, "a", crt, key)
	tbl2.UseCertDir(certs)
	if n, err := tbl2.LoadCerts(ctx); n != 1 || err != nil {
		t.Fatalf("reload: %d %v", n, err)
	}
	routes, _ := tbl2.Routes(ctx)
	if len(routes) != 1 || routes[0].HTTPS != "redirect" || routes[0].HSTS != 31536000 || routes[0].Instance != "web-1" {
		t.Fatalf("after a restart: %+v", routes)
	}
	rec := httptest.NewRecorder()
	px2.ServeHTTP(rec, httptest.NewRequest("GET", "http://a.test/p?q", nil))
	if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != "https://a.test/p?q" {
		t.Errorf("after a restart a.test answers %d to %q, want the 308", rec.Code, rec.Header().Get("Location"))
	}
	tbl2.SetHTTPS(ctx, "a.test", "off", 0)
	if routes, _ := tbl2.Routes(ctx); routes[0].HTTPS != "" || routes[0].HSTS != 0 {
		t.Errorf("off: %+v", routes[0])
	}
}

func TestClientSetsHTTPSReloadsCertsAndChallenges(t *testing.T) {
	b := newBackends(t, "web-1")
	px, c, _ := serve(t, b)
	ctx := context.Background()
	if err := c.ReloadCerts(ctx); err == nil {
		t.Error("a proxy without a certificate directory reloaded")
	}
	dir := t.TempDir()
	// serve's table: reach it through a second server on the same proxy.
	tbl := New(px, b.dial)
	tbl.UseCertDir(dir)
	sock := filepath.Join(t.TempDir(), "p.sock")
	ln, _ := net.Listen("unix", sock)
	srv := NewServer(tbl, Hello{PID: os.Getpid()}, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { ln.Close() })
	c = NewClient(sock)

	ca, _ := testcert.NewCA()
	crt, key, _ := ca.Issue(time.Time{}, "a.test")
	testcert.WritePair(dir, "a", crt, key)
	if _, err := c.Route(ctx, "a.test", "web-1", 80); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHTTPS(ctx, "a.test", "on", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHTTPS(ctx, "a.test", "bogus", 0); err == nil {
		t.Error("an unknown mode was taken")
	}
	if err := c.ReloadCerts(ctx); err != nil {
		t.Fatal(err)
	}
	tlsLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go px.ServeTLS(tlsLn)
	t.Cleanup(func() { px.Close() })
	conn, err := tls.Dial("tcp", tlsLn.Addr().String(), &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("HTTPS after ReloadCerts: %v", err)
	}
	conn.Close()

	if err := c.Challenge(ctx, "tok", "tok.auth"); err != nil {
		t.Fatal(err)
	}
	if code, body := get(px, "other.test", "/.well-known/acme-challenge/tok"); code != 200 || body != "tok.auth" {
		t.Errorf("challenge: %d %q", code, body)
	}
	if err := c.ALPNChallenge(ctx, "a.test", []byte("junk"), []byte("junk")); err == nil {
		t.Error("an ALPN certificate that does not parse was taken")
	}
	if err := c.ALPNChallenge(ctx, "a.test", nil, nil); err != nil {
		t.Errorf("removing an ALPN challenge: %v", err)
	}
}
