package daemon_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy/testcert"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// httpsClient reaches every host at the proxy's HTTP or HTTPS address, trusting
// only ca, and follows no redirect.
func httpsClient(ca *testcert.CA, httpAddr, httpsAddr string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				if strings.HasSuffix(addr, ":443") {
					return d.DialContext(ctx, network, httpsAddr)
				}
				return d.DialContext(ctx, network, httpAddr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func TestHTTPSThroughTheProxyProcess(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, _ := d.deployed("secure", "over tls\n")
	hello := d.proxyHello()
	if hello.HTTPSAddr == "" {
		t.Fatalf("the proxy serves no HTTPS: %+v", hello)
	}
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := ca.Issue(time.Time{}, host)
	if err != nil {
		t.Fatal(err)
	}
	if err := testcert.WritePair(frontproxy.CertDirIn(d.data), "secure", crt, key); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pc := d.proxyClient()
	if err := pc.ReloadCerts(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetHTTPS(ctx, host, "redirect", 300); err != nil {
		t.Fatal(err)
	}
	client := httpsClient(ca, hello.Addr, hello.HTTPSAddr)
	_, httpsPort, _ := net.SplitHostPort(hello.HTTPSAddr)
	check := func(when string) {
		t.Helper()
		res, err := client.Get("https://" + host + "/")
		if err != nil {
			t.Fatalf("%s: HTTPS: %v", when, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), "over tls") || res.Header.Get("Strict-Transport-Security") != "max-age=300" {
			t.Fatalf("%s: HTTPS answers %d %q (HSTS %q), want the app's page with max-age=300", when, res.StatusCode, body, res.Header.Get("Strict-Transport-Security"))
		}
		res, err = client.Get("http://" + host + "/page?x=1")
		if err != nil {
			t.Fatalf("%s: HTTP: %v", when, err)
		}
		res.Body.Close()
		if want := "https://" + host + ":" + httpsPort + "/page?x=1"; res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
			t.Fatalf("%s: HTTP answers %d to %q, want 308 to %s", when, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	check("after ReloadCerts and SetHTTPS")
	// An ACME challenge set before the upgrade is still answered after it.
	if err := pc.Challenge(ctx, "tok-upgrade", "tok-upgrade.key"); err != nil {
		t.Fatal(err)
	}
	challenge := func(when string) {
		t.Helper()
		res, err := client.Get("http://any.example/.well-known/acme-challenge/tok-upgrade")
		if err != nil {
			t.Fatalf("%s: challenge: %v", when, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "tok-upgrade.key" {
			t.Fatalf("%s: the challenge answers %d %q", when, res.StatusCode, body)
		}
	}
	challenge("before the upgrade")

	out, err := exec.Command(slipwayBin, "proxy", "upgrade", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("slipway proxy upgrade: %v\n%s", err, out)
	}
	now := d.proxyHello()
	if now.PID == hello.PID || now.HTTPSAddr != hello.HTTPSAddr {
		t.Fatalf("after the upgrade the proxy is %+v; was %+v", now, hello)
	}
	waitGone(t, hello.PID)
	client.CloseIdleConnections()
	check("after slipway proxy upgrade")
	challenge("after slipway proxy upgrade")
}
