package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkProxy measures requests through real HTTP servers over loopback: client ->
// proxy -> backend, all in this process, so the numbers are relative. "direct" (no
// proxy) and "httputil" (a default httputil.ReverseProxy) are the baselines; "handler"
// is the proxy as a net/http Handler, "serve" the proxy's own Serve.
//
//	go test -bench Proxy -run '^$' -cpuprofile cpu.out ./channels/proxy/
func BenchmarkProxy(b *testing.B) {
	body := strings.Repeat("x", 1024)
	backend, up := testBackend(b, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))

	p := New(nil)
	p.Swap("app.test", up)
	target, _ := url.Parse(backend.URL)

	handlerFront := func(h http.Handler) func(*testing.B) string {
		return func(b *testing.B) string {
			front := httptest.NewServer(h)
			b.Cleanup(front.Close)
			return front.URL
		}
	}
	for _, bc := range []struct {
		name  string
		start func(*testing.B) string // returns the URL to send to
	}{
		{"direct", func(*testing.B) string { return backend.URL }},
		{"httputil", handlerFront(httputil.NewSingleHostReverseProxy(target))},
		{"handler", handlerFront(p)},
		{"serve", func(b *testing.B) string {
			// A proxy stays closed after Close, as an http.Server does: one per run.
			p := New(nil)
			p.Swap("app.test", up)
			return serveFront(b, p).URL
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := bc.start(b)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}
			defer client.CloseIdleConnections()

			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest(http.MethodGet, addr+"/", nil)
				req.Host = "app.test"
				for pb.Next() {
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || n != int64(len(body)) {
						b.Errorf("got %d with %d bytes", res.StatusCode, n)
						return
					}
				}
			})
		})
	}
}

// BenchmarkServeHTTP calls the proxy's handler directly, without a front server, to
// show what the proxy itself costs per request (the backend still runs in this process).
func BenchmarkServeHTTP(b *testing.B) {
	_, up := testBackend(b, "app", nameHandler("hello"))
	p := New(nil)
	p.Swap("app.test", up)

	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
		for pb.Next() {
			w := httptest.NewRecorder()
			p.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("got %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkParseRequest is the fast path's head parser alone, on a browser-like GET.
func BenchmarkParseRequest(b *testing.B) {
	head := []byte("GET /assets/app.js?v=3 HTTP/1.1\r\nHost: app.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: */*\r\nAccept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n" +
		"Cookie: session=0123456789abcdef; theme=dark\r\nCache-Control: max-age=0\r\n\r\n")
	var q request
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		if q.parse(head, 0, len(head)) != forwardIt {
			b.Fatal("not forwarded")
		}
	}
}

// BenchmarkAcquire is what routing costs a request on Serve's fast path: the route
// lookup, the pick and the acquire, without any I/O, for a route with one upstream
// and one with three.
func BenchmarkAcquire(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("upstreams=%d", n), func(b *testing.B) {
			p := New(nil)
			var ups []*Upstream
			for i := range n {
				ups = append(ups, NewUpstream(fmt.Sprint(i), nil))
			}
			p.SwapSet("app.test", ups)
			host := []byte("app.test")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, f := p.acquireServing(host, false)
					f.upstream.release()
				}
			})
		})
	}
}
