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
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/agent"
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
	t.Cleanup(func() { removeTrust(t, name) })
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

// A daemon that drives a lone incusd on another host reaches its instances
// through the slipway proxy there, the host's agent. "Another host" here is
// a PID and mount namespace of this one: the daemon cannot see the
// instances' processes, as from another machine, and reaches incusd only
// over HTTPS.
func TestTheDaemonDrivesARemoteIncusThroughItsAgent(t *testing.T) {
	requireIntegration(t)
	dir := t.TempDir()
	url := httpsIncus(t)
	cert, key := clientCert(t, dir, "slipway-test-"+randomHex(4))
	name := filepath.Base(strings.TrimSuffix(cert, ".crt"))
	incusCLI(t, "config", "trust", "add-certificate", cert, "--name", name)
	t.Cleanup(func() { removeTrust(t, name) })

	// The pair every side presents, put where each looks for it.
	pairCert, pairKey, err := agent.Generate()
	if err != nil {
		t.Fatal(err)
	}
	hostData, daemonDir := filepath.Join(dir, "incus-host"), filepath.Join(dir, "elsewhere")
	os.MkdirAll(daemonDir, 0o700)
	for _, data := range []string{hostData, filepath.Join(daemonDir, "data")} {
		os.MkdirAll(filepath.Join(data, "agent"), 0o700)
		os.WriteFile(filepath.Join(data, "agent", "agent.crt"), pairCert, 0o600)
		os.WriteFile(filepath.Join(data, "agent", "agent.key"), pairKey, 0o600)
	}
	agentAddr := freeAddr(t)
	wrapper := filepath.Join(dir, "elsewhere.sh")
	os.WriteFile(wrapper, []byte("#!/bin/sh\nexec unshare --pid --fork --mount-proc --kill-child=SIGTERM "+slipwayBin+` "$@"`+"\n"), 0o755)
	d := startDaemonIn(t, daemonDir, wrapper, []string{"--incus-url", url, "--incus-cert", cert, "--incus-key", key,
		"--incus-server-cert", "/var/lib/incus/server.crt", "--agent-addr", agentAddr},
		[]string{"INCUS_SOCKET=" + filepath.Join(dir, "no-such.socket")})
	// unshare's parent ignores SIGTERM while it waits: the daemon, its child,
	// gets it through the process group, before the harness stops it.
	t.Cleanup(func() { syscall.Kill(-d.proc.PID(), syscall.SIGTERM) })
	agentProxy := exec.Command(slipwayBin, "proxy", "--data", hostData, "--incus-project", d.project,
		"--proxy-addr", "127.0.0.1:0", "--https-addr", "", "--agent-addr", agentAddr)
	var agentLog strings.Builder
	agentProxy.Stdout, agentProxy.Stderr = &agentLog, &agentLog
	if err := agentProxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agentProxy.Process.Kill(); agentProxy.Wait() })
	eventually(t, 20*time.Second, "the Incus host's agent listens", func() (bool, string) {
		c, err := net.Dial("tcp", agentAddr)
		if err == nil {
			c.Close()
		}
		return err == nil, agentLog.String()
	})
	host, _ := d.deployed("far", "from afar\n")
	d.serves(host, "from afar")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func removeTrust(t *testing.T, name string) {
	out := incusCLI(t, "config", "trust", "list", "--format", "csv", "-c", "nf")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ","); len(f) == 2 && f[0] == name {
			exec.Command("incus", "config", "trust", "remove", f[1]).Run()
		}
	}
}
