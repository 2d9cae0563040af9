// Package pebbletest runs Let's Encrypt's test CA, Pebble (Debian's `pebble`
// package, 2.4.0), on loopback for a test: pebble-challtestsrv answers every
// DNS name with 127.0.0.1, so the CA validates HTTP-01 and TLS-ALPN-01 on the
// ports the caller serves its challenges on.
//
// Debian ships no test certificates for Pebble's API listener, so Start makes a
// throw-away CA and a certificate for 127.0.0.1/localhost each time.
package pebbletest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// CA is one running Pebble with its challenge test server.
type CA struct {
	// DirectoryURL is the ACME directory, https://127.0.0.1:PORT/dir.
	DirectoryURL string
	// ManagementURL is Pebble's management API, where /roots/0 is the root
	// that signs issued chains.
	ManagementURL string
	// APIRootFile is a PEM file of the CA of the directory's own HTTPS
	// certificate, for clients that read roots from a file (--acme-roots).
	APIRootFile string

	apiRoots *x509.CertPool
	procs    []*process
	stopOnce sync.Once
}

// Option changes how Pebble is configured.
type Option func(*config)

// Validity makes Pebble issue certificates valid for d (Pebble 2.4.0's
// `certificateValidityPeriod`, in whole seconds; its default is five years).
// Renewal of short-lived certificates is tested with it.
func Validity(d time.Duration) Option {
	return func(c *config) { c.validity = uint(d / time.Second) }
}

// Env sets environment variables of the pebble process, "NAME=value": Pebble
// 2.4.0 reads PEBBLE_AUTHZREUSE (percent of orders that reuse a valid
// authorization, default 50), PEBBLE_WFE_NONCEREJECT (percent of good nonces
// rejected, default 5), PEBBLE_CHAIN_LENGTH and PEBBLE_ALTERNATE_ROOTS.
func Env(kv ...string) Option {
	return func(c *config) { c.env = append(c.env, kv...) }
}

type config struct {
	validity uint
	env      []string
}

// Start runs Pebble validating HTTP-01 on httpPort and TLS-ALPN-01 on tlsPort
// of 127.0.0.1, and stops it when the test ends. Without the binaries the test
// is skipped, unless CI is set: there they must be installed.
func Start(t testing.TB, httpPort, tlsPort int, opts ...Option) *CA {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (apt-get install pebble): %v", bin, err)
			}
			t.Skipf("%s is not installed (apt-get install pebble); skipping the ACME test", bin)
		}
	}

	dir := t.TempDir()
	roots, certFile, keyFile := apiCertificate(t, dir)
	ca := &CA{apiRoots: roots, APIRootFile: filepath.Join(dir, "api-ca.crt")}
	t.Cleanup(ca.Stop)

	// Free ports are picked by binding and closing, so another process can
	// take one before Pebble binds it: try again with new ports when a
	// process exits early.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		lastErr = ca.start(t, dir, certFile, keyFile, httpPort, tlsPort, cfg)
		if lastErr == nil {
			return ca
		}
		ca.Stop()
		ca.stopOnce = sync.Once{}
	}
	t.Fatalf("pebble did not start: %v", lastErr)
	return nil
}

func (ca *CA) start(t testing.TB, dir, certFile, keyFile string, httpPort, tlsPort int, cfg config) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	api, mgmt, dns, dnsMgmt := ports[0], ports[1], ports[2], ports[3]

	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  addr(api),
		"managementListenAddress":        addr(mgmt),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      cfg.validity,
	}}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	confFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		return err
	}

	// This challtestsrv (2.4.0) has no -doh flag; its own challenge servers
	// are switched off because the code under test answers the challenges.
	srv, err := startProcess(t, "pebble-challtestsrv", nil,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dns01", addr(dns), "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", addr(dnsMgmt))
	if err != nil {
		return err
	}
	ca.procs = append(ca.procs, srv)
	if err := waitFor(srv, func() bool {
		res, err := http.Get("http://" + addr(dnsMgmt) + "/")
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	}); err != nil {
		return err
	}

	// PEBBLE_VA_NOSLEEP: Pebble otherwise waits up to 15 s before each validation.
	peb, err := startProcess(t, "pebble", append([]string{"PEBBLE_VA_NOSLEEP=1"}, cfg.env...),
		"-config", confFile, "-dnsserver", addr(dns))
	if err != nil {
		return err
	}
	ca.procs = append(ca.procs, peb)
	ca.DirectoryURL = "https://" + addr(api) + "/dir"
	ca.ManagementURL = "https://" + addr(mgmt)
	client := ca.HTTPClient()
	return waitFor(peb, func() bool {
		res, err := client.Get(ca.DirectoryURL)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// HTTPClient returns a client that trusts Pebble's API (and management)
// listener and nothing else.
func (ca *CA) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.apiRoots},
			// Each Pebble is gone when its test ends; keep no idle
			// connections to it.
			DisableKeepAlives: true,
		},
	}
}

// Roots returns the root that signs the certificates this Pebble issues
// (it makes a new one each start).
func (ca *CA) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	res, err := ca.HTTPClient().Get(ca.ManagementURL + "/roots/0")
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("pebble's root: %s %v", res.Status, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root is not PEM: %q", b)
	}
	return pool
}

// Stop kills Pebble and its challenge server and waits for them; the
// directory then refuses connections. Start registers it with t.Cleanup.
func (ca *CA) Stop() {
	ca.stopOnce.Do(func() {
		for i := len(ca.procs) - 1; i >= 0; i-- {
			ca.procs[i].stop()
		}
		ca.procs = nil
	})
}

type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startProcess(t testing.TB, name string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	// Registered after the CA's Stop, so it runs first: a failed test shows
	// what Pebble said.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return p, nil
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, bytes.TrimSpace([]byte(p.out.String())))
	default:
		return nil
	}
}

func waitFor(p *process, ready func() bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		if ready() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within 15 s: %s", p.name, p.out.String())
}

// freePorts returns n loopback ports free for both TCP and UDP (the DNS
// server listens on both).
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", addr(port))
		if err != nil {
			continue
		}
		held = append(held, u)
		ports = append(ports, port)
	}
	return ports, nil
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// apiCertificate makes a CA and, signed by it, a certificate for 127.0.0.1 and
// localhost, writes the leaf and its key into dir, and returns a pool with
// the CA.
func apiCertificate(t testing.TB, dir string) (roots *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebbletest API CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, "api.crt")
	keyFile = filepath.Join(dir, "api.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "api-ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return roots, certFile, keyFile
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
