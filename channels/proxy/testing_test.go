package proxy

// Test helpers, as kamal-proxy keeps them in testing.go; named _test.go so they stay out
// of the daemon binary.

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testProxy starts p behind a real HTTP server on 127.0.0.1.
func testProxy(t testing.TB) (*Proxy, *httptest.Server) {
	t.Helper()
	p := New(testLogger(t))
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// testBackend starts handler as a real HTTP server on 127.0.0.1 and returns it with an
// Upstream that dials it, as the daemon dials a container.
func testBackend(t testing.TB, name string, handler http.Handler) (*httptest.Server, *Upstream) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv, NewUpstream(name, dialServer(srv))
}

func dialServer(srv *httptest.Server) DialFunc {
	addr := srv.Listener.Addr().String()
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// nameHandler answers every request with name.
func nameHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	})
}

type testResponse struct {
	status int
	header http.Header
	body   string
}

// send makes a request for host through the proxy server.
func send(t testing.TB, client *http.Client, srv *httptest.Server, method, host, body string) (testResponse, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := client.Do(req)
	if err != nil {
		return testResponse{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return testResponse{}, err
	}
	return testResponse{status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

// get sends a GET for host and fails the test if no response arrives.
func get(t testing.TB, srv *httptest.Server, host string) testResponse {
	t.Helper()
	res, err := send(t, srv.Client(), srv, http.MethodGet, host, "")
	if err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	return res
}

func expect(t testing.TB, res testResponse, status int, body string) {
	t.Helper()
	if res.status != status || res.body != body {
		t.Fatalf("got %d %q, want %d %q", res.status, res.body, status, body)
	}
}

func drain(t testing.TB, up *Upstream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := up.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}
