package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

const (
	// maxResponseHead bounds an upstream's response head (1xx included). http.Transport
	// allows 10 MB; a head is copied here, so the bound is lower and still generous.
	maxResponseHead = 1 << 20
	// maxChunkLine is the longest chunk size line, extensions included, as in net/http.
	maxChunkLine = 4 << 10
)

var (
	errMalformedResponse = errors.New("malformed response from upstream")
	// errClientWrite: writing to the client failed; the client went away.
	errClientWrite = errors.New("client connection lost")
)

func malformed(what string, b []byte) error {
	return fmt.Errorf("%w: %s %q", errMalformedResponse, what, b)
}

// response is an upstream's response head on the fast path, copied out of the upstream
// connection's buffer: a head may be larger than that buffer.
type response struct {
	head    []byte // status line and fields, CRLFs included
	lineEnd int    // end of the status line
	fields  []field
	tokens  []span
	status  int
	http10  bool  // an HTTP/1.0 upstream: its status line is sent as HTTP/1.1
	close   bool  // the upstream closes the connection after this response
	chunked bool  // the body is chunked (passed through as it is)
	length  int64 // Content-Length, -1 if none
	hasDate bool
}

// readResponseHead reads one response head (a 1xx or the final one) from uc.
func (c *clientConn) readResponseHead(uc *upConn) error {
	rs := &c.resp
	rs.head, rs.fields, rs.tokens = rs.head[:0], rs.fields[:0], rs.tokens[:0]
	var err error
	for {
		start := len(rs.head)
		rs.head, err = c.readUpLine(uc.br, rs.head, maxResponseHead)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		line := rs.head[start:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			// A bare LF ends a line too, as net/http reads responses: CGI
			// scripts print their header lines that way and busybox httpd
			// passes them on. The head goes on to the client with CRLFs.
			rs.head = append(rs.head[:len(rs.head)-1], '\r', '\n')
			line = rs.head[start:]
		}
		if start == 0 {
			rs.lineEnd = len(rs.head)
			continue
		}
		if len(line) == 2 {
			break
		}
		rs.fields = append(rs.fields, field{start: start, end: len(rs.head)})
	}
	return rs.parse(c.req.head)
}

// parse checks the head read by readResponseHead and works out the body's framing.
func (rs *response) parse(headRequest bool) error {
	line := rs.head[:rs.lineEnd-2]
	switch {
	case len(line) < len("HTTP/1.1 200"):
		return malformed("status line", line)
	case string(line[:9]) == "HTTP/1.1 ":
		rs.http10 = false
	case string(line[:9]) == "HTTP/1.0 ":
		rs.http10 = true
	default:
		return malformed("status line", line)
	}
	code, reason := line[9:12], line[12:]
	if !allIn(code, classDigit) || code[0] == '0' || len(reason) > 0 && (reason[0] != ' ' || !allIn(reason, classValue)) {
		return malformed("status line", line)
	}
	rs.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	rs.close, rs.chunked, rs.length, rs.hasDate = rs.http10, false, -1, false

	var te []byte
	tes, emptyLength := 0, false
	for i := range rs.fields {
		f := &rs.fields[i]
		name, value, ok := parseField(rs.head[f.start : f.end-2])
		if !ok {
			return malformed("field", rs.head[f.start:f.end])
		}
		f.nameEnd, f.kind = f.start+len(name), fieldOf(name)
		switch f.kind {
		case fieldConnection:
			f.drop = true
			eachToken(value, func(t []byte) {
				rs.tokens = append(rs.tokens, spanOf(rs.head, t))
				rs.close = rs.close || equalFold(t, "close")
			})
		case fieldKeepAlive, fieldProxyConnection, fieldProxyAuthenticate, fieldProxyAuthorization, fieldTE, fieldUpgrade:
			f.drop = true // hop-by-hop, as httputil drops them
		case fieldTransferEncoding:
			// The fast path writes the framing itself (see writeResponseHead).
			f.drop = true
			te = value
			tes++
		case fieldContentLength:
			if len(value) == 0 {
				// Read as none, as net/http did before Go 1.22; but beside another
				// Content-Length it is a second, different one, as net/http has it.
				if rs.length >= 0 {
					return malformed("Content-Length", rs.head[f.start:f.end])
				}
				emptyLength, f.drop = true, true
				continue
			}
			n, ok := parseLength(value)
			switch {
			case !ok || emptyLength || rs.length >= 0 && n != rs.length:
				return malformed("Content-Length", rs.head[f.start:f.end])
			case rs.length >= 0:
				f.drop = true // a repeat of the same length: sent once, as net/http does
			}
			rs.length = n
		case fieldDate:
			rs.hasDate = true
		}
	}
	// Like net/http: HTTP/1.0 knows no Transfer-Encoding, and a chunked body has no
	// length.
	if tes > 0 && !rs.http10 {
		if tes > 1 || !equalFold(te, "chunked") {
			return malformed("Transfer-Encoding", te)
		}
		rs.chunked = true
	}
	for i := range rs.fields {
		f := &rs.fields[i]
		switch {
		case f.kind == fieldContentLength && rs.chunked:
			f.drop = true
		case f.kind == fieldTrailer:
			// Declares the trailers of a chunked body, which go through with it.
			f.drop = !rs.chunked || headRequest
		}
		for _, t := range rs.tokens {
			// Framing stays whatever Connection names: the fast path relies on it.
			if f.kind != fieldContentLength && bytes.EqualFold(rs.head[f.start:f.nameEnd], rs.head[t.start:t.end]) {
				f.drop = true
			}
		}
	}
	return nil
}

// parseLength parses a Content-Length value.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 || !allIn(b, classDigit) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasBody reports whether the final response carries a body.
func (rs *response) hasBody(headRequest bool) bool {
	return !headRequest && rs.status != 204 && rs.status != 304
}

// writeResponseHead writes the head in rs to the client. The final head gets the
// framing of the body as the fast path sends it, and Connection: close when the
// client connection ends after it.
func (c *clientConn) writeResponseHead(final, closeClient bool) {
	rs := &c.resp
	if rs.http10 {
		c.bw.WriteString("HTTP/1.1")
		c.bw.Write(rs.head[len("HTTP/1.0"):rs.lineEnd])
	} else {
		c.bw.Write(rs.head[:rs.lineEnd])
	}
	for _, f := range rs.fields {
		if !f.drop {
			c.bw.Write(rs.head[f.start:f.end])
		}
	}
	if final {
		if rs.chunked && rs.hasBody(c.req.head) {
			c.bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
		if closeClient {
			c.bw.WriteString("Connection: close\r\n")
		}
		if c.hsts != nil && c.tls {
			c.bw.Write(c.hsts)
		}
		if !rs.hasDate {
			// RFC 9110, 6.6.1: a proxy adds the Date an origin did not send, and
			// net/http's server did so on the handler path.
			c.bw.Write(c.srv.dateLine())
		}
	}
	c.bw.WriteString("\r\n")
}

// readUpLine appends a line (up to and with its LF) from the upstream to dst. What the
// client has been written is flushed before waiting for the upstream, so nothing is
// held back behind a slow upstream.
func (c *clientConn) readUpLine(br *bufio.Reader, dst []byte, limit int) ([]byte, error) {
	for {
		if c.bw.Buffered() > 0 {
			if buffered, _ := br.Peek(br.Buffered()); bytes.IndexByte(buffered, '\n') < 0 {
				if err := c.bw.Flush(); err != nil {
					return dst, errClientWrite
				}
			}
		}
		frag, err := br.ReadSlice('\n')
		dst = append(dst, frag...)
		if err != bufio.ErrBufferFull {
			return dst, err
		}
		if len(dst) > limit {
			return dst, malformed("line too long", dst[:40])
		}
	}
}

// copyBody copies n bytes of body from the upstream to the client, or everything up
// to the upstream's EOF if n < 0.
func (c *clientConn) copyBody(uc *upConn, n int64) error {
	untilEOF := n < 0
	if untilEOF {
		n = math.MaxInt64
	}
	br := uc.br
	for n > 0 {
		if br.Buffered() == 0 {
			// The upstream has sent nothing more yet: what the client has been written
			// goes out now (a stream, server-sent events), before waiting.
			if err := c.flush(); err != nil {
				return err
			}
			if n >= int64(br.Size()) {
				// A large body skips the small buffer: one read, one write.
				m, err := c.copyDirect(uc, n)
				n -= m
				if err != nil {
					if err == io.EOF && untilEOF {
						return nil
					}
					return unexpectedEOF(err)
				}
				continue
			}
		}
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF && untilEOF {
				return nil
			}
			return unexpectedEOF(err)
		}
		b, _ := br.Peek(int(min(int64(br.Buffered()), n)))
		if _, err := c.bw.Write(b); err != nil {
			return errClientWrite
		}
		br.Discard(len(b))
		n -= int64(len(b))
	}
	return nil
}

// copyDirect reads once from the upstream into a large buffer and writes that to the
// client connection; the client's buffered writer must be empty.
func (c *clientConn) copyDirect(uc *upConn, max int64) (int64, error) {
	if c.copyBuf == nil {
		c.copyBuf = c.proxy.buffers.Get()
	}
	buf := c.copyBuf
	if int64(len(buf)) > max {
		buf = buf[:max]
	}
	n, err := upReader{uc}.Read(buf)
	if n > 0 {
		if _, werr := c.conn.Write(buf[:n]); werr != nil {
			return int64(n), errClientWrite
		}
	}
	return int64(n), err
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// copyChunked passes a chunked body through as it is, chunk extensions and trailers
// included, reading its framing to find where it ends.
func (c *clientConn) copyChunked(uc *upConn) error {
	for {
		line, err := c.readUpLine(uc.br, c.line[:0], maxChunkLine)
		c.line = line
		if err != nil {
			return unexpectedEOF(err)
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return malformed("chunk size", line)
		}
		if _, err := c.bw.Write(line); err != nil {
			return errClientWrite
		}
		if size == 0 {
			return c.copyTrailers(uc)
		}
		if err := c.copyBody(uc, size); err != nil {
			return err
		}
		line, err = c.readUpLine(uc.br, c.line[:0], maxChunkLine)
		c.line = line
		if err != nil {
			return unexpectedEOF(err)
		}
		if string(line) != "\r\n" {
			return malformed("chunk end", line)
		}
		if _, err := c.bw.Write(line); err != nil {
			return errClientWrite
		}
	}
}

// copyTrailers passes the trailer fields after the last chunk through, and the blank
// line that ends the body.
func (c *clientConn) copyTrailers(uc *upConn) error {
	total := 0
	for {
		line, err := c.readUpLine(uc.br, c.line[:0], maxResponseHead)
		c.line = line
		if err != nil {
			return unexpectedEOF(err)
		}
		total += len(line)
		if len(line) < 2 || line[len(line)-2] != '\r' || total > maxResponseHead {
			return malformed("trailer", line)
		}
		if len(line) > 2 {
			if _, _, ok := parseField(line[:len(line)-2]); !ok {
				return malformed("trailer", line)
			}
		}
		if _, err := c.bw.Write(line); err != nil {
			return errClientWrite
		}
		if len(line) == 2 {
			return nil
		}
	}
}

// parseChunkSize parses a chunk size line: hex digits, optional extensions, CRLF.
func parseChunkSize(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, false
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line) && byteClass[line[i]]&classHex != 0; i++ {
		if i == 15 {
			return 0, false // more than 2^60: nobody sends that, and it could overflow
		}
		n = n<<4 | int64(hexValue(line[i]))
	}
	if i == 0 {
		return 0, false
	}
	rest := trimOWS(line[i:])
	if len(rest) > 0 && (rest[0] != ';' || !allIn(rest, classValue)) {
		return 0, false
	}
	return n, true
}

func hexValue(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
