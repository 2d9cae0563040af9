package proxy

// Test helpers, as kamal-proxy keeps them in testing.go; named _test.go so they stay out
// of the daemon binary.

import (
	"context"
	"errors"
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

// front is where clients reach a proxy under test: a net/http server with the proxy as
// its Handler, or the proxy's own Serve.
type front struct {
	URL    string // http://ADDR
	Addr   string
	client *http.Client
}

func (f *front) Client() *http.Client { return f.client }

// fronts are the two ways to serve a proxy; most scenarios run through both (eachFront).
var fronts = []struct {
	name  string
	start func(testing.TB, *Proxy) *front
}{
	{"handler", handlerFront},
	{"serve", serveFront},
}

// eachFront runs test as a subtest for each front, with a new proxy.
func eachFront(t *testing.T, test func(t *testing.T, p *Proxy, srv *front)) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			p := New(testLogger(t))
			test(t, p, f.start(t, p))
		})
	}
}

// testProxy starts a proxy served by Serve on 127.0.0.1.
func testProxy(t testing.TB) (*Proxy, *front) {
	t.Helper()
	p := New(testLogger(t))
	return p, serveFront(t, p)
}

// handlerFront serves p with net/http, p being its Handler.
func handlerFront(t testing.TB, p *Proxy) *front {
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return &front{URL: srv.URL, Addr: srv.Listener.Addr().String(), client: srv.Client()}
}

// serveFront serves p with Serve on 127.0.0.1; p is closed when the test ends.
func serveFront(t testing.TB, p *Proxy) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		p.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	addr := ln.Addr().String()
	return &front{URL: "http://" + addr, Addr: addr, client: client}
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
func send(t testing.TB, client *http.Client, srv *front, method, host, body string) (testResponse, error) {
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
func get(t testing.TB, srv *front, host string) testResponse {
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
