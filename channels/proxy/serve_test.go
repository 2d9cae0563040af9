package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Scenarios for Serve's fast path and its hand-off to net/http, spoken over raw
// connections so that what goes over the wire is what the test says.

// dialFront opens a client connection to srv; every read and write must be done within
// 5 seconds.
func dialFront(t *testing.T, srv *front) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return conn, bufio.NewReader(conn)
}

func write(t *testing.T, conn net.Conn, raw string) {
	t.Helper()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
}

// readResponse reads one response (to a request with method) and its body.
func readResponse(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body of %d: %v", res.StatusCode, err)
	}
	return res, string(body)
}

func expectClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection still open: read %q, %v", b, err)
	}
}

// fastConns is the number of client connections on p's fast path (not handed off).
func fastConns(p *Proxy) int {
	p.front.mu.Lock()
	defer p.front.mu.Unlock()
	return len(p.front.conns)
}

// echoHandler answers with the method, path and body it got.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
})

func TestServeKeepAlive(t *testing.T) {
	p, srv := testProxy(t)
	up, conns := countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/empty" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.RequestURI())
	}))
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	for i := range 12 {
		method, target, status, want := "GET", fmt.Sprintf("/%d?x=%%41", i), 200, fmt.Sprintf("GET /%d?x=%%41", i)
		switch i % 4 {
		case 1:
			method, want = "HEAD", ""
		case 2:
			method, want = "OPTIONS", "OPTIONS "+target
		case 3:
			target, status, want = "/empty", 204, ""
		}
		write(t, conn, method+" "+target+" HTTP/1.1\r\nHost: app.test\r\n\r\n")
		res, body := readResponse(t, br, method)
		if res.StatusCode != status || body != want || res.Close {
			t.Fatalf("%s %s: %d %q (close %v), want %d %q", method, target, res.StatusCode, body, res.Close, status, want)
		}
		if method == "HEAD" && res.ContentLength != int64(len("HEAD "+target)) {
			t.Fatalf("HEAD: Content-Length %d", res.ContentLength)
		}
		if res.Header.Get("Date") == "" {
			t.Fatal("no Date")
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections to the upstream, want 1", n)
	}
	if n := fastConns(p); n != 1 {
		t.Fatalf("%d connections on the fast path, want 1 (not handed off)", n)
	}
	if s := p.Stats(); s.Requests != 12 {
		t.Fatalf("stats %+v, want 12 requests", s)
	}
}

func TestServePipelining(t *testing.T) {
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", echoHandler)
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	// All in one write; the last one (a body) goes to net/http, after the others.
	write(t, conn, "GET /1 HTTP/1.1\r\nHost: app.test\r\n\r\n"+
		"HEAD /2 HTTP/1.1\r\nHost: app.test\r\n\r\n"+
		"GET /3 HTTP/1.1\r\nHost: app.test\r\n\r\n"+
		"POST /4 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody"+
		"GET /5 HTTP/1.1\r\nHost: app.test\r\n\r\n")
	for _, want := range []struct{ method, body string }{
		{"GET", "GET /1 "}, {"HEAD", ""}, {"GET", "GET /3 "}, {"POST", "POST /4 body"}, {"GET", "GET /5 "},
	} {
		res, body := readResponse(t, br, want.method)
		if res.StatusCode != 200 || body != want.body {
			t.Fatalf("got %d %q, want %q", res.StatusCode, body, want.body)
		}
	}
}

// A response is relayed as the app writes it: an event does not wait for the next.
func TestServeStreamsResponses(t *testing.T) {
	for name, length := range map[string]string{"chunked": "", "with length": "27"} {
		t.Run(name, func(t *testing.T) {
			p, srv := testProxy(t)
			next := make(chan struct{})
			_, up := testBackend(t, "stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				if length != "" {
					w.Header().Set("Content-Length", length)
				} else {
					w.Header().Set("Trailer", "X-Count")
				}
				io.WriteString(w, "data: first\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-next:
				case <-time.After(5 * time.Second):
				}
				io.WriteString(w, "data: second\n\n")
				w.Header().Set("X-Count", "2")
			}))
			p.Swap("app.test", up)
			conn, br := dialFront(t, srv)
			for range 2 { // the connection goes on after the body
				write(t, conn, "GET /events HTTP/1.1\r\nHost: app.test\r\n\r\n")
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if chunked := slices.Equal(res.TransferEncoding, []string{"chunked"}); chunked != (length == "") {
					t.Fatalf("Transfer-Encoding %v, Content-Length %d", res.TransferEncoding, res.ContentLength)
				}
				first := make([]byte, len("data: first\n\n"))
				if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "data: first\n\n" {
					t.Fatalf("first event: %q %v (held back until the second?)", first, err)
				}
				next <- struct{}{}
				rest, err := io.ReadAll(res.Body)
				if err != nil || string(rest) != "data: second\n\n" {
					t.Fatalf("second event: %q %v", rest, err)
				}
				if got := res.Trailer.Get("X-Count"); length == "" && got != "2" {
					t.Fatalf("trailer X-Count %q", got)
				}
			}
		})
	}
}

// hijacked starts a backend that answers every request with raw, as it is, and then
// closes the connection if closeAfter.
func hijacked(t *testing.T, raw string, closeAfter bool) (*Upstream, *atomic.Int64) {
	return countConns(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString(raw)
		buf.Flush()
		if closeAfter {
			conn.Close()
			return
		}
		// Serve the connection's next requests the same way.
		go func() {
			defer conn.Close()
			for {
				req, err := http.ReadRequest(buf.Reader)
				if err != nil {
					return
				}
				req.Body.Close()
				buf.WriteString(raw)
				buf.Flush()
			}
		}()
	}))
}

func TestServeCloseDelimitedResponse(t *testing.T) {
	p, srv := testProxy(t)
	up, conns := hijacked(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true)
	p.Swap("app.test", up)
	for range 2 {
		conn, br := dialFront(t, srv)
		write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
		res, body := readResponse(t, br, "GET")
		if res.StatusCode != 200 || body != "until the end" || !res.Close {
			t.Fatalf("got %d %q close %v", res.StatusCode, body, res.Close)
		}
		expectClosed(t, br)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections, want 2", n)
	}
}

func TestServeRelaysInformationalResponses(t *testing.T) {
	t.Run("103", func(t *testing.T) {
		p, srv := testProxy(t)
		_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
		}))
		p.Swap("app.test", up)
		conn, br := dialFront(t, srv)
		write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
		res, _ := readResponse(t, br, "GET")
		if res.StatusCode != http.StatusEarlyHints || res.Header.Get("Link") != "</style.css>; rel=preload" {
			t.Fatalf("got %d %v, want 103 with Link", res.StatusCode, res.Header)
		}
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "page" {
			t.Fatalf("after 103: %d %q", res.StatusCode, body)
		}
	})
	t.Run("100", func(t *testing.T) {
		p, srv := testProxy(t)
		up, _ := hijacked(t, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
		p.Swap("app.test", up)
		conn, br := dialFront(t, srv)
		for range 2 {
			write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
			if res, _ := readResponse(t, br, "GET"); res.StatusCode != 100 {
				t.Fatalf("got %d, want 100", res.StatusCode)
			}
			if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "ok" {
				t.Fatalf("after 100: %d %q", res.StatusCode, body)
			}
		}
	})
}

func TestServeUpstreamConnectionClose(t *testing.T) {
	p, srv := testProxy(t)
	// The app says close but would answer more: the proxy must not try.
	up, conns := hijacked(t, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", false)
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	for range 3 {
		write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
		res, body := readResponse(t, br, "GET")
		if res.StatusCode != 200 || body != "bye" || res.Close {
			t.Fatalf("got %d %q close %v: the upstream's Connection is not the client's", res.StatusCode, body, res.Close)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d upstream connections, want 3 (each closed by the app)", n)
	}
}

func TestServeClientConnectionClose(t *testing.T) {
	p, srv := testProxy(t)
	up, conns := countConns(t, nameHandler("app"))
	p.Swap("app.test", up)
	for range 2 {
		conn, br := dialFront(t, srv)
		write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
		res, body := readResponse(t, br, "GET")
		if res.StatusCode != 200 || body != "app" || !res.Close {
			t.Fatalf("got %d %q close %v", res.StatusCode, body, res.Close)
		}
		expectClosed(t, br)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections, want 1: the client's Connection is not the upstream's", n)
	}
}

// The fast path sends the upstream what the handler path sends, and gives the client
// what the handler path gives, hop-by-hop fields removed both ways.
func TestServeForwardsLikeHandler(t *testing.T) {
	const request = "GET /path?q=1&r=%41 HTTP/1.1\r\n" +
		"Host: App.Test:8080\r\n" +
		"User-Agent: test\r\n" +
		"Connection: keep-alive, X-Named, Host\r\n" +
		"X-Named: dropped\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
		"TE: trailers, deflate\r\n" +
		"Trailer: X-Whatever\r\n" +
		"Forwarded: for=6.6.6.6\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\n" +
		"X-Forwarded-Host: evil.test\r\n" +
		"X-Forwarded-Proto: https\r\n" +
		"X_Forwarded_For: 7.7.7.7\r\n" +
		"Pragma: no-cache\r\n" +
		"Content-Length: 0\r\n" +
		"x-lower-case: kept\r\n" +
		"Cookie: a=1\r\n" +
		"Cookie: b=2\r\n" +
		"\r\n"
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Bar")
		h.Set("X-Bar", "dropped")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "nothing")
		h.Set("Te", "trailers")
		h.Set("X-Kept", "yes")
		h.Set("Content-Type", "text/plain")
		h.Set("Date", "Tue, 10 Nov 2009 23:00:00 GMT")
		fmt.Fprintf(w, "%s %s %s %d\n", r.Method, r.RequestURI, r.Host, r.ContentLength)
		var lines []string
		for k, vs := range r.Header {
			lines = append(lines, k+": "+strings.Join(vs, " | "))
		}
		slices.Sort(lines)
		io.WriteString(w, strings.Join(lines, "\n"))
	}))

	type result struct {
		header http.Header
		body   string
	}
	var results []result
	for _, f := range fronts {
		p := New(testLogger(t))
		p.Swap("app.test", up)
		conn, br := dialFront(t, f.start(t, p))
		write(t, conn, request)
		res, body := readResponse(t, br, "GET")
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", f.name, res.StatusCode, body)
		}
		results = append(results, result{res.Header, body})
	}
	handler, serve := results[0], results[1]
	if handler.body != serve.body {
		t.Errorf("upstream got, from the handler path:\n%s\nfrom Serve:\n%s", handler.body, serve.body)
	}
	for _, want := range []string{"GET /path?q=1&r=%41 App.Test:8080 0\n", "X-Forwarded-For: 127.0.0.1", "X-Forwarded-Host: App.Test:8080",
		"X-Forwarded-Proto: http", "Te: trailers", "Cache-Control: no-cache", "X-Lower-Case: kept", "Cookie: a=1 | b=2"} {
		if !strings.Contains(serve.body, want) {
			t.Errorf("upstream did not get %q from Serve:\n%s", want, serve.body)
		}
	}
	for _, gone := range []string{"X-Named", "Keep-Alive", "Proxy-", "Trailer", "Forwarded:", "6.6.6.6", "7.7.7.7", "evil", "https", "Content-Length", "Connection"} {
		if strings.Contains(serve.body, gone) {
			t.Errorf("upstream got %q from Serve:\n%s", gone, serve.body)
		}
	}
	if !equalHeaders(handler.header, serve.header) {
		t.Errorf("client got, from the handler path:\n%v\nfrom Serve:\n%v", handler.header, serve.header)
	}
	if serve.header.Get("X-Kept") != "yes" || serve.header.Get("X-Bar") != "" || serve.header.Get("Keep-Alive") != "" {
		t.Errorf("client got %v", serve.header)
	}
}

// equalHeaders compares response fields, apart from those the proxy computes.
func equalHeaders(a, b http.Header) bool {
	a, b = a.Clone(), b.Clone()
	for _, h := range []http.Header{a, b} {
		h.Del("Content-Length")
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestServeRejectsMalformedRequests(t *testing.T) {
	p, srv := testProxy(t)
	up, conns := countConns(t, nameHandler("app"))
	p.Swap("app.test", up)
	for name, head := range map[string]string{
		"obs-fold":             "GET / HTTP/1.1\r\nHost: app.test\r\nX-A: 1\r\n folded\r\n\r\n",
		"tab fold":             "GET / HTTP/1.1\r\nHost: app.test\r\nX-A: 1\r\n\tfolded\r\n\r\n",
		"space before colon":   "GET / HTTP/1.1\r\nHost: app.test\r\nX-A : 1\r\n\r\n",
		"name not a token":     "GET / HTTP/1.1\r\nHost: app.test\r\nX(A): 1\r\n\r\n",
		"empty name":           "GET / HTTP/1.1\r\nHost: app.test\r\n: 1\r\n\r\n",
		"no colon":             "GET / HTTP/1.1\r\nHost: app.test\r\nX-A\r\n\r\n",
		"bare CR in value":     "GET / HTTP/1.1\r\nHost: app.test\r\nX-A: 1\r2\r\n\r\n",
		"NUL in value":         "GET / HTTP/1.1\r\nHost: app.test\r\nX-A: 1\x002\r\n\r\n",
		"DEL in value":         "GET / HTTP/1.1\r\nHost: app.test\r\nX-A: 1\x7f\r\n\r\n",
		"bare CR in host":      "GET / HTTP/1.1\r\nHost: app.test\rX-A: 1\r\n\r\n",
		"no Host":              "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
		"two Hosts":            "GET / HTTP/1.1\r\nHost: app.test\r\nhost: other.test\r\n\r\n",
		"no version":           "GET /\r\nHost: app.test\r\n\r\n",
		"two spaces":           "GET  / HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"bad version":          "GET / HTTP/1.1x\r\nHost: app.test\r\n\r\n",
		"method not a token":   "G(T / HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"control in target":    "GET /a\x01b HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"CR in request line":   "GET /a\rb HTTP/1.1\r\nHost: app.test\r\n\r\n",
		"smuggled second Host": "GET / HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn, br := dialFront(t, srv)
			write(t, conn, head)
			res, body := readResponse(t, br, "GET")
			if res.StatusCode != http.StatusBadRequest {
				t.Fatalf("got %d %q, want 400", res.StatusCode, body)
			}
			expectClosed(t, br)
		})
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections to the upstream: a malformed request went through", n)
	}
}

func TestServeLongHeads(t *testing.T) {
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, len(r.Header.Get("X-Big")))
	}))
	p.Swap("app.test", up)

	// Longer than the fast path takes: net/http serves it, as before.
	conn, br := dialFront(t, srv)
	big := strings.Repeat("b", 100<<10)
	write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: "+big+"\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != fmt.Sprint(len(big)) {
		t.Fatalf("100 KiB head: %d %q", res.StatusCode, body)
	}
	write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "0" {
		t.Fatalf("after a long head: %d %q", res.StatusCode, body)
	}

	// Longer than net/http takes.
	conn, br = dialFront(t, srv)
	go io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: "+strings.Repeat("b", 2<<20)+"\r\n\r\n")
	if res, _ := readResponse(t, br, "GET"); res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("2 MiB head: %d, want 431", res.StatusCode)
	}

	// Within the fast path's limit, but longer than its first buffer.
	conn, br = dialFront(t, srv)
	mid := strings.Repeat("m", 20<<10)
	for range 2 {
		write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: "+mid+"\r\n\r\n")
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != fmt.Sprint(len(mid)) {
			t.Fatalf("20 KiB head: %d %q", res.StatusCode, body)
		}
	}
	if n := fastConns(p); n != 1 {
		t.Fatalf("%d connections on the fast path, want 1", n)
	}
}

// What the fast path does not take goes to net/http, with the bytes already read, and
// the connection goes on there.
func TestServeHandsOff(t *testing.T) {
	for name, c := range map[string]struct{ request, method, body string }{
		"POST":           {"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 7\r\n\r\npayload", "POST", "POST /p payload"},
		"chunked POST":   {"POST /p HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\npay\r\n4\r\nload\r\n0\r\n\r\n", "POST", "POST /p payload"},
		"chunked GET":    {"GET /g HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", "GET", "GET /g body"},
		"GET with body":  {"GET /g HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\n\r\nbody", "GET", "GET /g body"},
		"Expect":         {"PUT /e HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx", "PUT", "PUT /e x"},
		"HTTP/1.0":       {"GET /old HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\n", "GET", "GET /old "},
		"absolute-form":  {"GET http://app.test/abs HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET", "GET /abs "},
		"DELETE":         {"DELETE /d HTTP/1.1\r\nHost: app.test\r\n\r\n", "DELETE", "DELETE /d "},
		"unusual target": {"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET", "GET /caf%C3%A9 "},
		// httputil drops a query it cannot parse.
		"query with ;":    {"GET /q?a=1;b=2 HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET", "GET /q "},
		"bare LF":         {"GET /lf HTTP/1.1\nHost: app.test\n\n", "GET", "GET /lf "},
		"Upgrade ignored": {"GET /u HTTP/1.1\r\nHost: app.test\r\nUpgrade: nothing\r\n\r\n", "GET", "GET /u "},
	} {
		t.Run(name, func(t *testing.T) {
			p, srv := testProxy(t)
			_, up := testBackend(t, "app", echoHandler)
			p.Swap("app.test", up)
			conn, br := dialFront(t, srv)
			write(t, conn, c.request)
			res, body := readResponse(t, br, c.method)
			for res.StatusCode == http.StatusContinue { // net/http's, and the app's relayed
				res, body = readResponse(t, br, c.method)
			}
			if res.StatusCode != 200 || body != c.body {
				t.Fatalf("got %d %q, want %q", res.StatusCode, body, c.body)
			}
			write(t, conn, "GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n")
			if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "GET /next " {
				t.Fatalf("next request: %d %q", res.StatusCode, body)
			}
			// The fast path lets go of the connection in a deferred step after
			// the hand-off: give it a moment, not a wrong answer.
			deadline := time.Now().Add(2 * time.Second)
			for fastConns(p) != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := fastConns(p); n != 0 {
				t.Fatalf("%d connections on the fast path, want 0 (handed off)", n)
			}
		})
	}
}

// Pages are ServeHTTP's: the connection is handed off to write them.
func TestServePages(t *testing.T) {
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", nameHandler("app"))
	p.Swap("app.test", up)
	p.AddHost("empty.test")
	p.Swap("down.test", up)
	p.SetMaintenance("down.test", "")
	conn, br := dialFront(t, srv)
	for _, c := range []struct {
		host   string
		status int
		body   string
	}{
		{"app.test", 200, "app"},
		{"unknown.test", 404, "no app is served at unknown.test\n"},
		{"empty.test", 503, "no instance is serving empty.test yet\n"},
		{"down.test", 503, "down.test is down for maintenance\n"},
		{"app.test", 200, "app"},
	} {
		write(t, conn, "GET / HTTP/1.1\r\nHost: "+c.host+"\r\n\r\n")
		if res, body := readResponse(t, br, "GET"); res.StatusCode != c.status || body != c.body {
			t.Fatalf("%s: %d %q, want %d %q", c.host, res.StatusCode, body, c.status, c.body)
		}
	}
}

func TestServeBadUpstreamResponse(t *testing.T) {
	for name, raw := range map[string]string{
		"space in name":      "HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok",
		"status":             "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
		"version":            "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"two lengths":        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
		"length not a count": "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok",
		"gzip coding":        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok",
		"switching":          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"obs-fold":           "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok",
		"NUL":                "HTTP/1.1 200 OK\r\nX-A: 1\x00\r\nContent-Length: 2\r\n\r\nok",
		"cut head":           "HTTP/1.1 200 OK\r\nContent-Len",
	} {
		t.Run(name, func(t *testing.T) {
			p, srv := testProxy(t)
			up, _ := hijacked(t, raw, true)
			p.Swap("app.test", up)
			conn, br := dialFront(t, srv)
			for range 2 { // the client connection goes on
				write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
				res, body := readResponse(t, br, "GET")
				if res.StatusCode != http.StatusBadGateway || body != "the app serving app.test did not answer\n" {
					t.Fatalf("got %d %q, want 502", res.StatusCode, body)
				}
			}
			if s := p.Stats(); s.UpstreamErrors != 2 {
				t.Fatalf("stats %+v, want 2 upstream errors", s)
			}
		})
	}
}

func TestServeUpstreamResponses(t *testing.T) {
	for name, c := range map[string]struct{ raw, body, absent string }{
		"HTTP/1.0":         {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", "HTTP/1.0"},
		"same length 2x":   {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "ok", "Content-Length: 2\r\nContent-Length"},
		"chunk extension":  {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;name=value\r\nok\r\n0\r\n\r\n", "ok", ""},
		"chunked + length": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n", "ok", "Content-Length"},
		"empty length":     {"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok", "ok", "Content-Length"},
		"no reason":        {"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", "ok", ""},
		// What busybox httpd sends for a CGI script that ends its header lines with LF.
		"bare LF": {"HTTP/1.0 200 OK\r\nContent-Type: text/plain\nX-A: 1\n\nok", "ok", "plain\nX-A"},
	} {
		t.Run(name, func(t *testing.T) {
			p, srv := testProxy(t)
			up, _ := hijacked(t, c.raw, true)
			p.Swap("app.test", up)
			conn, _ := dialFront(t, srv)
			write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
			var raw strings.Builder
			res, body := readResponse(t, bufio.NewReader(io.TeeReader(conn, &raw)), "GET")
			if res.StatusCode != 200 || body != c.body || res.ProtoMinor != 1 {
				t.Fatalf("got %s %d %q, want HTTP/1.1 200 %q", res.Proto, res.StatusCode, body, c.body)
			}
			if c.absent != "" && strings.Contains(raw.String(), c.absent) {
				t.Fatalf("%q in the response:\n%s", c.absent, raw.String())
			}
		})
	}
}

// An upstream that fails in the middle of a body cuts the response: the client
// connection is closed, so the client knows.
func TestServeUpstreamFailsMidBody(t *testing.T) {
	for name, raw := range map[string]string{
		"length":  "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
		"chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly this\r\n",
		"chunk":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nonly thisXX",
	} {
		t.Run(name, func(t *testing.T) {
			p, srv := testProxy(t)
			up, _ := hijacked(t, raw, true)
			p.Swap("app.test", up)
			conn, br := dialFront(t, srv)
			write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if body, err := io.ReadAll(res.Body); err == nil {
				t.Fatalf("got %q without error", body)
			}
			expectClosed(t, br)
			if n := up.InFlight(); n != 0 {
				t.Fatalf("%d requests hold the upstream", n)
			}
		})
	}
}

// A client that hangs up while its request waits ends the request: the app sees its
// request canceled, and the upstream is released (Drain need not wait for it).
func TestServeClientHangsUp(t *testing.T) {
	p, srv := testProxy(t)
	canceled := make(chan struct{})
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	}))
	p.Swap("app.test", up)
	conn, _ := dialFront(t, srv)
	write(t, conn, "GET /poll HTTP/1.1\r\nHost: app.test\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("the app's request was not canceled")
	}
	deadline := time.Now().Add(3 * time.Second)
	for up.InFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := up.InFlight(); n != 0 {
		t.Fatalf("%d requests hold the upstream", n)
	}
	if s := p.Stats(); s.UpstreamErrors != 0 {
		t.Fatalf("stats %+v: a client hanging up is not the upstream's error", s)
	}
}

// A response is not held back while the next request has only partly arrived.
func TestServePipelinedPartialRequest(t *testing.T) {
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", echoHandler)
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	write(t, conn, "GET /1 HTTP/1.1\r\nHost: app.test\r\n\r\nGET /2 HTTP/1.1\r\nHo")
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "GET /1 " {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	write(t, conn, "st: app.test\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "GET /2 " {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}

// Pipelined requests: the answer to the first leaves while the second waits on the app.
func TestServePipelinedAnswerNotHeldBack(t *testing.T) {
	p, srv := testProxy(t)
	release := make(chan struct{})
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		io.WriteString(w, r.URL.Path)
	}))
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	write(t, conn, "GET /quick HTTP/1.1\r\nHost: app.test\r\n\r\nGET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "/quick" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	close(release)
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "/slow" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}

// A slow request whose client pipelines the next one meanwhile: both are answered.
func TestServeSlowRequestThenPipelined(t *testing.T) {
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(w, r.URL.Path)
	}))
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	write(t, conn, "GET /slow HTTP/1.1\r\nHost: app.test\r\n\r\n")
	time.Sleep(200 * time.Millisecond) // the watcher is on
	write(t, conn, "GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", res.StatusCode, body, want)
		}
	}
}

func TestServeShutdownWaitsForRequestsInFlight(t *testing.T) {
	p, srv := testProxy(t)
	started, finish := make(chan string, 2), make(chan struct{})
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/idle" {
			started <- r.Method
			<-finish
		}
		io.WriteString(w, r.Method)
	}))
	p.Swap("app.test", up)

	idle, idleBr := dialFront(t, srv)
	write(t, idle, "GET /idle HTTP/1.1\r\nHost: app.test\r\n\r\n")
	readResponse(t, idleBr, "GET")

	fast, fastBr := dialFront(t, srv)
	write(t, fast, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	handedOff, handedOffBr := dialFront(t, srv)
	write(t, handedOff, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1\r\n\r\nx")
	<-started
	<-started

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- p.Shutdown(ctx)
	}()
	expectClosed(t, idleBr)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with requests in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if conn, err := net.Dial("tcp", srv.Addr); err == nil {
		conn.Close()
		t.Fatal("the listener still accepts connections")
	}

	close(finish)
	for _, c := range []struct {
		br     *bufio.Reader
		method string
	}{{fastBr, "GET"}, {handedOffBr, "POST"}} {
		res, body := readResponse(t, c.br, c.method)
		if res.StatusCode != 200 || body != c.method || !res.Close {
			t.Fatalf("in flight: %d %q close %v", res.StatusCode, body, res.Close)
		}
		expectClosed(t, c.br)
	}
	if err := <-shutdown; err != nil {
		t.Fatal(err)
	}
}

func TestServeShutdownGivesUp(t *testing.T) {
	p, srv := testProxy(t)
	started := make(chan struct{})
	_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	p.Close()
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("a response after Close")
	}
	deadline := time.Now().Add(3 * time.Second)
	for up.InFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := up.InFlight(); n != 0 {
		t.Fatalf("%d requests hold the upstream after Close", n)
	}
}

func TestAppendHostKeyMatchesCanonicalHost(t *testing.T) {
	for _, host := range []string{"app.test", "App.Test", "app.test:8080", "app.test.", "APP.test.:443",
		"[::1]:8080", "[::1]", "127.0.0.1:80", "a_b.test", "x:", ".", ":"} {
		if got, want := string(appendHostKey(nil, []byte(host))), canonicalHost(host); got != want {
			t.Errorf("appendHostKey(%q) = %q, canonicalHost gives %q", host, got, want)
		}
	}
}

// dialFrom opens a client connection to srv from the loopback address local.
func dialFrom(t *testing.T, local string, srv *front) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	conn, err := d.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, bufio.NewReader(conn)
}

func openFrom(p *Proxy, ip string) int {
	p.front.mu.Lock()
	defer p.front.mu.Unlock()
	return p.front.perIP[ip]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Slow-loris from one address: past the cap its connections are closed at once, and
// another address is served as usual. Half the slow ones are handed off (a body that
// dribbles in), half wait on the fast path (a head that does).
func TestServeCapsConnectionsPerAddress(t *testing.T) {
	p := New(testLogger(t))
	p.MaxConnsPerIP = 50
	srv := serveFront(t, p)
	_, up := testBackend(t, "app", nameHandler("app"))
	p.Swap("app.test", up)

	var slow []net.Conn
	for i := range 200 {
		conn, _ := dialFrom(t, "127.0.0.1", srv)
		if i%2 == 0 {
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: ")
		} else {
			io.WriteString(conn, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nslow")
		}
		slow = append(slow, conn)
	}
	waitFor(t, "150 connections refused", func() bool { return p.Stats().RefusedConns == 150 })
	if n := openFrom(p, "127.0.0.1"); n != 50 {
		t.Fatalf("%d connections open from 127.0.0.1, want 50", n)
	}

	conn, br := dialFrom(t, "127.0.0.2", srv)
	write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "app" {
		t.Fatalf("from another address: %d %q", res.StatusCode, body)
	}
	conn.Close()

	conn, br = dialFrom(t, "127.0.0.1", srv)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if _, err := br.ReadByte(); err != io.EOF && !isReset(err) {
		t.Fatalf("one more from 127.0.0.1: %v, want it closed", err)
	}

	// Once the slow ones are gone, the address is served again.
	for _, c := range slow {
		c.Close()
	}
	waitFor(t, "the slow connections to be let go", func() bool { return openFrom(p, "127.0.0.1") == 0 })
	conn, br = dialFrom(t, "127.0.0.1", srv)
	write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "app" {
		t.Fatalf("after the slow ones: %d %q", res.StatusCode, body)
	}
}
