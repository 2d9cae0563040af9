package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// shortTimeouts makes the head and idle timeouts short for a test, for the
// proxies it makes after.
func shortTimeouts(t *testing.T, head, idle time.Duration) {
	oldHead, oldIdle := headerTimeout, idleTimeout
	headerTimeout, idleTimeout = head, idle
	t.Cleanup(func() { headerTimeout, idleTimeout = oldHead, oldIdle })
}

// closedWithin reports how long the proxy took to close conn, failing when it
// did not within limit.
func closedWithin(t *testing.T, conn net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, conn)
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the proxy kept the connection open for %v", limit)
	}
	return took
}

// A client that starts a request head and never ends it is cut off after the
// head timeout, on the fast path and on a head it handed off.
func TestAHeadThatNeverEndsIsCutOff(t *testing.T) {
	shortTimeouts(t, 300*time.Millisecond, 10*time.Second)
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", nameHandler("app"))
	p.Swap("app.test", up)
	for name, head := range map[string]string{
		"fast path":  "GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: ",
		"handed off": "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nX-Slow: ",
	} {
		conn, _ := dialFront(t, srv)
		write(t, conn, head)
		if took := closedWithin(t, conn, 5*time.Second); took < 200*time.Millisecond {
			t.Errorf("%s: closed after %v, before the head timeout", name, took)
		}
	}
}

// A kept-alive connection that sends nothing more is closed after the idle
// timeout, and one that goes on is not. The fast path moves the idle
// deadline only when it moves by a second or more (a syscall saved per
// request), so the close comes up to a second early.
func TestAnIdleConnectionIsClosed(t *testing.T) {
	shortTimeouts(t, 10*time.Second, 3*time.Second)
	p, srv := testProxy(t)
	_, up := testBackend(t, "app", nameHandler("app"))
	p.Swap("app.test", up)
	conn, br := dialFront(t, srv)
	for range 3 {
		write(t, conn, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
		if res, body := readResponse(t, br, "GET"); res.StatusCode != 200 || body != "app" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if took := closedWithin(t, conn, 10*time.Second); took < 1500*time.Millisecond {
		t.Errorf("closed after %v of idleness, well before the idle timeout of 3 s", took)
	}
}
