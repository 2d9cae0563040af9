package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy/testcert"
	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// HTTPS through the proxy against nginx HTTPS: the same backend as the proxy item
// (see proxy.go), the same certificate (an ECDSA P-256 leaf from a CA made here)
// in both, keep-alive requests with wrk, then new handshakes alone.

const (
	handshakeWorkers  = 32
	handshakeDuration = 5 * time.Second
)

// httpsVsNginx: the https item.
func (b *bench) httpsVsNginx(ctx context.Context) error {
	status("HTTPS vs nginx: %d interleaved rounds (wrk -t2 -c64 -d%s over TLS; %d clients making new handshakes for %s)",
		b.cfg.Rounds, wrkDuration, handshakeWorkers, handshakeDuration)
	httpsAddr := b.d.proc.Addrs["https"]
	if httpsAddr == "" {
		return fmt.Errorf("the proxy serves no HTTPS")
	}
	host, _, err := b.firstDeploy(ctx, "edgetls", edgeManifest, "edge\n")
	if err != nil {
		return err
	}
	st, err := b.d.status(ctx, "edgetls")
	if err != nil {
		return err
	}
	backend, err := startBackend(ctx, b.d, st.Instance, b.d.appPort())
	if err != nil {
		return err
	}
	defer backend.close()

	// One certificate for both, in the proxy's directory and nginx's.
	ca, err := testcert.NewCA()
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := ca.Issue(time.Time{}, host)
	if err != nil {
		return err
	}
	if err := testcert.WritePair(frontproxy.CertDirIn(b.d.data), "bench", certPEM, keyPEM); err != nil {
		return err
	}
	pc := router.NewClient(frontproxy.PathsIn(frontproxy.DirIn(b.d.data)).Socket)
	if err := pc.ReloadCerts(ctx); err != nil {
		return err
	}
	if err := pc.SetHTTPS(ctx, host, "on", 0); err != nil {
		return err
	}
	dir := filepath.Join(b.tmp, "nginx-tls")
	if err := testcert.WritePair(dir, "bench", certPEM, keyPEM); err != nil {
		return err
	}
	ngx, err := startNginx(ctx, dir, backend.hostAddr, &nginxTLS{cert: filepath.Join(dir, "bench.crt"), key: filepath.Join(dir, "bench.key")})
	if err != nil {
		return err
	}
	defer ngx.stop()
	hosts := filepath.Join(b.tmp, "hosts-tls")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost "+host+"\n"), 0o644); err != nil {
		return err
	}
	b.log.Printf("HTTPS: proxy on %s, nginx pid %d on %s, backend %s", httpsAddr, ngx.pid, ngx.addr, backend.hostAddr)

	addrs := map[string]string{"slipway": httpsAddr, "nginx": ngx.addr}
	targets := map[string]target{}
	for name, addr := range addrs {
		_, port, _ := net.SplitHostPort(addr)
		targets[name] = target{url: "https://" + host + ":" + port + "/", host: host, hosts: hosts}
		if err := checkHTTPS(ctx, ca, host, addr); err != nil {
			return fmt.Errorf("%s over HTTPS does not reach the backend: %w", name, err)
		}
	}
	for _, name := range []string{"slipway", "nginx"} {
		if _, err := runWrk(ctx, targets[name], time.Second); err != nil {
			return err
		}
	}
	for r := 1; r <= b.cfg.Rounds; r++ {
		order := []string{"slipway", "nginx"}
		if r%2 == 0 {
			order = []string{"nginx", "slipway"}
		}
		rps, hs, hsCPU := map[string]float64{}, map[string]float64{}, map[string]float64{}
		pids := map[string]int{"nginx": ngx.pid}
		if pids["slipway"], err = b.d.proxyPID(); err != nil {
			return err
		}
		for _, name := range order {
			res, err := runWrk(ctx, targets[name], wrkDuration)
			if err != nil {
				return err
			}
			if res.errors > 0 {
				return fmt.Errorf("wrk through %s over HTTPS: %d errors or non-2xx responses of %d", name, res.errors, res.requests)
			}
			rps[name] = res.rps
		}
		for _, name := range order {
			cpu0, err := treeCPU(pids[name])
			if err != nil {
				return err
			}
			n, failed, first := handshakes(ctx, host, addrs[name], handshakeWorkers, handshakeDuration)
			if failed > 0 {
				return fmt.Errorf("%d of %d handshakes with %s failed; first: %v", failed, n+failed, name, first)
			}
			cpu1, err := treeCPU(pids[name])
			if err != nil {
				return err
			}
			hs[name] = float64(n) / handshakeDuration.Seconds()
			// On a small machine the clients can be what bounds the rate, so the
			// server's own CPU per handshake is told too.
			hsCPU[name] = float64((cpu1 - cpu0).Microseconds()) / float64(n)
		}
		b.results.add("https_rps_vs_nginx", rps["slipway"]/rps["nginx"])
		b.results.note("https_rps_vs_nginx", "round %d: slipway %.0f req/s, nginx %.0f req/s", r, rps["slipway"], rps["nginx"])
		b.results.add("tls_handshakes_vs_nginx", hs["slipway"]/hs["nginx"])
		b.results.note("tls_handshakes_vs_nginx", "round %d: slipway %.0f handshakes/s, nginx %.0f", r, hs["slipway"], hs["nginx"])
		if hsCPU["nginx"] > 0 {
			b.results.add("tls_handshake_cpu_vs_nginx", hsCPU["slipway"]/hsCPU["nginx"])
			b.results.note("tls_handshake_cpu_vs_nginx", "round %d: slipway %.0f µs, nginx %.0f µs of CPU per handshake", r, hsCPU["slipway"], hsCPU["nginx"])
		}
		b.log.Printf("HTTPS round %d: req/s slipway %.0f nginx %.0f; handshakes/s slipway %.0f nginx %.0f", r, rps["slipway"], rps["nginx"], hs["slipway"], hs["nginx"])
		status("  round %d: HTTPS req/s slipway %.0f nginx %.0f (%.2f×); handshakes/s slipway %.0f nginx %.0f (%.2f×)", r,
			rps["slipway"], rps["nginx"], rps["slipway"]/rps["nginx"], hs["slipway"], hs["nginx"], hs["slipway"]/hs["nginx"])
	}
	return nil
}

// checkHTTPS fetches / of host at addr, verifying the certificate against ca.
func checkHTTPS(ctx context.Context, ca *testcert.CA, host, addr string) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || len(body) != backendBodySize || res.Header.Get("X-Bench-Backend") != "go" {
		return fmt.Errorf("got %s with %d bytes", res.Status, len(body))
	}
	return nil
}

// handshakes has workers clients make full TLS handshakes with addr (SNI host)
// for d, each on a new connection closed right after, and returns how many
// completed and failed. No session is resumed (the clients keep no cache), and
// the key exchange is X25519 for both servers: Go's server would otherwise agree
// on X25519MLKEM768 with a Go client, which the nginx here (OpenSSL 3.0) cannot,
// and the two would not do the same work. The certificate is not verified: the
// clients' cost is the same for both, and smaller is better for a measure of the
// servers.
func handshakes(ctx context.Context, host, addr string, workers int, d time.Duration) (ok, failed int64, first error) {
	cfg := &tls.Config{ServerName: host, InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519},
		NextProtos: []string{"http/1.1"}}
	var okN, failN atomic.Int64
	var firstErr atomic.Pointer[error]
	// Each dial has its own timeout, not the run's end as a deadline: a dial cut by
	// that would count as failed.
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dialer := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 5 * time.Second}}
			for ctx.Err() == nil && time.Now().Before(end) {
				conn, err := dialer.DialContext(ctx, "tcp", addr)
				if err != nil {
					if ctx.Err() == nil {
						failN.Add(1)
						firstErr.CompareAndSwap(nil, &err)
					}
					continue
				}
				okN.Add(1)
				conn.Close()
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		first = *p
	}
	return okN.Load(), failN.Load(), first
}
