package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an upstream that writes down every request it reads, as the app behind
// the proxy would see it, and answers each with 200 "ok".
type recorder struct {
	ln     net.Listener
	mu     sync.Mutex
	got    []string // one line per request: method, target, framing, body
	active int      // connections in the middle of a request
}

func newRecorder(t *testing.T) (*recorder, *Upstream) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &recorder{ln: ln}
	go r.accept()
	addr := ln.Addr().String()
	return r, NewUpstream("recorder", func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
}

func (r *recorder) accept() {
	for {
		conn, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.serve(conn)
	}
}

func (r *recorder) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		if _, err := br.Peek(1); err != nil {
			return
		}
		r.busy(1)
		line, ok := r.read(br)
		r.mu.Lock()
		r.got = append(r.got, line)
		r.active--
		r.mu.Unlock()
		if !ok {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (r *recorder) busy(n int) {
	r.mu.Lock()
	r.active += n
	r.mu.Unlock()
}

// read reads one request and describes it; ok is false if it was not whole.
func (r *recorder) read(br *bufio.Reader) (line string, ok bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return "unreadable: " + err.Error(), false
	}
	body, err := io.ReadAll(req.Body)
	framing := fmt.Sprintf("cl=%d", req.ContentLength)
	if len(req.TransferEncoding) > 0 {
		framing = "chunked"
	}
	line = fmt.Sprintf("%s %s %s %q", req.Method, req.RequestURI, framing, body)
	if err != nil {
		return "cut: " + line, false
	}
	return line, true
}

// requests waits for the connections in the middle of a request to settle, and returns
// what the upstream got.
func (r *recorder) requests(t *testing.T) []string {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		active, got := r.active, append([]string(nil), r.got...)
		r.mu.Unlock()
		if active == 0 || time.Now().After(deadline) {
			return got
		}
	}
}

// readAll reads every response the proxy writes on br until it closes the connection,
// or until the connection has been quiet for half a second (left open).
func readAll(t *testing.T, conn net.Conn, br *bufio.Reader) (statuses []int, closed bool) {
	t.Helper()
	for {
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := br.Peek(1); err != nil {
			return statuses, err == io.EOF || isReset(err)
		}
		res, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("reading response %d: %v", len(statuses)+1, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

const (
	rpost  = "POST /p HTTP/1.1\r\nHost: app.test\r\n"
	rget   = "GET /g HTTP/1.1\r\nHost: app.test\r\n"
	hidden = "GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n" // 39 bytes
)

// Known request smuggling vectors, sent over a real connection to a proxy with an
// upstream that records what reaches it. Each is refused with the connection closed
// and nothing sent on, or reaches the app as exactly one request framed as the proxy
// read it.
func TestSmugglingVectors(t *testing.T) {
	for _, c := range []struct {
		name     string
		raw      string
		statuses []int
		open     bool     // the connection stays open
		upstream []string // what reached the app
	}{
		// CL.TE and TE.CL: both framings in one request.
		{"CL.TE", rpost + "Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED", []int{400}, false, nil},
		{"TE.CL", rpost + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", []int{400}, false, nil},
		{"CL 0 with TE on a GET", rget + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"TE with tab and CL", rpost + "Content-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"HTTP/1.0 with TE", "POST /p HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"HTTP/1.0 with TE only", "POST /p HTTP/1.0\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},

		// TE.TE: a Transfer-Encoding one reader takes and another does not.
		{"xchunked", rpost + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"xchunked with CL", rpost + "Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"space before colon", rpost + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"tab before colon", rpost + "Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"chunked, identity", rpost + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"chunked twice in one line", rpost + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"two TE lines", rpost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"TE then identity line", rpost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"gzip, chunked", rpost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", []int{501}, false, nil},
		{"empty TE", rpost + "Transfer-Encoding: \r\nContent-Length: 2\r\n\r\nok", []int{400}, false, nil},
		{"TE folded", rpost + "Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"TE behind a fold", rpost + "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"vertical tab in TE", rpost + "Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"bare CR before TE", rpost + "X-A: 1\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"NUL in TE", rpost + "Transfer-Encoding: chunked\x00\r\n\r\n0\r\n\r\n", []int{400}, false, nil},
		{"TE after a bare LF line", rpost + "X-A: 1\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, false, nil},

		// Content-Length readings.
		{"two different CLs", rpost + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc", []int{400}, false, nil},
		{"two equal CLs", rpost + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", []int{400}, false, nil},
		{"CL list", rpost + "Content-Length: 3, 3\r\n\r\nabc", []int{400}, false, nil},
		{"CL with sign", rpost + "Content-Length: +3\r\n\r\nabc", []int{400}, false, nil},
		{"CL in hex", rpost + "Content-Length: 0x3\r\n\r\nabc", []int{400}, false, nil},
		{"empty CL", rpost + "Content-Length: \r\n\r\n", []int{400}, false, nil},

		// Chunked bodies the client botches.
		{"chunk size not hex", rpost + "Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", []int{400}, false, nil},
		{"chunk size overflows", rpost + "Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nab\r\n0\r\n\r\n", []int{400}, false, nil},
		{"chunk size with bare LF", rpost + "Transfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n", []int{400}, false, nil},
		{"chunk data too long", rpost + "Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", []int{400}, false, nil},

		// Requests hidden in a body stay in it, and requests after one are read where
		// it ends.
		{"request in a CL body", rpost + "Content-Length: 39\r\n\r\n" + hidden + rget + "\r\n", []int{200, 200}, true,
			[]string{`POST /p cl=39 "GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n"`, `GET /g cl=0 ""`}},
		{"request in a chunked body", rpost + "Transfer-Encoding: chunked\r\n\r\n27\r\n" + hidden + "\r\n0\r\n\r\n" + rget + "\r\n", []int{200, 200}, true,
			[]string{`POST /p chunked "GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n"`, `GET /g cl=0 ""`}},
		{"TE.CL after a POST", rpost + "Content-Length: 2\r\n\r\nok" + rpost + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", []int{200, 400}, false,
			[]string{`POST /p cl=2 "ok"`}},
		{"CL.TE after a chunked POST", rpost + "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + rpost + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", []int{200, 400}, false,
			[]string{`POST /p chunked "ok"`}},
		{"xchunked after a GET", rget + "\r\n" + rpost + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", []int{200, 400}, false,
			[]string{`GET /g cl=0 ""`}},
		{"obs-fold after a POST", rpost + "Content-Length: 2\r\n\r\nok" + rget + "X-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n", []int{200, 400}, false,
			[]string{`POST /p cl=2 "ok"`}},
		{"bad chunk size after a POST", rpost + "Content-Length: 2\r\n\r\nok" + rpost + "Transfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", []int{200, 400}, false,
			[]string{`POST /p cl=2 "ok"`}},
		{"GET with a body", rget + "Content-Length: 5\r\n\r\nhello" + rget + "\r\n", []int{200, 200}, true,
			[]string{`GET /g cl=5 "hello"`, `GET /g cl=0 ""`}},

		// Targets and heads.
		{"absolute-form for another host", "GET http://other.test/ HTTP/1.1\r\nHost: app.test\r\n\r\n", []int{400}, false, nil},
		{"absolute-form with userinfo", "GET http://other.test@app.test/ HTTP/1.1\r\nHost: app.test\r\n\r\n", []int{400}, false, nil},
		{"absolute-form for its Host", "GET http://app.test/a HTTP/1.1\r\nHost: app.test\r\n\r\n", []int{200}, true, []string{`GET /a cl=0 ""`}},
		{"leading LF", "\n" + rget + "\r\n", []int{400}, false, nil},
		{"too many fields", rget + strings.Repeat("X-A: 1\r\n", 300) + "\r\n", []int{431}, false, nil},
		{"head too long", rget + "X-A: " + strings.Repeat("a", 1<<20) + "\r\n\r\n", []int{431}, false, nil},
		// After a hand-off every refusal is net/http's 400 (see gateConn).
		{"head too long after a POST", rpost + "Content-Length: 2\r\n\r\nok" + rget + "X-A: " + strings.Repeat("a", 1<<20) + "\r\n\r\n", []int{200, 400}, false,
			[]string{`POST /p cl=2 "ok"`}},
		{"gzip, chunked after a POST", rpost + "Content-Length: 2\r\n\r\nok" + rpost + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", []int{200, 400}, false,
			[]string{`POST /p cl=2 "ok"`}},
		// An Upgrade the app does not take: what follows is not checked (it could be
		// another protocol), so the connection is closed after the answer.
		{"TE.CL after an Upgrade not taken", rget + "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n" + rpost + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", []int{200}, false,
			[]string{`GET /g cl=0 ""`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, srv := testProxy(t)
			rec, up := newRecorder(t)
			p.Swap("app.test", up)
			conn, br := dialFront(t, srv)
			go io.WriteString(conn, c.raw)
			statuses, closed := readAll(t, conn, br)
			got := rec.requests(t)
			if fmt.Sprint(statuses) != fmt.Sprint(c.statuses) || closed == c.open || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.upstream) {
				t.Errorf("got %v, closed %v, upstream got %q\nwant %v, closed %v, upstream %q", statuses, closed, got, c.statuses, !c.open, c.upstream)
			}
		})
	}
}
