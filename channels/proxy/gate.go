package proxy

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// gateConn is a handed-off client connection as net/http reads it, with the bytes the
// fast path had already read coming first.
//
// net/http takes some requests RFC 9112 has a proxy refuse (see request.parse), and
// reads every later request on the connection itself. So every head is checked by
// request.parse before net/http gets its last byte, and the bodies between are framed,
// as net/http frames them, to find the next head. A head, chunk line or trailer that
// fails is replaced by a line net/http cannot read either ("\x00"): it answers 400 and
// closes, and nothing of it reaches the upstream. Where this framing and net/http's could
// differ, this one is the stricter, and refuses.
type gateConn struct {
	net.Conn
	buf        []byte // read from Conn: buf[r:ok] checked and not yet read, buf[ok:w] not checked
	r, ok, w   int
	from       int // where the search for the end of a head goes on from
	blankLines int // CR and LF skipped before the head, as net/http skips them
	state      gateState
	remain     int64 // of the body or chunk
	trailer    int   // bytes of trailer fields so far
	req        request
	failed     atomic.Bool
	onClose    func()
	closeOnce  sync.Once
	tls        bool   // Conn is a *tls.Conn (net/http cannot see it through the gate)
	ip         string // the client's address, as X-Forwarded-For has it
}

type gateState uint8

const (
	gateHead gateState = iota
	gateBody
	gateChunkLine
	gateChunkData
	gateChunkEnd
	gateTrailer
	gateOpen // after an Upgrade request: not HTTP any more, or closed after it (see ServeHTTP)
	gateShut // a refused line was given in place of the rest
)

// maxTrailer is what net/http takes of a chunked body's trailer (its buffer's size).
const maxTrailer = 4 << 10

func newGateConn(conn net.Conn, buf []byte, r, w int, onClose func()) *gateConn {
	return &gateConn{Conn: conn, buf: buf, r: r, ok: r, w: w, from: r, onClose: onClose}
}

func (g *gateConn) Read(p []byte) (int, error) {
	for g.r == g.ok {
		if g.state == gateShut {
			return 0, g.discard()
		}
		if g.ok == g.w && (g.state == gateOpen || g.state == gateBody || g.state == gateChunkData) {
			return g.readDirect(p)
		}
		if !g.check() {
			if err := g.fill(); err != nil {
				return 0, err
			}
		}
	}
	// What else has come is checked now too: a failure right after these bytes then
	// reaches net/http with them (the end of a chunk, say), before it asks the upstream.
	for g.ok < g.w && g.check() {
	}
	n := copy(p, g.buf[g.r:g.ok])
	g.r += n
	return n, nil
}

// readDirect reads body bytes, or anything once open, straight into p.
func (g *gateConn) readDirect(p []byte) (int, error) {
	if g.state == gateOpen {
		return g.Conn.Read(p)
	}
	n, err := g.Conn.Read(p[:min(int64(len(p)), g.remain)])
	g.advance(int64(n))
	return n, err
}

// fill reads more from the connection into buf.
func (g *gateConn) fill() error {
	switch {
	case g.r == g.w:
		g.r, g.ok, g.w, g.from = 0, 0, 0, 0
		if len(g.buf) > maxFastHead {
			g.buf = make([]byte, clientBufferSize) // after a long head
		}
	case g.w == len(g.buf) && g.r > 0:
		copy(g.buf, g.buf[g.r:g.w])
		g.ok, g.w, g.from, g.r = g.ok-g.r, g.w-g.r, g.from-g.r, 0
	case g.w == len(g.buf):
		g.buf = append(g.buf, make([]byte, len(g.buf))...)
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// check checks what it can of buf[ok:w] and reports whether it got anywhere; false
// means it needs more bytes.
func (g *gateConn) check() bool {
	b := g.buf[:g.w]
	switch g.state {
	case gateShut:
		return false
	case gateOpen:
		progress := g.ok < g.w
		g.ok = g.w
		return progress
	case gateHead:
		return g.checkHead(b)
	case gateBody, gateChunkData:
		n := min(int64(g.w-g.ok), g.remain)
		g.ok += int(n)
		g.advance(n)
		return n > 0
	case gateChunkEnd:
		if g.w-g.ok < 2 {
			return false
		}
		if string(b[g.ok:g.ok+2]) != "\r\n" {
			return g.shut()
		}
		g.ok += 2
		g.state = gateChunkLine
		return true
	}
	line, ok := g.line(b)
	if !ok {
		return false
	}
	if g.state == gateChunkLine {
		size, ok := parseChunkSize(line)
		switch {
		case !ok:
			return g.shut()
		case size == 0:
			g.state, g.trailer = gateTrailer, 0
		default:
			g.state, g.remain = gateChunkData, size
		}
	} else {
		g.trailer += len(line)
		if len(line) > 2 && !isTrailerField(line) || g.trailer > maxTrailer {
			return g.shut()
		}
		if len(line) == 2 {
			g.state = gateHead
		}
	}
	g.ok += len(line)
	g.from = g.ok
	return true
}

// line returns the line (with its CRLF) at buf[ok:] of a chunked body, or false if it
// has not all come. One too long to be read, or ending in a bare LF, fails.
func (g *gateConn) line(b []byte) ([]byte, bool) {
	i := bytes.IndexByte(b[g.ok:], '\n')
	if i < 0 {
		if g.w-g.ok > maxChunkLine {
			g.shut()
			return nil, true
		}
		return nil, false
	}
	line := b[g.ok : g.ok+i+1]
	if len(line) < 2 || line[len(line)-2] != '\r' {
		g.shut()
		return nil, true
	}
	return line, true
}

func isTrailerField(line []byte) bool {
	_, _, ok := parseField(line[:len(line)-2])
	return ok
}

func (g *gateConn) checkHead(b []byte) bool {
	if g.from == g.ok && g.ok < g.w && g.blankLines < 4 && (b[g.ok] == '\r' || b[g.ok] == '\n') {
		// net/http skips up to 4 CR or LF after a POST (old clients' extra CRLF), and
		// refuses them elsewhere: passing as many on lets it choose.
		g.blankLines++
		g.ok++
		g.from = g.ok
		return true
	}
	end, next := headEnd(b, g.from)
	if end == 0 {
		g.from = next
		if g.w-g.ok > maxHead {
			return g.shut()
		}
		return false
	}
	q := &g.req
	if q.parse(b, g.ok, end) == rejectIt {
		return g.shut()
	}
	g.ok, g.from, g.blankLines = end, end, 0
	switch {
	case q.upgrade:
		g.state = gateOpen
	case q.chunked:
		g.state = gateChunkLine
	case q.length > 0:
		g.state, g.remain = gateBody, q.length
	}
	return true
}

// advance counts n bytes of a body or chunk, checked.
func (g *gateConn) advance(n int64) {
	g.remain -= n
	if g.remain > 0 {
		return
	}
	g.from = g.ok
	if g.state == gateBody {
		g.state = gateHead
	} else {
		g.state = gateChunkEnd
	}
}

// shut puts a refused line in place of what was not checked. Its blank line makes it
// long enough for net/http's wait for the next request (a Peek of 4 bytes), and in a
// trailer for its look for the end.
func (g *gateConn) shut() bool {
	g.buf = append(g.buf[:g.ok], "\x00\r\n\r\n"...)
	g.w = len(g.buf)
	g.ok = g.w
	g.state = gateShut
	g.failed.Store(true)
	return true
}

// discard reads, once shut, as a client that sends nothing more would be read: an end
// of file here would tell net/http the client is gone, and it would cancel the request
// in flight.
func (g *gateConn) discard() error {
	var scratch [512]byte
	for {
		if _, err := g.Conn.Read(scratch[:]); err != nil {
			return err
		}
	}
}

// CloseWrite lets net/http half-close the connection after an error response, as it
// does on a bare *net.TCPConn, so that the client reads the response before a reset.
func (g *gateConn) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (g *gateConn) Close() error {
	if g.failed.Load() {
		// net/http closes at once after its 400: let the client read it.
		lingerClose(g.Conn)
	}
	err := g.Conn.Close()
	g.closeOnce.Do(func() {
		if g.onClose != nil {
			g.onClose()
		}
	})
	return err
}
