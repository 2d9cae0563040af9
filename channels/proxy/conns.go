package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// connPool sends requests without a body (nearly every GET and HEAD, which is most of
// what a web app serves) to an upstream over pooled keep-alive connections, writing the
// request and reading the response on the calling goroutine.
//
// Why not only http.Transport: it runs two goroutines per connection, one writing
// requests and one reading responses, and hands every request to them and back through
// channels. On a small machine those hand-offs (scheduling, futex wake-ups) cost about a
// fifth of the proxy's CPU per request; ReverseProxy already gives each request its own
// goroutine, which can do the writing and reading itself. Requests with a body, and
// protocol upgrades, still go through http.Transport: it reads the response while the
// body is being sent (an app may answer early, or stream both ways), which a
// write-then-read client cannot.
//
// What http.Transport's reading goroutine also does, noticing that the app closed an idle
// connection, is done here by sending the request again, once, on a new connection when
// a reused one yields no response at all: these requests (GET, HEAD, OPTIONS without a
// body) may be sent twice.
type connPool struct {
	dial    func(ctx context.Context) (net.Conn, error)
	maxIdle int
	idleFor time.Duration

	mu      sync.Mutex
	idle    []*upConn // the most recently used last
	closing bool      // CloseIdleConnections was called and no request came since
}

type upConn struct {
	conn     net.Conn
	br       *bufio.Reader // reads through upReader
	bw       *bufio.Writer
	lastUsed time.Time

	// onStall, when set, is called by a read that hit the connection's read deadline;
	// if it reports true the read goes on. Serve's fast path sets a deadline as a timer
	// (see clientConn.stalled); the handler path never sets one.
	onStall func(*upConn) bool
}

// upReader is what an upConn's bufio.Reader reads from.
type upReader struct{ c *upConn }

func (r upReader) Read(b []byte) (int, error) {
	n, err := r.c.conn.Read(b)
	for n == 0 && err != nil && r.c.onStall != nil && errors.Is(err, os.ErrDeadlineExceeded) && r.c.onStall(r.c) {
		n, err = r.c.conn.Read(b)
	}
	return n, err
}

const connBufferSize = 4 << 10

// fastPath reports whether req can go through a connPool: no body, no upgrade, and a
// method that may be sent twice (see RoundTrip), as http.Transport's own retries require.
func fastPath(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return (req.Body == nil || req.Body == http.NoBody) && req.Header.Get("Upgrade") == ""
}

func (p *connPool) newConn(ctx context.Context) (*upConn, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	uc := &upConn{conn: c, bw: bufio.NewWriterSize(c, connBufferSize)}
	uc.br = bufio.NewReaderSize(upReader{uc}, connBufferSize)
	return uc, nil
}

// get returns an idle connection (reused) or a new one.
func (p *connPool) get(ctx context.Context) (c *upConn, reused bool, err error) {
	now := time.Now()
	var stale []*upConn
	p.mu.Lock()
	p.closing = false
	for len(p.idle) > 0 && c == nil {
		last := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(last.lastUsed) > p.idleFor {
			stale = append(stale, last)
			continue
		}
		c = last
	}
	p.mu.Unlock()
	for _, s := range stale {
		s.conn.Close()
	}
	if c != nil {
		return c, true, nil
	}
	c, err = p.newConn(ctx)
	return c, false, err
}

// put keeps a connection whose response was read to its end for the next request.
func (p *connPool) put(c *upConn) {
	c.lastUsed = time.Now()
	p.mu.Lock()
	if p.closing || len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		c.conn.Close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// CloseIdleConnections closes the idle connections, and those that become idle until
// the next request, as http.Transport's does.
func (p *connPool) CloseIdleConnections() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closing = true
	p.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
}

// errNoResponse: a reused connection gave no response at all, so the app most likely
// closed it while it was idle.
var errNoResponse = errors.New("upstream closed the connection before answering")

// RoundTrip sends req (see fastPath) and returns the response. The response's body
// gives the connection back to the pool when it has been read to its end and closed.
func (p *connPool) RoundTrip(req *http.Request) (*http.Response, error) {
	var res *http.Response
	_, err := p.do(req.Context(), func(c *upConn) (err error) {
		res, err = c.roundTrip(p, req)
		return err
	})
	return res, err
}

// do runs exchange (send a request, wait for its response) on a pooled connection and
// returns the connection, now the caller's. If a reused connection yields no response
// at all (exchange returns errNoResponse), exchange runs once more on a new one; on
// any other error the connection is closed.
func (p *connPool) do(ctx context.Context, exchange func(*upConn) error) (*upConn, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		err = exchange(c)
		if err == nil {
			return c, nil
		}
		c.conn.Close()
		if !errors.Is(err, errNoResponse) || !reused || attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

// aLongTimeAgo is a deadline in the past: setting it unblocks a read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

func (c *upConn) roundTrip(p *connPool, req *http.Request) (*http.Response, error) {
	// When the client goes away (or the server ends the request), unblock whatever
	// this connection is waiting for; the connection is then not reused.
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(noResponse(err))
	}
	if err := c.bw.Flush(); err != nil {
		return fail(noResponse(err))
	}
	// Nothing at all (EOF or a reset before the first byte) is what a connection the
	// app closed while idle gives; ReadResponse would not tell that from a cut-off
	// response.
	if _, err := c.br.Peek(1); err != nil {
		return fail(noResponse(err))
	}
	for {
		res, err := http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err)
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			// Not asked for (upgrades take the other path), but if it comes the
			// connection is the app's: hand it over as ReverseProxy expects.
			stop()
			res.Body = &switchedConn{Reader: c.br, conn: c.conn}
			return res, nil
		case res.StatusCode >= 100 && res.StatusCode < 200:
			continue // 1xx before the real response
		}
		res.Body = &upBody{body: res.Body, c: c, pool: p, stop: stop, reuse: !res.Close && !req.Close}
		return res, nil
	}
}

// noResponse marks the errors that mean the connection was closed before any of a
// response came back.
func noResponse(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return errNoResponse
	}
	return err
}

// upBody is a response body that gives its connection back to the pool once read to
// its end and closed, and closes it otherwise.
type upBody struct {
	body  io.ReadCloser
	c     *upConn
	pool  *connPool
	stop  func() bool
	reuse bool
	eof   bool
	done  bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *upBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof {
		// An empty body (HEAD, 204, 304, Content-Length: 0) is at its end without
		// a Read; anything else not read to its end (the client went away) closes
		// the connection first, so that closing the body does not read the rest of
		// it from the app.
		if n, err := b.body.Read(nil); n == 0 && err == io.EOF {
			b.eof = true
		} else {
			b.stop()
			b.c.conn.Close()
			b.body.Close()
			return nil
		}
	}
	err := b.body.Close()
	if b.stop() && b.reuse && err == nil {
		b.pool.put(b.c)
	} else {
		b.c.conn.Close()
	}
	return nil
}

// switchedConn is the body of a 101 response: the connection itself, which
// ReverseProxy copies both ways (it needs an io.ReadWriteCloser).
type switchedConn struct {
	io.Reader // the connection's buffered reader: bytes after the response head are in it
	conn      net.Conn
}

func (s *switchedConn) Write(p []byte) (int, error) { return s.conn.Write(p) }
func (s *switchedConn) Close() error                { return s.conn.Close() }
