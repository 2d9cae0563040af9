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
	fieldXRealIP
	fieldCFConnectingIP
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
		switch {
		case equalFold(name, "forwarded"):
			return fieldForwarded
		case equalFold(name, "x-real-ip"):
			return fieldXRealIP
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
		case equalFold(name, "cf-connecting-ip"):
			return fieldCFConnectingIP
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
	classToken  = 1 << iota // RFC 9110 tchar: field names, methods
	classValue              // field-vchar, SP, HT: field values
	classPath               // left as is in a path by net/url (what net/http would send on)
	classQuery              // sent on as is in a query by the handler path
	classHost               // in a Host the fast path routes itself
	classTarget             // in a request target: visible, no whitespace
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
		if c > ' ' && c != 0x7f {
			t[c] |= classTarget
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

// Limits on a request head, on both paths. net/http allows 1 MB and any number of
// fields; a count bounds the work a head costs, and 256 is far above the twenty or so
// fields a browser sends.
const (
	maxHead       = 1 << 20
	maxHeadFields = 256
)

// request is a request head on the fast path, as spans of the client connection's
// buffer.
type request struct {
	lineEnd    int  // end of the request line, CRLF included (it starts the head)
	target     span // the request target
	path       span // the target up to its query, for logs
	method     string
	head       bool // HEAD: the response has no body
	http11     bool // HTTP/1.1 or later
	host       span // the Host value
	fields     []field
	tokens     []span // the options of Connection: the fields they name are dropped
	close      bool   // Connection: close
	teTrailers bool   // TE has "trailers", which goes on (httputil does the same)
	// net/http adds "Cache-Control: no-cache" to a request with "Pragma: no-cache" and
	// no Cache-Control (see fixPragmaCacheControl), so the fast path does too.
	addCacheControl bool

	// The body's framing, and what to answer a head that is refused.
	length  int64 // Content-Length, -1 if none
	chunked bool
	upgrade bool // asks to switch protocols: what follows the head may not be HTTP
	status  int  // with rejectIt: 400, 431 or 501

	// The forwarding claims, dropped and written again as the peer is trusted or not
	// (see forwarded.go): the X-Forwarded-For values in order, the first
	// X-Forwarded-Proto, CF-Connecting-IP.
	xff       []span
	xfp, cfIP span
	hasXFP    bool
	hasCFIP   bool
}

// parse parses the head buf[start:end] (headEnd found end) and decides what to do
// with it. Every head is checked in full, those it hands off too: net/http takes some
// that RFC 9112 has a proxy refuse (Content-Length with Transfer-Encoding, obs-fold,
// Transfer-Encoding in HTTP/1.0), and reads them its own way once it has them.
func (q *request) parse(buf []byte, start, end int) verdict {
	*q = request{fields: q.fields[:0], tokens: q.tokens[:0], xff: q.xff[:0], length: -1}
	if end-start > maxHead {
		return q.refuse(431)
	}
	// Lines end in CRLF; a bare LF, as net/http reads lines too, hands the head off.
	// The head holds a blank line, so there is always an LF.
	lf := start + bytes.IndexByte(buf[start:end], '\n')
	stop := lf - 1
	if lf == start || buf[stop] != '\r' {
		stop++
	}
	q.lineEnd = lf + 1
	v := q.parseRequestLine(buf[start:stop], start)
	if v == rejectIt {
		return q.refuse(400)
	}
	if stop == lf {
		v = handItOff
	}
	var te codings
	hosts, pragmas, cacheControl, upgrade := 0, 0, false, false
	for n, pos := 0, q.lineEnd; ; n++ {
		lf := pos + bytes.IndexByte(buf[pos:end], '\n')
		stop := lf - 1
		if lf == pos || buf[stop] != '\r' {
			stop++
		}
		if stop == pos {
			break // the blank line
		}
		if n == maxHeadFields {
			return q.refuse(431)
		}
		name, value, ok := parseField(buf[pos:stop])
		if !ok {
			return q.refuse(400)
		}
		if stop == lf {
			v = handItOff
		}
		f := field{start: pos, end: lf + 1, nameEnd: pos + len(name), kind: fieldOf(name)}
		switch f.kind {
		case fieldHost:
			hosts++
			q.host = spanOf(buf, value)
		case fieldConnection:
			f.drop = true
			eachToken(value, func(t []byte) {
				q.tokens = append(q.tokens, spanOf(buf, t))
				q.close = q.close || equalFold(t, "close")
			})
		case fieldContentLength:
			// One line only, even a repeat of the same length: RFC 9110 §8.6 lets a
			// recipient fold those, but nginx refuses them too, and a single rule leaves
			// no reader behind the proxy a second way to count.
			length, ok := parseLength(value)
			if !ok || q.length >= 0 {
				return q.refuse(400)
			}
			q.length = length
			if length > 0 {
				v = max(v, handItOff) // a body
			}
			// A GET's "Content-Length: 0" is not sent on by http.Transport either.
			f.drop = true
		case fieldTransferEncoding:
			te.add(value)
			v = max(v, handItOff)
		case fieldUpgrade:
			upgrade = true
			v = max(v, handItOff)
		case fieldExpect:
			v = max(v, handItOff)
		case fieldTE:
			f.drop = true
			q.teTrailers = q.teTrailers || hasToken(value, "trailers")
		case fieldXForwardedFor:
			f.drop = true
			q.xff = append(q.xff, spanOf(buf, value))
		case fieldXForwardedProto:
			f.drop = true
			if !q.hasXFP {
				q.xfp, q.hasXFP = spanOf(buf, value), true
			}
		case fieldCFConnectingIP:
			f.drop = true
			if !q.hasCFIP {
				q.cfIP, q.hasCFIP = spanOf(buf, value), true
			}
		case fieldTrailer, fieldKeepAlive, fieldProxyConnection, fieldProxyAuthenticate, fieldProxyAuthorization,
			fieldForwarded, fieldXForwardedHost, fieldXRealIP:
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
		case fieldOther:
			// CGI and WSGI read X_Forwarded_For and X-Forwarded-For as one
			// variable: dropped, as nginx and Apache drop them, so a client
			// cannot pass off its own forwarding fields to such an app.
			f.drop = bytes.IndexByte(name, '_') >= 0
		}
		q.fields = append(q.fields, f)
		pos = lf + 1
	}
	// As ReverseProxy and isUpgrade read it: without Connection: upgrade the field is
	// dropped, and the connection stays HTTP.
	for i := 0; upgrade && i < len(q.tokens) && !q.upgrade; i++ {
		q.upgrade = equalFold(buf[q.tokens[i].start:q.tokens[i].end], "upgrade")
	}
	if status := q.checkFraming(&te); status != 0 {
		return q.refuse(status)
	}
	if hosts > 1 || hosts == 0 && q.http11 || hosts == 1 && !q.hostMatchesTarget(buf) {
		return q.refuse(400) // RFC 9112 §3.2, §3.2.2
	}
	if hosts == 0 {
		return handItOff // HTTP/1.0 without a Host: net/http's page
	}
	if host := buf[q.host.start:q.host.end]; len(host) == 0 || !allIn(host, classHost) {
		v = max(v, handItOff)
	}
	if v != forwardIt {
		return v
	}
	q.addCacheControl = q.addCacheControl && !cacheControl
	q.dropNamedFields(buf)
	return forwardIt
}

func (q *request) refuse(status int) verdict {
	q.status = status
	return rejectIt
}

// codings is the list of transfer codings of every Transfer-Encoding line, which
// combine as one list (RFC 9110 §5.3).
type codings struct {
	lines, n, chunked int
	lastChunked       bool // an empty list has no final coding either
}

func (c *codings) add(value []byte) {
	c.lines++
	eachToken(value, func(t []byte) {
		c.n++
		c.lastChunked = equalFold(t, "chunked")
		if c.lastChunked {
			c.chunked++
		}
	})
}

// checkFraming applies RFC 9112 §6 to the body's framing, and returns the status of a
// refusal or 0. These are the heads two readers may frame differently: each is refused
// and its connection closed, never forwarded in one reading or another.
func (q *request) checkFraming(te *codings) int {
	if te.lines == 0 {
		return 0
	}
	switch {
	case !q.http11, q.length >= 0:
		// §6.1: HTTP/1.0 has no Transfer-Encoding, and one with a Content-Length is
		// a smuggling attempt. net/http would drop the Content-Length and go on.
		return 400
	case !te.lastChunked || te.chunked > 1:
		return 400 // §6.3: no length can be known
	case te.chunked != te.n:
		return 501 // codings before chunked (gzip, ...): §6.1, and what net/http answers
	}
	q.chunked = true
	return 0
}

// hostMatchesTarget reports whether an absolute-form target names the host Host does
// (RFC 9112 §3.2: a client sends them identical). net/http routes by the target, a
// firewall before the proxy may have gone by Host: a request that differs is refused,
// and so is one with userinfo, which RFC 9110 §4.2.4 has recipients treat as an error.
func (q *request) hostMatchesTarget(buf []byte) bool {
	target := buf[q.target.start:q.target.end]
	if target[0] == '/' {
		return true // origin-form
	}
	i := bytes.Index(target, []byte("://"))
	if i <= 0 {
		return true // asterisk-form, authority-form (CONNECT)
	}
	authority := target[i+3:]
	if j := bytes.IndexAny(authority, "/?#"); j >= 0 {
		authority = authority[:j]
	}
	return bytes.IndexByte(authority, '@') < 0 && bytes.EqualFold(authority, buf[q.host.start:q.host.end])
}

// dropNamedFields drops the fields that Connection names.
func (q *request) dropNamedFields(buf []byte) {
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
}

// parseRequestLine checks "METHOD SP target SP HTTP/x.y" (without its line end), which
// starts buf at start.
func (q *request) parseRequestLine(line []byte, start int) verdict {
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(method) == 0 || len(target) == 0 || !allIn(method, classToken) ||
		!allIn(target, classTarget) || !isHTTPVersion(proto) {
		return rejectIt
	}
	q.target = span{start + len(method) + 1, start + len(method) + 1 + len(target)}
	q.http11 = proto[5] > '1' || proto[5] == '1' && proto[7] >= '1' // HTTP/x.y, checked above
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
	q.path = span{q.target.start, q.target.start + len(path)}
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
