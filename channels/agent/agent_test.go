package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// echoes is a member whose instances echo what they get, prefixed with
// which door was used.
type echoes struct{ dials chan string }

func (e echoes) serve(prefix string) (net.Conn, error) {
	a, b := net.Pipe()
	go func() {
		defer b.Close()
		buf := make([]byte, 1024)
		n, err := b.Read(buf)
		if err != nil {
			return
		}
		fmt.Fprintf(b, "%s:%s", prefix, buf[:n])
	}()
	return a, nil
}

func (e echoes) DialSupervisor(_ context.Context, name string) (net.Conn, error) {
	e.dials <- "supervisor " + name
	return e.serve("supervisor of " + name)
}

func (e echoes) Dial(_ context.Context, name string, port int) (net.Conn, error) {
	if name == "gone" {
		return nil, errors.New("instance gone is not running")
	}
	e.dials <- fmt.Sprintf("app %s %d", name, port)
	return e.serve(fmt.Sprintf("%s:%d", name, port))
}

func startAgent(t *testing.T, cert tls.Certificate) (string, echoes) {
	t.Helper()
	cfg, err := Pinned(cert)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := echoes{dials: make(chan string, 10)}
	srv := NewServer(local, cfg, nil)
	done := make(chan error)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), local
}

func roundTrip(t *testing.T, conn net.Conn, msg string) string {
	t.Helper()
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAgentRelaysToTheInstancesOfItsMember(t *testing.T) {
	cert := testCert(t)
	addr, local := startAgent(t, cert)
	cfg, _ := Pinned(cert)
	c := NewClient(addr, cfg)
	ctx := context.Background()

	conn, err := c.Dial(ctx, "web-1", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, conn, "GET /"); got != "web-1:5000:GET /" || <-local.dials != "app web-1 5000" {
		t.Fatalf("app relay: %q", got)
	}
	conn, err = c.DialSupervisor(ctx, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, conn, "status"); got != "supervisor of web-1:status" {
		t.Fatalf("supervisor relay: %q", got)
	}
	if _, err := c.Dial(ctx, "gone", 5000); err == nil || !strings.Contains(err.Error(), "instance gone is not running") {
		t.Fatalf("a failed dial on the member: %v", err)
	}
}

func TestAgentRefusesAnotherCertificate(t *testing.T) {
	addr, local := startAgent(t, testCert(t))
	stranger, _ := Pinned(testCert(t))
	_, err := NewClient(addr, stranger).Dial(context.Background(), "web-1", 5000)
	if err == nil {
		t.Fatal("a client with another certificate got through")
	}
	select {
	case d := <-local.dials:
		t.Fatalf("the agent dialled %s for a stranger", d)
	default:
	}
	// Nor does a client accept an agent with another certificate.
	cfg, _ := Pinned(testCert(t))
	if _, err := NewClient(addr, cfg).DialSupervisor(context.Background(), "web-1"); err == nil {
		t.Fatal("accepted an agent presenting another certificate")
	}
}

func TestAgentAnswersGarbageWithAReason(t *testing.T) {
	cert := testCert(t)
	addr, _ := startAgent(t, cert)
	cfg, _ := Pinned(cert)
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("{not json\n"))
	line, err := readLine(conn)
	if err != nil || !strings.Contains(string(line), "not a request") {
		t.Fatalf("answer to garbage: %q %v", line, err)
	}
	conn2, _ := tls.Dial("tcp", addr, cfg)
	defer conn2.Close()
	conn2.Write([]byte(`{"op":"exec","instance":"x"}` + "\n"))
	if line, _ := readLine(conn2); !strings.Contains(string(line), `unknown op \"exec\"`) {
		t.Fatalf("answer to an unknown op: %q", line)
	}
	c := NewClient(addr, cfg)
	for _, bad := range []string{"../../etc", "a/b", "", "-x", strings.Repeat("a", 64)} {
		if _, err := c.DialSupervisor(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "is not an instance name") {
			t.Errorf("instance %q: %v", bad, err)
		}
	}
	if _, err := c.Dial(context.Background(), "web-1", 70000); err == nil || !strings.Contains(err.Error(), "is not a port") {
		t.Errorf("port 70000: %v", err)
	}
}

func TestLoadOrCreateKeepsItsPair(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir)
	if err != nil || string(a.Certificate[0]) != string(b.Certificate[0]) {
		t.Fatalf("a second load made another pair: %v", err)
	}
	_, key := CertFiles(dir)
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	os.WriteFile(key, []byte("garbage"), 0o600)
	if _, err := LoadOrCreate(dir); err == nil {
		t.Fatal("a broken pair was replaced or accepted silently")
	}
}
