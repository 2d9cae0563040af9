package proxy

import "bytes"

// Parsing of request and response heads for Serve's fast path. The heads are parsed in
// place, as spans of the connection's buffer, and the lines that go on unchanged are
// written through as they came: no header map, no canonical names.

// verdict is what the fast path does with a request head.
type verdict int

const (
	forwardIt verdict = iota // simple and well formed: the fast path forwards it
	handItOff                // net/http decides (a body, an upgrade, HTTP/1.0, ...)
	rejectIt                 // malformed: 400 and close
)

// field is one header field line of a head: buf[start:end] is the line with its CRLF,
// buf[start:nameEnd] the name.
type field struct {
	start, end, nameEnd int
	kind                fieldKind
	drop                bool // not passed on
}

type span struct{ start, end int }

// fieldKind names the fields either path treats specially; the rest are fieldOther.
type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldHost
	fieldConnection
	fieldContentLength
	fieldTransferEncoding
	fieldUpgrade
	fieldExpect
	fieldTE
	fieldTrailer
	fieldKeepAlive
	fieldProxyConnection
	fieldProxyAuthenticate
	fieldProxyAuthorization
	fieldForwarded
	fieldXForwardedFor
	fieldXForwardedHost
	fieldXForwardedProto
	fieldPragma
	fieldCacheControl
	fieldDate
)

func fieldOf(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return fieldTE
		}
	case 4:
		switch {
		case equalFold(name, "host"):
			return fieldHost
		case equalFold(name, "date"):
			return fieldDate
		}
	case 6:
		switch {
		case equalFold(name, "expect"):
			return fieldExpect
		case equalFold(name, "pragma"):
			return fieldPragma
		}
	case 7:
		switch {
		case equalFold(name, "upgrade"):
			return fieldUpgrade
		case equalFold(name, "trailer"):
			return fieldTrailer
		}
	case 9:
		if equalFold(name, "forwarded") {
			return fieldForwarded
		}
	case 10:
		switch {
		case equalFold(name, "connection"):
			return fieldConnection
		case equalFold(name, "keep-alive"):
			return fieldKeepAlive
		}
	case 13:
		if equalFold(name, "cache-control") {
			return fieldCacheControl
		}
	case 14:
		if equalFold(name, "content-length") {
			return fieldContentLength
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return fieldXForwardedFor
		}
	case 16:
		switch {
		case equalFold(name, "x-forwarded-host"):
			return fieldXForwardedHost
		case equalFold(name, "proxy-connection"):
			return fieldProxyConnection
		}
	case 17:
		switch {
		case equalFold(name, "x-forwarded-proto"):
			return fieldXForwardedProto
		case equalFold(name, "transfer-encoding"):
			return fieldTransferEncoding
		}
	case 18:
		if equalFold(name, "proxy-authenticate") {
			return fieldProxyAuthenticate
		}
	case 19:
		if equalFold(name, "proxy-authorization") {
			return fieldProxyAuthorization
		}
	}
	return fieldOther
}

// equalFold compares an ASCII name with a lower-case constant, ignoring case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Byte classes, one bit each.
const (
	classToken = 1 << iota // RFC 9110 tchar: field names, methods
	classValue             // field-vchar, SP, HT: field values
	classPath              // left as is in a path by net/url (what net/http would send on)
	classQuery             // sent on as is in a query by the handler path
	classHost              // in a Host the fast path routes itself
	classHex
	classDigit
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if alnum || c < 128 && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(c)) >= 0 {
			t[c] |= classToken
		}
		if c == '\t' || c >= ' ' && c != 0x7f {
			t[c] |= classValue
		}
		// See url.validEncoded: these are kept verbatim in URL.EscapedPath.
		if alnum || c < 128 && bytes.IndexByte([]byte("-._~!$&'()*+,;=:@[]/%"), byte(c)) >= 0 {
			t[c] |= classPath
		}
		// The handler path re-encodes a query with ';' (cleanQueryParams), and a '#'
		// would not survive a round trip through url.URL.
		if c > ' ' && c < 0x7f && c != '#' && c != ';' {
			t[c] |= classQuery
		}
		if alnum || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']' {
			t[c] |= classHost
		}
		if '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			t[c] |= classHex
		}
		if '0' <= c && c <= '9' {
			t[c] |= classDigit
		}
	}
	return t
}()

func allIn(b []byte, class uint8) bool {
	for _, c := range b {
		if byteClass[c]&class == 0 {
			return false
		}
	}
	return true
}

// parseField splits a field line (without its CRLF) into name and trimmed value. It
// reports false for anything RFC 9110 does not allow: an empty name or one that is
// not a token (whitespace before the colon), a line starting with whitespace
// (obs-fold), no colon, control bytes in the value (bare CR, NUL, ...).
func parseField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name, value = line[:colon], trimOWS(line[colon+1:])
	return name, value, allIn(name, classToken) && allIn(value, classValue)
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// eachToken calls f with each element of a comma-separated field value, trimmed.
func eachToken(value []byte, f func(token []byte)) {
	for len(value) > 0 {
		var t []byte
		t, value, _ = bytes.Cut(value, []byte{','})
		if t = trimOWS(t); len(t) > 0 {
			f(t)
		}
	}
}

// hasToken reports whether a comma-separated value holds token, as
// httpguts.HeaderValuesContainsToken does.
func hasToken(value []byte, token string) (found bool) {
	eachToken(value, func(t []byte) { found = found || equalFold(t, token) })
	return found
}

// headEnd finds the blank line that ends a request head in b, starting at from (the
// start of a line or a line feed already seen). It returns the index just after the
// blank line, or 0 and where to go on from once more bytes have come. A bare LF ends
// lines too, as net/http reads them; the parser hands such heads off.
func headEnd(b []byte, from int) (end, next int) {
	for {
		i := bytes.IndexByte(b[from:], '\n')
		if i < 0 {
			return 0, len(b)
		}
		lf := from + i
		j := lf + 1
		switch {
		case j < len(b) && b[j] == '\n':
			return j + 1, 0
		case j+1 < len(b) && b[j] == '\r' && b[j+1] == '\n':
			return j + 2, 0
		case j == len(b) || j+1 == len(b) && b[j] == '\r':
			return 0, lf
		}
		from = j
	}
}

// request is a request head on the fast path, as spans of the client connection's
// buffer.
type request struct {
	lineEnd    int  // end of the request line, CRLF included (it starts the head)
	path       span // the target up to its query, for logs
	method     string
	head       bool // HEAD: the response has no body
	host       span // the Host value
	fields     []field
	tokens     []span // the options of Connection: the fields they name are dropped
	close      bool   // Connection: close
	teTrailers bool   // TE has "trailers", which goes on (httputil does the same)
	// net/http adds "Cache-Control: no-cache" to a request with "Pragma: no-cache" and
	// no Cache-Control (see fixPragmaCacheControl), so the fast path does too.
	addCacheControl bool
}

// parse parses the head buf[start:end] (headEnd found end) and decides what to do
// with it. Only what the fast path would forward is checked in full: a request it
// hands off is net/http's to judge, as before Serve existed.
func (q *request) parse(buf []byte, start, end int) verdict {
	*q = request{fields: q.fields[:0], tokens: q.tokens[:0]}
	lf := bytes.IndexByte(buf[start:end], '\n') + start
	if lf == start || buf[lf-1] != '\r' {
		return handItOff // a bare LF or a blank line first
	}
	q.lineEnd = lf + 1
	if v := q.parseRequestLine(buf[start:lf-1], start); v != forwardIt {
		return v
	}

	hosts, pragmas, cacheControl := 0, 0, false
	for pos := q.lineEnd; ; {
		lf := bytes.IndexByte(buf[pos:end], '\n') + pos
		if lf == pos || buf[lf-1] != '\r' {
			return handItOff // bare LF
		}
		if lf == pos+1 {
			break // the blank line
		}
		name, value, ok := parseField(buf[pos : lf-1])
		if !ok {
			return rejectIt
		}
		f := field{start: pos, end: lf + 1, nameEnd: pos + len(name), kind: fieldOf(name)}
		valueAt := spanOf(buf, value)
		switch f.kind {
		case fieldHost:
			hosts++
			q.host = valueAt
		case fieldConnection:
			f.drop = true
			eachToken(value, func(t []byte) {
				q.tokens = append(q.tokens, spanOf(buf, t))
				q.close = q.close || equalFold(t, "close")
			})
		case fieldContentLength:
			if len(value) != 1 || value[0] != '0' {
				return handItOff // a body
			}
			// A GET's "Content-Length: 0" is not sent on by http.Transport either.
			f.drop = true
		case fieldTransferEncoding, fieldUpgrade, fieldExpect:
			return handItOff
		case fieldTE:
			f.drop = true
			q.teTrailers = q.teTrailers || hasToken(value, "trailers")
		case fieldTrailer, fieldKeepAlive, fieldProxyConnection, fieldProxyAuthenticate, fieldProxyAuthorization,
			fieldForwarded, fieldXForwardedFor, fieldXForwardedHost, fieldXForwardedProto:
			// Hop-by-hop, or forwarding claims the proxy sets itself (httputil drops the
			// same ones).
			f.drop = true
		case fieldPragma:
			if pragmas == 0 && string(value) == "no-cache" {
				q.addCacheControl = true
			}
			pragmas++
		case fieldCacheControl:
			cacheControl = true
		}
		q.fields = append(q.fields, f)
		pos = lf + 1
	}
	if hosts != 1 {
		return rejectIt // as net/http does for HTTP/1.1
	}
	if host := buf[q.host.start:q.host.end]; len(host) == 0 || !allIn(host, classHost) {
		return handItOff
	}
	q.addCacheControl = q.addCacheControl && !cacheControl
	for _, t := range q.tokens {
		token := buf[t.start:t.end]
		for i := range q.fields {
			f := &q.fields[i]
			// The Host line stays: httputil sends the request's Host, whatever
			// Connection says.
			if f.kind != fieldHost && bytes.EqualFold(buf[f.start:f.nameEnd], token) {
				f.drop = true
			}
		}
	}
	return forwardIt
}

// parseRequestLine checks "METHOD SP target SP HTTP/x.y" (without CRLF), which starts
// buf at start.
func (q *request) parseRequestLine(line []byte, start int) verdict {
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 || !allIn(method, classToken) ||
		!allIn(target, classValue) || !isHTTPVersion(proto) {
		return rejectIt
	}
	switch string(method) {
	case "GET":
		q.method = "GET"
	case "HEAD":
		q.method, q.head = "HEAD", true
	case "OPTIONS":
		q.method = "OPTIONS"
	default:
		return handItOff // not to be sent twice, or a body
	}
	if string(proto) != "HTTP/1.1" || !sentAsIs(target) {
		return handItOff
	}
	path, _, _ := bytes.Cut(target, []byte{'?'})
	q.path = span{start + len(method) + 1, start + len(method) + 1 + len(path)}
	return forwardIt
}

func isHTTPVersion(b []byte) bool {
	return len(b) == len("HTTP/1.1") && string(b[:5]) == "HTTP/" &&
		'0' <= b[5] && b[5] <= '9' && b[6] == '.' && '0' <= b[7] && b[7] <= '9'
}

// sentAsIs reports whether the handler path would send an origin-form target upstream
// exactly as it came (net/url and httputil leave it alone), so that the fast path may
// write it through.
func sentAsIs(target []byte) bool {
	if target[0] != '/' {
		return false // absolute-form, asterisk-form
	}
	path, query, hasQuery := bytes.Cut(target, []byte{'?'})
	if !escapesValid(path, classPath) {
		return false
	}
	// httputil re-encodes a query with more parameters than this (cleanQueryParams).
	return !hasQuery || escapesValid(query, classQuery) && bytes.Count(query, []byte{'&'}) < 10000
}

// escapesValid reports whether b holds only bytes of class and every '%' starts a
// valid escape.
func escapesValid(b []byte, class uint8) bool {
	for i := 0; i < len(b); i++ {
		if byteClass[b[i]]&class == 0 {
			return false
		}
		if b[i] == '%' && (i+2 >= len(b) || byteClass[b[i+1]]&classHex == 0 || byteClass[b[i+2]]&classHex == 0) {
			return false
		}
	}
	return true
}

// spanOf returns where sub, a subslice of buf, is in buf.
func spanOf(buf, sub []byte) span {
	if len(sub) == 0 {
		return span{}
	}
	start := cap(buf) - cap(sub)
	return span{start, start + len(sub)}
}

// appendHostKey appends the route key of a Host value (see canonicalHost) to dst. The
// value holds only classHost bytes, so ASCII lower-casing is all strings.ToLower does.
func appendHostKey(dst, host []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && i > bytes.LastIndexByte(host, ']') {
		host = host[:i]
	}
	host = bytes.TrimSuffix(host, []byte{'.'})
	start := len(dst)
	dst = append(dst, host...)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; 'A' <= c && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst
}
