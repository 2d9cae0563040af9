package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Request bodies the client fails to send, or sends too slowly, spoken over raw
// connections through both fronts.

// eachFrontWithRate is eachFront with the proxy's minimum body rate set to rate.
func eachFrontWithRate(t *testing.T, rate bodyRate, test func(t *testing.T, p *Proxy, srv *front)) {
	for _, f := range fronts {
		t.Run(f.name, func(t *testing.T) {
			p := New(testLogger(t))
			p.bodyRate = rate
			test(t, p, f.start(t, p))
		})
	}
}

// digestHandler answers with the length and SHA-256 of the body it got, after waiting
// before and after reading it.
func digestHandler(before, after time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(before)
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		time.Sleep(after)
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
}

func digest(b []byte) string { return fmt.Sprintf("%d %x", len(b), sha256.Sum256(b)) }

func closeWrite(t *testing.T, conn net.Conn) {
	t.Helper()
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// waitReleased waits until no request holds up.
func waitReleased(t *testing.T, up *Upstream) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for up.InFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := up.InFlight(); n != 0 {
		t.Fatalf("%d requests hold the upstream", n)
	}
}

// A body the client botches is its fault: 400, not 502, and the connection is closed
// since what follows cannot be told from a next request.
func TestMalformedBody(t *testing.T) {
	const chunked = "POST /c HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
	for name, c := range map[string]struct {
		request string
		cut     bool // the client then shuts its side
	}{
		"chunk size not hex":   {chunked + "zz\r\nab\r\n0\r\n\r\n", false},
		"chunk size with junk": {chunked + "1x\r\na\r\n0\r\n\r\n", false},
		"chunked cut short":    {chunked + "5\r\nab", true},
		"length cut short":     {"POST /l HTTP/1.1\r\nHost: app.test\r\nContent-Length: 10\r\n\r\nabc", true},
	} {
		t.Run(name, func(t *testing.T) {
			eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
				_, up := testBackend(t, "app", echoHandler)
				p.Swap("app.test", up)
				conn, br := dialFront(t, srv)
				write(t, conn, c.request)
				if c.cut {
					closeWrite(t, conn)
				}
				res, body := readResponse(t, br, "POST")
				if res.StatusCode != http.StatusBadRequest || body != "the request body is malformed or cut short\n" || !res.Close {
					t.Fatalf("got %d %q close %v, want 400 and close", res.StatusCode, body, res.Close)
				}
				expectClosed(t, br)
				waitReleased(t, up)
				if s := p.Stats(); s.UpstreamErrors != 0 || s.ClientErrors != 1 {
					t.Fatalf("stats %+v, want 1 client error and no upstream error", s)
				}
			})
		})
	}
}

// A client hanging up in the middle of its body gets no answer, and is no upstream
// error.
func TestClientHangsUpMidRequestBody(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", echoHandler)
		p.Swap("app.test", up)
		conn, _ := dialFront(t, srv)
		write(t, conn, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\nsome")
		time.Sleep(100 * time.Millisecond)
		conn.Close()
		waitReleased(t, up)
		if s := p.Stats(); s.UpstreamErrors != 0 || s.ClientErrors != 1 {
			t.Fatalf("stats %+v, want 1 client error and no upstream error", s)
		}
	})
}

// A well-formed chunked body reaches the app whole, and the connection goes on.
func TestChunkedBodyPassesThrough(t *testing.T) {
	eachFront(t, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", digestHandler(0, 0))
		p.Swap("app.test", up)
		var raw, sent bytes.Buffer
		raw.WriteString("POST /up HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i, size := range []int{1, 17, 4096, 40000, 3, 100000, 0x1fff} {
			chunk := bytes.Repeat([]byte{byte('a' + i)}, size)
			chunk[0] = byte(i)
			fmt.Fprintf(&raw, "%x;n=%d\r\n%s\r\n", size, i, chunk)
			sent.Write(chunk)
		}
		raw.WriteString("0\r\n\r\n")
		conn, br := dialFront(t, srv)
		go conn.Write(raw.Bytes())
		if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != digest(sent.Bytes()) {
			t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, digest(sent.Bytes()))
		}
		write(t, conn, "POST /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nok")
		if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != digest([]byte("ok")) {
			t.Fatalf("next request: %d %q", res.StatusCode, body)
		}
		if s := p.Stats(); s.UpstreamErrors != 0 || s.ClientErrors != 0 {
			t.Fatalf("stats %+v, want no error", s)
		}
	})
}

// A body dribbled in (slowloris) is cut once the grace is over: 408, and the
// connection and upstream are let go.
func TestSlowBodyTimesOut(t *testing.T) {
	rate := bodyRate{bytesPerSecond: 1000, grace: 300 * time.Millisecond}
	for name, c := range map[string]struct{ head, piece string }{
		"length":  {"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n", "x"},
		"chunked": {"POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			eachFrontWithRate(t, rate, func(t *testing.T, p *Proxy, srv *front) {
				bodyErr := make(chan error, 1)
				_, up := testBackend(t, "app", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, err := io.ReadAll(r.Body)
					bodyErr <- err
				}))
				p.Swap("app.test", up)
				conn, br := dialFront(t, srv)
				start := time.Now()
				write(t, conn, c.head)
				go func() {
					for range 20 { // 1 byte per 200 ms: 5 bytes/s
						if _, err := io.WriteString(conn, c.piece); err != nil {
							return
						}
						time.Sleep(200 * time.Millisecond)
					}
				}()
				res, body := readResponse(t, br, "POST")
				took := time.Since(start)
				if res.StatusCode != http.StatusRequestTimeout || body != "the request body came too slowly\n" || !res.Close {
					t.Fatalf("got %d %q close %v after %v, want 408 and close", res.StatusCode, body, res.Close, took)
				}
				if took < rate.grace || took > 2*time.Second {
					t.Fatalf("408 after %v, want it soon after the %v grace", took, rate.grace)
				}
				expectClosed(t, br)
				select {
				case err := <-bodyErr:
					if err == nil {
						t.Fatal("the app read a whole body")
					}
				case <-time.After(2 * time.Second):
					t.Fatal("the app's request still waits for its body")
				}
				waitReleased(t, up)
				if s := p.Stats(); s.UpstreamErrors != 0 || s.ClientErrors != 1 {
					t.Fatalf("stats %+v, want 1 client error and no upstream error", s)
				}
			})
		})
	}
}

// A body sent at a good rate for much longer than the grace arrives whole: the minimum
// rate is no limit on the time an upload takes.
func TestBodyAtGoodRateArrivesWhole(t *testing.T) {
	rate := bodyRate{bytesPerSecond: 16 << 10, grace: 200 * time.Millisecond}
	eachFrontWithRate(t, rate, func(t *testing.T, p *Proxy, srv *front) {
		_, up := testBackend(t, "app", digestHandler(0, 0))
		p.Swap("app.test", up)
		const pieces, size = 16, 4 << 10 // 64 KiB at 80 KiB/s, in 0.8 s: 4 graces
		var sent bytes.Buffer
		for i := range pieces {
			sent.Write(bytes.Repeat([]byte{byte(i)}, size))
		}
		conn, br := dialFront(t, srv)
		write(t, conn, fmt.Sprintf("PUT /up HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n", sent.Len()))
		go func() {
			for i := range pieces {
				if _, err := conn.Write(sent.Bytes()[i*size : (i+1)*size]); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if res, body := readResponse(t, br, "PUT"); res.StatusCode != 200 || body != digest(sent.Bytes()) {
			t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, digest(sent.Bytes()))
		}
	})
}

// The client is held to the rate only while the proxy waits for it: an app slow to
// read its body, or slow to answer once it has, is not the client's fault.
func TestBodyRateCountsOnlyClientTime(t *testing.T) {
	t.Run("slow to read", func(t *testing.T) {
		// Far more than the socket buffers between proxy and app hold, so that the
		// proxy stops reading from the client while the app waits.
		rate := bodyRate{bytesPerSecond: 32 << 20, grace: 200 * time.Millisecond}
		eachFrontWithRate(t, rate, func(t *testing.T, p *Proxy, srv *front) {
			_, up := testBackend(t, "app", digestHandler(500*time.Millisecond, 0))
			p.Swap("app.test", up)
			sent := bytes.Repeat([]byte("0123456789abcdef"), 16<<20/16)
			conn, br := dialFront(t, srv)
			go func() {
				fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n", len(sent))
				conn.Write(sent)
			}()
			if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != digest(sent) {
				t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, digest(sent))
			}
		})
	})
	t.Run("slow to answer", func(t *testing.T) {
		rate := bodyRate{bytesPerSecond: 1000, grace: 200 * time.Millisecond}
		eachFrontWithRate(t, rate, func(t *testing.T, p *Proxy, srv *front) {
			_, up := testBackend(t, "app", digestHandler(0, 500*time.Millisecond))
			p.Swap("app.test", up)
			conn, br := dialFront(t, srv)
			write(t, conn, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello")
			if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != digest([]byte("hello")) {
				t.Fatalf("got %d %q", res.StatusCode, body)
			}
			write(t, conn, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\n\r\nok")
			if res, body := readResponse(t, br, "POST"); res.StatusCode != 200 || body != digest([]byte("ok")) {
				t.Fatalf("next request: %d %q", res.StatusCode, body)
			}
		})
	})
}

// What the upstream did not read of a body, net/http reads after the handler to keep
// the connection; a slow client is held to the grace there too, not waited for.
func TestUnreadBodyHeldToGrace(t *testing.T) {
	rate := bodyRate{bytesPerSecond: 1000, grace: 300 * time.Millisecond}
	eachFrontWithRate(t, rate, func(t *testing.T, p *Proxy, srv *front) {
		p.Swap("app.test", NewUpstream("down", func(ctx context.Context) (net.Conn, error) {
			return nil, errors.New("connection refused")
		}))
		conn, br := dialFront(t, srv)
		start := time.Now()
		write(t, conn, "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n")
		go func() {
			for range 20 {
				if _, err := io.WriteString(conn, "x"); err != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()
		res, _ := readResponse(t, br, "POST")
		if took := time.Since(start); res.StatusCode != http.StatusBadGateway || !res.Close || took > 2*time.Second {
			t.Fatalf("got %d close %v after %v, want 502 and close soon after the grace", res.StatusCode, res.Close, took)
		}
		expectClosed(t, br)
	})
}

func TestBodyRateAllowance(t *testing.T) {
	r := bodyRate{bytesPerSecond: 240, grace: 5 * time.Second}
	for n, want := range map[int64]time.Duration{
		0:             5 * time.Second,
		1200:          5 * time.Second,
		2400:          10 * time.Second,
		2520:          10*time.Second + 500*time.Millisecond,
		1 << 62:       1<<63 - 1,
		1<<63 - 1:     1<<63 - 1,
		240 * 86400:   24 * time.Hour,
		240*86400 + 1: 24*time.Hour + time.Second/240,
	} {
		if got := r.allowance(n); got != want {
			t.Errorf("allowance(%d) = %v, want %v", n, got, want)
		}
	}
}
