package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	clientBufferSize = 4 << 10
	// maxFastHead: a longer request head is handed off (once checked), to keep the
	// buffers of the fast path small; maxHead is the limit of both paths.
	maxFastHead = 64 << 10
	// watchClientAfter is how long a request waits on its upstream before a goroutine
	// starts watching its client for a hang-up (see stalled).
	watchClientAfter = 100 * time.Millisecond
)

// Client connection states, for Shutdown.
const (
	connActive int32 = iota // a request is being read or served
	connIdle                // waiting for a request: Shutdown may close it
	connClosed              // closed by Shutdown or Close
)

// clientConn is a client connection on Serve's fast path, served by one goroutine.
type clientConn struct {
	srv     *server
	proxy   *Proxy
	conn    net.Conn
	ip      string // the client's address as X-Forwarded-For has it; "" sends none
	state   atomic.Int32
	tls     bool   // conn is a *tls.Conn, served by ServeTLS
	trusted bool   // ip is a trusted proxy: its forwarding fields are kept
	hsts    []byte // the Strict-Transport-Security line of the request's route, on TLS

	buf      []byte // read from the client; buf[r:w] is not handled yet
	r, w     int
	bw       *bufio.Writer
	deadline time.Time // the read deadline last set on conn

	req     request
	resp    response
	hostKey []byte
	line    []byte // a chunk line or trailer
	copyBuf []byte // for large bodies, from proxy.buffers while a response is copied

	// The request's upstream connection, watched for a client hang-up (see stalled).
	up        atomic.Pointer[upConn]
	onStall   func(*upConn) bool // c.stalled, made once
	exchange  func(*upConn) error
	watching  bool
	watchDone chan struct{}
	watchByte [1]byte
	watchGot  bool
	gone      atomic.Bool // the client hung up while its request was in flight
}

func newClientConn(s *server, conn net.Conn, ip string) *clientConn {
	_, isTLS := conn.(*tls.Conn)
	c := &clientConn{
		srv:     s,
		proxy:   s.proxy,
		conn:    conn,
		ip:      ip,
		tls:     isTLS,
		trusted: trusts(s.proxy.TrustedProxies, ip),
		buf:     make([]byte, clientBufferSize),
		bw:      bufio.NewWriterSize(conn, clientBufferSize),
	}
	c.state.Store(connIdle)
	c.onStall, c.exchange = c.stalled, c.send
	return c
}

// clientIP is the address of conn's client, as X-Forwarded-For has it.
func clientIP(conn net.Conn) string {
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return ""
	}
	return host
}

// closeIfIdle closes c if it is waiting for a request. Called by Shutdown.
func (c *clientConn) closeIfIdle() {
	if c.state.CompareAndSwap(connIdle, connClosed) {
		c.conn.Close()
	}
}

func (c *clientConn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			c.conn.Close()
			c.srv.releaseIP(c.ip)
		}
		c.srv.removeConn(c)
	}()
	if tc, ok := c.conn.(*tls.Conn); ok {
		if !c.handshake(tc) {
			return
		}
		switch tc.ConnectionState().NegotiatedProtocol {
		case "h2":
			handedOff = c.handOffH2(tc)
			return
		case acmeALPNProto:
			return // the validator has seen the challenge certificate: all it wants
		}
	}
	for {
		end, err := c.readHead()
		if err != nil {
			return
		}
		v := c.req.parse(c.buf, c.r, end)
		if v == forwardIt && end-c.r > maxFastHead {
			v = handItOff
		}
		var fw *forwarder
		if v == forwardIt && !c.tls && c.proxy.hasChallenges() &&
			bytes.HasPrefix(c.buf[c.req.path.start:c.req.path.end], []byte(acmeChallengePath)) {
			v = handItOff // ServeHTTP answers ACME
		}
		if v == forwardIt {
			c.hostKey = appendHostKey(c.hostKey[:0], c.buf[c.req.host.start:c.req.host.end])
			if rt, f := c.proxy.acquireServing(c.hostKey, c.tls); f != nil {
				fw, c.hsts = f, rt.hsts
			} else {
				v = handItOff // a page or a redirect: ServeHTTP writes it
			}
		}
		switch v {
		case rejectIt:
			// Nothing is in flight while the refusal lingers: Shutdown need not wait.
			c.srv.removeConn(c)
			c.reject(c.req.status)
			return
		case handItOff:
			handedOff = c.handOff()
			return
		}
		c.proxy.requests.Add(1)
		if keep := c.forward(fw, end); !keep || c.srv.closing.Load() {
			c.bw.Flush()
			return
		}
	}
}

// readHead reads until buf[r:] holds a whole request head and returns where it ends.
// When the head is longer than maxHead, it returns where it would have to end to be
// that long, which parse refuses. It returns an error when the connection is done
// (closed, timed out, Shutdown).
//
// Responses written are flushed only when it has to wait for the client: when the
// next request is already here (pipelined), its response leaves in the same write.
func (c *clientConn) readHead() (int, error) {
	from := c.r
	headTimer := false
	for {
		end, next := headEnd(c.buf[:c.w], from)
		if end > 0 {
			return end, nil
		}
		from = next
		if c.w-c.r > maxHead {
			return c.r + maxHead + 1, nil
		}
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
		if c.r == c.w {
			if err := c.waitForRequest(); err != nil {
				return 0, err
			}
			from = 0
			continue
		}
		if !headTimer {
			headTimer = true
			c.setReadDeadline(time.Now().Add(headerTimeout), false)
		}
		if c.w == len(c.buf) {
			from -= c.makeRoom()
		}
		n, err := c.conn.Read(c.buf[c.w:])
		c.w += n
		if n == 0 && err != nil {
			return 0, err
		}
	}
}

// waitForRequest waits, idle, for the first bytes of the next request.
func (c *clientConn) waitForRequest() error {
	c.r, c.w = 0, 0
	if len(c.buf) > clientBufferSize {
		c.buf = make([]byte, clientBufferSize) // after a long head
	}
	c.state.Store(connIdle)
	if c.srv.closing.Load() {
		return http.ErrServerClosed
	}
	c.setReadDeadline(time.Now().Add(idleTimeout), true)
	n, err := c.conn.Read(c.buf)
	if n == 0 {
		return err
	}
	if !c.state.CompareAndSwap(connIdle, connActive) {
		return http.ErrServerClosed
	}
	c.w = n
	return nil
}

// setReadDeadline sets conn's read deadline. A coarse one is left alone if the one
// already set is less than a second earlier: the idle timeout does not need to be
// exact, and this saves resetting a timer on every request.
func (c *clientConn) setReadDeadline(t time.Time, coarse bool) {
	if coarse && !t.Before(c.deadline) && t.Sub(c.deadline) < time.Second {
		return
	}
	c.conn.SetReadDeadline(t)
	c.deadline = t
}

// makeRoom makes room at the end of buf, moving the unhandled bytes to its start or
// growing it, and returns how far the bytes moved back.
func (c *clientConn) makeRoom() int {
	shift := c.r
	if c.r > 0 {
		copy(c.buf, c.buf[c.r:c.w])
	} else {
		grown := make([]byte, 2*len(c.buf))
		copy(grown, c.buf[:c.w])
		c.buf = grown
	}
	c.r, c.w = 0, c.w-shift
	return shift
}

// handOff gives the connection, with the bytes read but not handled, to the net/http
// server. It reports false if the connection was closed instead.
func (c *clientConn) handOff() bool {
	if err := c.bw.Flush(); err != nil {
		return false
	}
	c.conn.SetReadDeadline(time.Time{})
	ip := c.ip
	g := newGateConn(c.conn, c.buf, c.r, c.w, func() { c.srv.releaseIP(ip) })
	g.tls, g.ip = c.tls, c.ip
	return c.srv.handoff.give(g)
}

// reject answers a refused request as net/http answers a malformed one, and closes
// the connection.
func (c *clientConn) reject(status int) {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	c.bw.WriteString("HTTP/1.1 " + text + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + text)
	if c.bw.Flush() != nil {
		return
	}
	lingerClose(c.conn)
}

// lingerClose lets the client read a refusal before the connection is closed (by the
// caller): closing with unread bytes would reset the connection, and the client could
// lose the response. So half-close, then read what comes for a moment.
func lingerClose(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, conn)
	}
}

// forward sends the request in c.req, whose head ends at end, to fw's upstream (which
// the caller acquired) and relays the response. It releases the upstream and reports
// whether the client connection can take another request.
func (c *clientConn) forward(fw *forwarder, end int) (keep bool) {
	up := fw.upstream
	uc, err := up.fast.do(c.srv.ctx, c.exchange)
	if err != nil && !c.gone.Load() && c.srv.ctx.Err() == nil {
		// As forwarder.RoundTrip: nothing reached the client yet, and the fast path
		// carries no body.
		if next := c.proxy.retryTarget(fw, err, c.req.method, false); next != nil {
			up.release()
			fw, up = next, next.upstream
			uc, err = up.fast.do(c.srv.ctx, c.exchange)
		}
	}
	reuse := false
	if err != nil {
		keep = c.failed(fw, err)
	} else {
		keep, reuse = c.relay(fw, uc)
	}

	c.r = end
	c.stopWatching()
	c.up.Store(nil)
	if c.copyBuf != nil {
		c.proxy.buffers.Put(c.copyBuf)
		c.copyBuf = nil
	}
	if uc != nil {
		uc.onStall = nil
		if reuse && uc.conn.SetReadDeadline(time.Time{}) == nil {
			up.fast.put(uc)
		} else {
			uc.conn.Close()
		}
	}
	up.release()
	return keep && !c.gone.Load()
}

// send writes the request to uc and waits for the first byte of the response (see
// connPool.do).
func (c *clientConn) send(uc *upConn) error {
	c.up.Store(uc)
	uc.onStall = c.onStall
	if !c.watching {
		uc.conn.SetReadDeadline(time.Now().Add(watchClientAfter))
	}
	c.writeRequest(uc.bw)
	if err := uc.bw.Flush(); err != nil {
		return noResponse(err)
	}
	if uc.br.Buffered() == 0 {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if _, err := uc.br.Peek(1); err != nil {
		return noResponse(err)
	}
	return nil
}

// writeRequest writes the request head as the handler path would send it: the
// request line and the fields that go on as they came, then the forwarding fields.
func (c *clientConn) writeRequest(bw *bufio.Writer) {
	q, buf := &c.req, c.buf
	bw.Write(buf[c.r:q.lineEnd])
	for _, f := range q.fields {
		if !f.drop {
			bw.Write(buf[f.start:f.end])
		}
	}
	switch {
	case c.trusted:
		c.writeTrustedForwarded(bw)
	case c.ip != "":
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(c.ip)
		bw.WriteString("\r\nX-Real-Ip: ")
		bw.WriteString(c.ip)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.Write(buf[q.host.start:q.host.end])
	switch {
	case c.trusted && q.hasXFP:
		bw.WriteString("\r\nX-Forwarded-Proto: ")
		bw.Write(buf[q.xfp.start:q.xfp.end])
		bw.WriteString("\r\n")
	case c.tls:
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	default:
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if q.teTrailers {
		bw.WriteString("Te: trailers\r\n")
	}
	if q.addCacheControl {
		bw.WriteString("Cache-Control: no-cache\r\n")
	}
	bw.WriteString("\r\n")
}

// writeTrustedForwarded writes the forwarding fields of a request from a trusted
// proxy (see forwarded.go): its X-Forwarded-For chain with the peer appended, its
// CF-Connecting-IP, and the client address it vouches for.
func (c *clientConn) writeTrustedForwarded(bw *bufio.Writer) {
	q, buf := &c.req, c.buf
	var chain []byte
	for i, v := range q.xff {
		if i > 0 {
			chain = append(chain, ", "...)
		}
		chain = append(chain, buf[v.start:v.end]...)
	}
	cfIP := ""
	if q.hasCFIP {
		cfIP = string(buf[q.cfIP.start:q.cfIP.end])
		bw.WriteString("Cf-Connecting-Ip: ")
		bw.WriteString(cfIP)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Real-Ip: ")
	bw.WriteString(clientAddress(c.proxy.TrustedProxies, cfIP, string(chain), c.ip))
	bw.WriteString("\r\nX-Forwarded-For: ")
	if len(chain) > 0 {
		bw.Write(chain)
		bw.WriteString(", ")
	}
	bw.WriteString(c.ip)
	bw.WriteString("\r\n")
}

// handshake runs the TLS handshake, bounded by the proxy's HandshakeTimeout so a
// client that stalls in it cannot hold the connection's goroutine.
func (c *clientConn) handshake(tc *tls.Conn) bool {
	tc.SetDeadline(time.Now().Add(c.proxy.HandshakeTimeout))
	if err := tc.HandshakeContext(c.srv.ctx); err != nil {
		c.proxy.logger.Debug("TLS handshake failed", "client", c.ip, "err", err)
		return false
	}
	return tc.SetDeadline(time.Time{}) == nil
}

// handOffH2 gives a connection that negotiated HTTP/2 to the net/http server as it
// is: net/http speaks h2 on a *tls.Conn only. Its address is released by the
// server's ConnState hook.
func (c *clientConn) handOffH2(tc *tls.Conn) bool {
	return c.srv.handoff.give(tc)
}

// relay reads the upstream's response and writes it to the client. It reports whether
// the client connection can go on, and whether uc can be reused.
func (c *clientConn) relay(fw *forwarder, uc *upConn) (keep, reuse bool) {
	rs := &c.resp
	for {
		if err := c.readResponseHead(uc); err != nil {
			return c.failed(fw, err), false
		}
		if rs.status >= 200 {
			break
		}
		if rs.status == http.StatusSwitchingProtocols {
			// Not asked for: the fast path sends no Upgrade.
			return c.failed(fw, malformed("unexpected status", rs.head[:rs.lineEnd])), false
		}
		c.writeResponseHead(false, false) // 1xx (103 Early Hints, ...): passed on
	}

	body := rs.hasBody(c.req.head)
	untilClose := body && !rs.chunked && rs.length < 0
	closeClient := c.req.close || untilClose || c.srv.closing.Load()
	c.writeResponseHead(true, closeClient)
	var err error
	switch {
	case !body:
	case rs.chunked:
		err = c.copyChunked(uc)
	default:
		err = c.copyBody(uc, rs.length)
	}
	if err != nil {
		c.cut(fw, err)
		return false, false
	}
	return !closeClient, !rs.close && !untilClose && uc.br.Buffered() == 0
}

// failed answers a request whose upstream failed before the response started, as
// forwarder.handleError does, and reports whether the client connection can go on.
func (c *clientConn) failed(fw *forwarder, err error) bool {
	if c.gone.Load() || errors.Is(err, errClientWrite) {
		// The client went away: not the upstream's fault, and nobody reads the answer.
		c.proxy.logger.Debug("Client gone before upstream answered", "host", fw.host, "upstream", fw.upstream.name, "error", err)
		return false
	}
	c.proxy.upstreamErrors.Add(1)
	c.proxy.logger.Warn("Upstream request failed", "host", fw.host, "upstream", fw.upstream.name,
		"method", c.req.method, "path", string(c.buf[c.req.path.start:c.req.path.end]), "error", err)
	c.writePage(func(w http.ResponseWriter) { writeBadGateway(w, fw.host) })
	return !c.req.close
}

// cut ends a response whose body could not be relayed to its end: the client
// connection is closed, which is all that tells the client (as httputil does).
func (c *clientConn) cut(fw *forwarder, err error) {
	if c.gone.Load() || errors.Is(err, errClientWrite) {
		c.proxy.logger.Debug("Client gone during response", "host", fw.host, "upstream", fw.upstream.name, "error", err)
		return
	}
	c.proxy.logger.Warn("Upstream response cut short", "host", fw.host, "upstream", fw.upstream.name,
		"method", c.req.method, "path", string(c.buf[c.req.path.start:c.req.path.end]), "error", err)
}

// writePage writes one of the proxy's own pages (pages.go) to the client.
func (c *clientConn) writePage(page func(http.ResponseWriter)) {
	w := &pageWriter{header: http.Header{}}
	page(w)
	c.bw.WriteString("HTTP/1.1 ")
	c.bw.WriteString(strconv.Itoa(w.status))
	c.bw.WriteString(" ")
	c.bw.WriteString(http.StatusText(w.status))
	c.bw.WriteString("\r\n")
	w.header.Del("Content-Length")
	w.header.Write(c.bw)
	c.bw.WriteString("Content-Length: ")
	c.bw.WriteString(strconv.Itoa(len(w.body)))
	c.bw.WriteString("\r\n")
	if c.req.close || c.srv.closing.Load() {
		c.bw.WriteString("Connection: close\r\n")
	}
	if c.hsts != nil && c.tls {
		c.bw.Write(c.hsts)
	}
	c.bw.Write(c.srv.dateLine())
	c.bw.WriteString("\r\n")
	if !c.req.head {
		c.bw.Write(w.body)
	}
}

// pageWriter collects a page written for a ResponseWriter.
type pageWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *pageWriter) Header() http.Header { return w.header }

func (w *pageWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *pageWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}

func (c *clientConn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	if err := c.bw.Flush(); err != nil {
		return errClientWrite
	}
	return nil
}

// stalled is called (through upConn.onStall) when a read from the upstream meets the
// deadline send set: the request has waited watchClientAfter. From then on a
// goroutine reads from the client, as net/http's server does during every request, so
// that a client hanging up ends its request (a long poll, an event stream) rather than
// leaving it to hold the upstream, which Drain waits for. Quick requests, nearly all,
// never pay for that goroutine. It reports whether the read should go on.
func (c *clientConn) stalled(uc *upConn) bool {
	if c.watching || c.gone.Load() {
		return false // the deadline is the watcher's: the client is gone
	}
	uc.conn.SetReadDeadline(time.Time{})
	c.conn.SetReadDeadline(time.Time{})
	c.watching = true
	c.watchDone = make(chan struct{})
	go c.watch()
	return true
}

func (c *clientConn) watch() {
	defer close(c.watchDone)
	n, err := c.conn.Read(c.watchByte[:])
	switch {
	case n > 0:
		// The next request, pipelined: the client is there. Like net/http, watch
		// no longer.
		c.watchGot = true
	case errors.Is(err, os.ErrDeadlineExceeded):
		// stopWatching.
	default:
		c.gone.Store(true)
		if uc := c.up.Load(); uc != nil {
			uc.conn.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// stopWatching stops the watcher, if one started, and waits for it. The request head
// must have been handled (r moved past it), as a byte the watcher read is appended.
func (c *clientConn) stopWatching() {
	if !c.watching {
		return
	}
	c.conn.SetReadDeadline(aLongTimeAgo)
	<-c.watchDone
	c.watching = false
	c.deadline = aLongTimeAgo // the next wait sets its own
	if c.watchGot {
		c.watchGot = false
		if c.w == len(c.buf) {
			c.makeRoom()
		}
		c.buf[c.w] = c.watchByte[0]
		c.w++
	}
}
