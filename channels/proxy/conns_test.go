package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countConns starts handler as a backend and counts the connections the proxy opens to it.
func countConns(t *testing.T, handler http.Handler) (*Upstream, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return NewUpstream("app", dialServer(srv)), &n
}

func TestKeepAliveToUpstream(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		up, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/empty":
				w.WriteHeader(http.StatusNoContent)
			default:
				io.WriteString(w, "hello "+r.Method)
			}
		}))
		p.Swap("app.test", up)
		for i := range 20 {
			method, path, want := http.MethodGet, "/", "hello GET"
			switch i % 4 {
			case 1:
				method, want = http.MethodHead, ""
			case 2:
				path, want = "/empty", ""
			}
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			req.Host = "app.test"
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(body) != want {
				t.Fatalf("%s %s: %d %q, want %q", method, path, res.StatusCode, body, want)
			}
		}
		if n := conns.Load(); n != 1 {
			t.Fatalf("%d connections to the upstream for 20 sequential requests, want 1", n)
		}
	})
}

// An app that closes a kept-alive connection while it is idle (without saying
// "Connection: close") costs the next request nothing: it is sent again on a new one.
func TestUpstreamClosesIdleConnection(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		up, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			buf.Flush()
			go func() {
				time.Sleep(20 * time.Millisecond)
				conn.Close()
			}()
		}))
		p.Swap("app.test", up)
		for range 5 {
			expect(t, get(t, srv, "app.test"), http.StatusOK, "ok")
			time.Sleep(50 * time.Millisecond)
		}
		if s := p.Stats(); s.UpstreamErrors != 0 {
			t.Fatalf("stats %+v, want no upstream error", s)
		}
		if n := conns.Load(); n != 5 {
			t.Fatalf("%d connections, want 5 (one per request, each closed by the app)", n)
		}
	})
}

// A client that goes away in the middle of a large body releases the upstream, whose
// connection is closed rather than reused half-read.
func TestClientGoneMidBody(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		chunk := strings.Repeat("x", 64<<10)
		up, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/small" {
				io.WriteString(w, "small")
				return
			}
			for range 1000 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}))
		p.Swap("app.test", up)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/big", nil)
		req.Host = "app.test"
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(res.Body, make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
		cancel()
		res.Body.Close()
		deadline := time.Now().Add(5 * time.Second)
		for up.InFlight() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := up.InFlight(); n != 0 {
			t.Fatalf("%d requests still hold the upstream after the client left", n)
		}
		req, _ = http.NewRequest(http.MethodGet, srv.URL+"/small", nil)
		req.Host = "app.test"
		res, err = srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "small" {
			t.Fatalf("after a client left mid-body: %q", body)
		}
		if n := conns.Load(); n != 2 {
			t.Fatalf("%d connections to the upstream, want 2: the half-read one must not be reused", n)
		}
		drain(t, up)
	})
}

// A protocol upgrade (WebSocket) is passed through both ways.
func TestUpgradePassesThrough(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "no upgrade", http.StatusBadRequest)
				return
			}
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			buf.Flush()
			line, _ := buf.ReadString('\n')
			fmt.Fprintf(conn, "echo: %s", line)
		}))
		p.Swap("app.test", up)
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", res, err)
		}
		io.WriteString(conn, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo: ping\n" {
			t.Fatalf("through the upgraded connection: %q %v", line, err)
		}
	})
}
