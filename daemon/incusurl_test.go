package daemon_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientCert writes a self-signed client certificate and its key to dir.
func clientCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

func incusCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("incus", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("incus %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// httpsIncus has the host's incusd listen on a loopback port for the test,
// and puts back what it listened on before.
func httpsIncus(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	before := incusCLI(t, "config", "get", "core.https_address")
	if before != "" {
		return "https://" + before // already listening: use it as it is
	}
	incusCLI(t, "config", "set", "core.https_address", addr)
	t.Cleanup(func() { exec.Command("incus", "config", "unset", "core.https_address").Run() })
	return "https://" + addr
}

func TestTheDaemonDrivesIncusOverHTTPS(t *testing.T) {
	requireIntegration(t)
	dir := t.TempDir()
	url := httpsIncus(t)
	cert, key := clientCert(t, dir, "slipway-test-"+randomHex(4))
	name := filepath.Base(strings.TrimSuffix(cert, ".crt"))
	incusCLI(t, "config", "trust", "add-certificate", cert, "--name", name)
	t.Cleanup(func() {
		out := incusCLI(t, "config", "trust", "list", "--format", "csv", "-c", "nf")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Split(line, ","); len(f) == 2 && f[0] == name {
				exec.Command("incus", "config", "trust", "remove", f[1]).Run()
			}
		}
	})
	serverCert := "/var/lib/incus/server.crt"

	// A certificate the server does not trust: the daemon says so and stops.
	untrusted, untrustedKey := clientCert(t, dir, "stranger")
	cmd := exec.Command(slipwayBin, "serve", "--data", filepath.Join(dir, "refused"), "--incus-url", url,
		"--incus-cert", untrusted, "--incus-key", untrustedKey, "--incus-server-cert", serverCert,
		"--ssh-addr", "127.0.0.1:0", "--web-addr", "127.0.0.1:0", "--proxy-addr", "127.0.0.1:0", "--https-addr", "", "--metrics-addr", "off")
	cmd.Env = append(os.Environ(), "INCUS_SOCKET="+filepath.Join(dir, "no-such.socket"))
	out, err := runFor(cmd, 30*time.Second)
	if err == nil || !strings.Contains(out, "does not trust --incus-cert") {
		t.Fatalf("serve with an untrusted certificate: %v\n%s", err, out)
	}

	// No unix socket: the daemon and the proxy process it starts reach
	// incusd over HTTPS or not at all.
	noSocket := "INCUS_SOCKET=" + filepath.Join(dir, "no-such.socket")
	d := startDaemonOpts(t, []string{"--incus-url", url, "--incus-cert", cert, "--incus-key", key, "--incus-server-cert", serverCert}, []string{noSocket})
	host := d.setupApp("remote")
	w := d.newApp("remote", "static")
	w.commitFile("slipway.yml", staticManifest, "manifest")
	w.commitFile("public/index.html", "over https\n", "first")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, "over https")
	if got := d.instances(); len(got) != 1 {
		t.Fatalf("instances in the project: %v", got)
	}
}

// runFor runs cmd, killing it after d, and returns its output.
func runFor(cmd *exec.Cmd, d time.Duration) (string, error) {
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return b.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return b.String(), nil // still running: not refused
	}
}
