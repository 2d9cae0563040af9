package daemon_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/certs/pebbletest"
	"github.com/slipway-dev/slipway/channels/proxy/testcert"
)

// TestHTTPSFromACME runs slipway against Let's Encrypt's test CA on
// loopback: a custom domain gets its certificate over HTTP-01 through the
// front proxy, HTTP redirects to it with HSTS, the cron job renews a
// short-lived certificate, a CA that is down keeps the old certificate
// serving, and an own certificate is served with its key never shown.
func TestHTTPSFromACME(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	httpPort, httpsPort := freePort(t), freePort(t)
	ca := pebbletest.Start(t, httpPort, httpsPort, pebbletest.Validity(20*time.Second))
	d := startDaemonOpts(t, []string{
		"--proxy-addr", "127.0.0.1:" + strconv.Itoa(httpPort), "--https-addr", "127.0.0.1:" + strconv.Itoa(httpsPort),
		"--base-domain", "apps.test", "--acme-url", ca.DirectoryURL, "--acme-roots", ca.APIRootFile,
		"--renew-schedule", "@every 1s", "--web-host", "slipway.shop.test",
	}, nil)
	roots := ca.Roots(t)

	// The web page at its own domain: a certificate at start, sign-in links
	// over HTTPS, a Secure session cookie, HTTP sent to HTTPS.
	eventually(t, 20*time.Second, "the web page's certificate", func() (bool, string) {
		out, _, _ := d.ssh("ops", "--type", "renew")
		return strings.Contains(out, "succeeded"), out
	})
	link, _, _ := strings.Cut(d.mustSSH("login"), "\n")
	if want := "https://slipway.shop.test:" + strconv.Itoa(httpsPort) + "/login/"; !strings.HasPrefix(link, want) {
		t.Fatalf("login link %q, want %s...", link, want)
	}
	signIn := httpsRequest(t, httpsPort, "slipway.shop.test", strings.TrimPrefix(link, "https://slipway.shop.test:"+strconv.Itoa(httpsPort)), roots)
	if cookies := signIn.header.Values("Set-Cookie"); len(cookies) == 0 || !strings.Contains(strings.Join(cookies, ";"), "Secure") {
		t.Errorf("signing in over HTTPS set cookies %q, want a Secure one", cookies)
	}
	if code, loc := httpRedirect(t, httpPort, "slipway.shop.test", "/"); code != http.StatusPermanentRedirect || !strings.HasPrefix(loc, "https://slipway.shop.test:") {
		t.Errorf("the web page over HTTP: %d %q", code, loc)
	}
	d.setupApp("shop")
	w := d.newApp("shop", "static")
	w.commitFile("slipway.yml", staticManifest, "manifest")
	w.commitFile("public/index.html", "the shop\n", "first")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push: %d\n%s", code, out)
	}
	d.serves("shop.production.apps.test", "the shop")

	// HTTPS on: a renew operation gets a certificate for each name.
	out := d.mustSSH("domains", "add", "shop/production", "www.shop.test")
	if !strings.Contains(out, "now answers on www.shop.test") {
		t.Errorf("domains add said:\n%s", out)
	}
	out = d.mustSSH("https", "shop/production", "redirect", "--hsts", "3600")
	for _, want := range []string{"renew of shop/production", "Getting a certificate for www.shop.test", "answering the http-01 challenge", "www.shop.test serves a certificate from"} {
		if !strings.Contains(out, want) {
			t.Errorf("https redirect: no %q in\n%s", want, out)
		}
	}
	res, first := httpsGet(t, httpsPort, "www.shop.test", roots)
	if res.body != "the shop\n" || res.header.Get("Strict-Transport-Security") != "max-age=3600" {
		t.Errorf("over HTTPS: %q, HSTS %q", res.body, res.header.Get("Strict-Transport-Security"))
	}
	if code, loc := httpRedirect(t, httpPort, "www.shop.test", "/a?b=1"); code != http.StatusPermanentRedirect ||
		loc != "https://www.shop.test:"+strconv.Itoa(httpsPort)+"/a?b=1" {
		t.Errorf("HTTP: %d to %q, want 308 to HTTPS", code, loc)
	}

	// The cron job renews the short-lived certificate: a renew operation by
	// slipway, and a new certificate served.
	eventually(t, 40*time.Second, "a renewal by the cron job", func() (bool, string) {
		_, now := httpsGet(t, httpsPort, "www.shop.test", roots)
		return now.SerialNumber.Cmp(first.SerialNumber) != 0, now.SerialNumber.String()
	})
	renewals := d.ops("--type", "renew", "--user", "slipway")
	if len(renewals) == 0 || renewals[len(renewals)-1].Status != "succeeded" {
		t.Errorf("renewals by the cron job: %+v", renewals)
	}

	// The CA goes down: a renewal fails with its reason, the certificate
	// there keeps serving.
	ca.Stop()
	_, before := httpsGet(t, httpsPort, "www.shop.test", roots)
	out, _, code := d.ssh("certs", "renew", "shop/production", "--force")
	if code == 0 || !strings.Contains(out, "does not answer") {
		t.Errorf("renew with the CA down: exit %d\n%s", code, out)
	}
	if _, now := httpsGet(t, httpsPort, "www.shop.test", roots); now.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Error("the certificate changed although the CA was down")
	}
	var listed []struct {
		Domain, Source string
		LastError      string     `json:"last_error"`
		NotAfter       *time.Time `json:"not_after"`
	}
	d.sshJSON(&listed, "certs", "list", "shop/production", "--json")
	if len(listed) != 2 || listed[1].Domain != "www.shop.test" || !strings.Contains(listed[1].LastError, "does not answer") || listed[1].NotAfter == nil {
		t.Errorf("certs list after the failure: %+v\n%s", listed, d.mustSSH("ops", "--type", "renew")+d.mustSSH("logs", "5")+d.mustSSH("logs", "6"))
	}

	// An own certificate, from a CA of our own, for a name of its own.
	// With the CA down the domain is added, and its certificate not got.
	if out, _, code := d.ssh("domains", "add", "shop/production", "own.shop.test"); code == 0 || !strings.Contains(out, "now answers on own.shop.test") {
		t.Errorf("domains add with the CA down: exit %d\n%s", code, out)
	}
	ownCA, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ownCA.Issue(time.Time{}, "own.shop.test")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.sshAs(d.key, string(chain)+string(key), "certs", "set", "shop/production", "own.shop.test")
	if code != 0 || !strings.Contains(out, "serves your certificate") {
		t.Fatalf("certs set: %d\n%s%s", code, out, errOut)
	}
	if res, _ := httpsGet(t, httpsPort, "own.shop.test", ownCA.Pool()); res.body != "the shop\n" {
		t.Errorf("own certificate: %q", res.body)
	}
	all := d.mustSSH("certs", "list", "--json") + d.mustSSH("domains", "list", "shop/production") + d.mustSSH("logs", "shop/production")
	if strings.Contains(all, "PRIVATE KEY") || strings.Contains(all, strings.Split(string(key), "\n")[1]) {
		t.Error("the key of the own certificate was shown again")
	}
	metrics := d.metrics()
	if !strings.Contains(metrics, `slipway_certificate_expiry_timestamp_seconds{domain="own.shop.test"}`) {
		t.Errorf("no expiry metric for own.shop.test:\n%s", metrics)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type httpsAnswer struct {
	body   string
	header http.Header
	leaf   *x509.Certificate
}

// httpsGet fetches / of host from the proxy's HTTPS port, verifying the
// chain against roots, and returns the answer and the leaf served.
func httpsGet(t *testing.T, port int, host string, roots *x509.CertPool) (httpsAnswer, *x509.Certificate) {
	t.Helper()
	a := httpsRequest(t, port, host, "/", roots)
	return a, a.leaf
}

// httpsRequest fetches path of host from the proxy's HTTPS port, verifying
// the chain against roots, without following redirects.
func httpsRequest(t *testing.T, port int, host, path string, roots *x509.CertPool) httpsAnswer {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get("https://" + host + path)
	if err != nil {
		t.Fatalf("https://%s%s: %v", host, path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return httpsAnswer{body: string(body), header: res.Header, leaf: res.TLS.PeerCertificates[0]}
}

// httpRedirect asks host's path over plain HTTP and returns the status and
// Location, without following.
func httpRedirect(t *testing.T, port int, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}
