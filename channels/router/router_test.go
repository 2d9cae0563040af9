package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
)

// backends are HTTP servers on loopback standing in for instances: the
// dialer reaches the one named by the instance.
type backends map[string]*httptest.Server

func (b backends) dial(ctx context.Context, instance string, port int) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", b[instance].Listener.Addr().String())
}

func newBackends(t *testing.T, names ...string) backends {
	b := backends{}
	for _, name := range names {
		name := name
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := r.URL.Query().Get("sleep"); d != "" {
				wait, _ := time.ParseDuration(d)
				time.Sleep(wait)
			}
			io.WriteString(w, "from "+name)
		}))
		t.Cleanup(srv.Close)
		b[name] = srv
	}
	return b
}

// get asks px for host's path and returns the status and body.
func get(px *proxy.Proxy, host, path string) (int, string) {
	rec := httptest.NewRecorder()
	px.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+host+path, nil))
	return rec.Code, rec.Body.String()
}

func TestTableRoutesAndKeepsItsStateAcrossARestart(t *testing.T) {
	b := newBackends(t, "web-1", "web-2")
	state := filepath.Join(t.TempDir(), "routes.json")
	ctx := context.Background()
	px := proxy.New(nil)
	tbl, err := Open(px, b.dial, state)
	if err != nil {
		t.Fatal(err)
	}
	tbl.AddHost(ctx, "a.test")
	if code, _ := get(px, "a.test", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("a known host without an instance: %d, want 503", code)
	}
	if old, err := tbl.Route(ctx, "A.test.", "web-1", 80); err != nil || old != "" {
		t.Fatalf("route: %q %v", old, err)
	}
	if old, _ := tbl.Route(ctx, "a.test", "web-2", 80); old != "web-1" {
		t.Errorf("the second route replaced %q, want web-1", old)
	}
	if err := tbl.Drain(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	tbl.Route(ctx, "b.test", "web-1", 80)
	tbl.Maintenance(ctx, "b.test", true, "back soon")

	// A new process: a fresh proxy and table from the same file.
	px2 := proxy.New(nil)
	if _, err := Open(px2, b.dial, state); err != nil {
		t.Fatal(err)
	}
	if code, body := get(px2, "a.test", "/"); code != 200 || body != "from web-2" {
		t.Errorf("after a restart a.test answers %d %q", code, body)
	}
	if code, body := get(px2, "b.test", "/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "back soon") {
		t.Errorf("after a restart b.test answers %d %q, want its maintenance page", code, body)
	}
	entries, _ := os.ReadDir(filepath.Dir(state))
	if len(entries) != 1 {
		t.Errorf("the state dir holds %d files, want the state file alone", len(entries))
	}
}

func TestABrokenStateFileIsRefusedWithItsPath(t *testing.T) {
	state := filepath.Join(t.TempDir(), "routes.json")
	os.WriteFile(state, []byte("{not json"), 0o600)
	_, err := Open(proxy.New(nil), nil, state)
	if err == nil || !strings.Contains(err.Error(), state) {
		t.Fatalf("err = %v, want one naming %s", err, state)
	}
}

// serve runs a control server for a table over a unix socket in a temp dir.
func serve(t *testing.T, b backends) (*proxy.Proxy, *Client, *Server) {
	t.Helper()
	px := proxy.New(nil)
	tbl, err := Open(px, b.dial, "")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(tbl, Hello{PID: os.Getpid(), Addr: "127.0.0.1:1"}, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { ln.Close(); srv.CloseWatches() })
	return px, NewClient(sock), srv
}

func TestClientDrivesTheTableOverItsSocket(t *testing.T) {
	b := newBackends(t, "web-1", "web-2")
	px, c, _ := serve(t, b)
	ctx := context.Background()
	if h, err := c.Hello(ctx); err != nil || h.PID != os.Getpid() {
		t.Fatalf("hello: %+v %v", h, err)
	}
	if _, err := c.Route(ctx, "a.test", "web-1", 80); err != nil {
		t.Fatal(err)
	}
	if _, body := get(px, "a.test", "/"); body != "from web-1" {
		t.Errorf("a.test answers %q", body)
	}
	if _, err := c.Route(ctx, "a.test", "", 80); err == nil {
		t.Error("a route to no instance was taken")
	}

	// A request in flight on web-1 holds its drain.
	done := make(chan string)
	go func() { _, body := get(px, "a.test", "/?sleep=300ms"); done <- body }()
	time.Sleep(50 * time.Millisecond)
	if old, _ := c.Route(ctx, "a.test", "web-2", 80); old != "web-1" {
		t.Fatalf("replaced %q", old)
	}
	start := time.Now()
	if err := c.Drain(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("drain returned after %s, with a request still in flight", waited)
	}
	if body := <-done; body != "from web-1" {
		t.Errorf("the request in flight got %q", body)
	}
	routes, err := c.Routes(ctx)
	if err != nil || len(routes) != 1 || routes[0].Instance != "web-2" {
		t.Errorf("routes: %+v %v", routes, err)
	}
	if old, err := c.RemoveHost(ctx, "a.test"); err != nil || old != "web-2" {
		t.Errorf("remove: %q %v", old, err)
	}
	if code, _ := get(px, "a.test", "/"); code != http.StatusNotFound {
		t.Errorf("a removed host answers %d", code)
	}
}

func TestWatchEndsWhenTheProxyGoes(t *testing.T) {
	_, c, srv := serve(t, newBackends(t))
	gone, hello, err := c.Watch(context.Background())
	if err != nil || hello.Addr != "127.0.0.1:1" {
		t.Fatalf("watch: %+v %v", hello, err)
	}
	select {
	case <-gone:
		t.Fatal("the watch ended with the proxy still there")
	case <-time.After(50 * time.Millisecond):
	}
	srv.CloseWatches()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end")
	}
}

func TestNoProxyIsSaidSo(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	if _, err := c.Hello(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("err = %v", err)
	}
}
