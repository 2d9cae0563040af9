package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
)

// upstreamURLHost is the URL host of every outbound request. The transport needs one and
// keys its connection pool by it; each Upstream has its own transport that always dials
// the same instance, so a constant keeps one pool per upstream whichever host a request
// was for. The Host header sent upstream is still the client's.
const upstreamURLHost = "upstream"

// forwarder sends the requests of one host to one upstream. SwapSet builds one per
// (host, upstream), kept while the upstream stays in the host's set, so a request finds
// everything it needs through the route it loaded and nothing per request (a context
// value, a handler) has to be allocated.
type forwarder struct {
	proxy    *Proxy
	host     string
	upstream *Upstream
	rp       httputil.ReverseProxy
	check    atomic.Pointer[healthCheck] // the host's active health check, if one runs (health.go)
}

func (p *Proxy) newForwarder(host string, up *Upstream) *forwarder {
	f := &forwarder{proxy: p, host: host, upstream: up}
	f.rp = httputil.ReverseProxy{
		Rewrite:      f.rewrite,
		Transport:    f,
		BufferPool:   p.buffers,
		ErrorHandler: f.handleError,
		// ReverseProxy logs mid-body copy failures itself.
		ErrorLog: slog.NewLogLogger(p.logger.With("host", host, "upstream", up.name).Handler(), slog.LevelWarn),
	}
	return f
}

// serve forwards r to f's upstream, holding the upstream until the response is written.
// It reports false, having done nothing, if the upstream is draining.
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request) bool {
	if !f.upstream.acquire() {
		return false
	}
	// Deferred: ReverseProxy panics with http.ErrAbortHandler when the upstream fails
	// mid-body, and a request that never released would hold up Drain.
	defer f.upstream.release()
	if r.Body != nil && r.Body != http.NoBody {
		var body *clientBody
		r, body = withClientBody(w, r, f.proxy.bodyRate)
		defer body.finish()
		// With Expect: 100-continue the body comes once the upstream asks for it.
		if r.Header.Get("Expect") == "" {
			if err := body.prefetch(); err != nil {
				f.bodyFailed(w, r, err)
				return true
			}
		}
	}
	f.rp.ServeHTTP(w, r)
	return true
}

// clientBodyKey is the context key of a request's clientBody, for handleError:
// ReverseProxy hands it the outbound request, whose body it has wrapped again.
type clientBodyKey struct{}

// withClientBody returns a copy of r whose body is a clientBody, found in its context
// too. r itself is left alone: net/http looks at its own body after the handler to
// decide whether the connection can take another request.
func withClientBody(w http.ResponseWriter, r *http.Request, rate bodyRate) (*http.Request, *clientBody) {
	body := newClientBody(w, r.Body, rate)
	r = r.WithContext(context.WithValue(r.Context(), clientBodyKey{}, body))
	r.Body = body
	return r, body
}

func (f *forwarder) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = upstreamURLHost
	pr.Out.Host = pr.In.Host
	for name := range pr.Out.Header {
		if strings.Contains(name, "_") { // as the fast path drops them (request.go)
			delete(pr.Out.Header, name)
		}
	}
	f.proxy.setForwarded(pr.Out.Header, pr.In, f.proxy.infoOf(pr.In))
}

// RoundTrip sends req to f's upstream and, when that fails before any response came,
// once more to another upstream of the host's current set as retry.go allows.
//
// Only requests without a body are sent again: once a RoundTrip has failed,
// ReverseProxy refuses to read the body any more. A keep-alive connection closed under
// us while idle is not handled here: http.Transport and connPool already retry those on
// a new connection to the same upstream.
func (f *forwarder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := f.upstream.roundTrip(req)
	if err == nil || req.Context().Err() != nil {
		return res, err
	}
	next := f.proxy.retryTarget(f, err, req.Method, req.Body != nil && req.Body != http.NoBody)
	if next == nil {
		return nil, err
	}

	res, err = next.upstream.roundTrip(req)
	if err != nil {
		next.upstream.release()
		return nil, err
	}
	res.Body = holdUntilClosed(req.Context(), res.Body, next.upstream)
	return res, nil
}

// holdUntilClosed keeps up held until ReverseProxy closes the response body, i.e. until
// the response has been copied to the client, or until the request's context ends (the
// server ends it when the handler returns), for the error paths that leave the body open.
func holdUntilClosed(ctx context.Context, body io.ReadCloser, up *Upstream) io.ReadCloser {
	release := sync.OnceFunc(up.release)
	stop := context.AfterFunc(ctx, release)
	h := heldBody{ReadCloser: body, release: func() { stop(); release() }}
	if rw, ok := body.(io.ReadWriteCloser); ok {
		// A protocol switch (101): ReverseProxy needs to write to the body.
		return &heldConn{heldBody: h, w: rw}
	}
	return &h
}

type heldBody struct {
	io.ReadCloser
	release func()
}

func (b *heldBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

type heldConn struct {
	heldBody
	w io.Writer
}

func (c *heldConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// handleError answers a request whose upstream failed before a response started.
func (f *forwarder) handleError(w http.ResponseWriter, r *http.Request, err error) {
	// First: a failed body read also ends the request's context (net/http cancels it on
	// any error reading the connection), and the transport then reports that.
	if body, ok := r.Context().Value(clientBodyKey{}).(*clientBody); ok {
		if berr := body.readErr(); berr != nil {
			f.bodyFailed(w, r, berr)
			return
		}
	}
	if r.Context().Err() != nil {
		// The client went away: not the upstream's fault, and nobody reads the answer.
		f.proxy.logger.Debug("Client gone before upstream answered", "host", f.host, "upstream", f.upstream.name, "error", err)
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	f.proxy.upstreamErrors.Add(1)
	f.proxy.logger.Warn("Upstream request failed", "host", f.host, "upstream", f.upstream.name,
		"method", r.Method, "path", r.URL.Path, "error", err)
	writeBadGateway(w, f.host)
}

// bodyFailed answers a request whose body could not be read from the client: the
// client's fault, so 400 (408 if it came too slowly) rather than 502. The connection is
// closed after the answer: what is left of the body on it cannot be told from a next
// request. A client that hung up gets nothing, but is not counted as the upstream's
// failure either.
func (f *forwarder) bodyFailed(w http.ResponseWriter, r *http.Request, err error) {
	f.proxy.clientErrors.Add(1)
	f.proxy.logger.Debug("Client's request body failed", "host", f.host, "upstream", f.upstream.name,
		"method", r.Method, "path", r.URL.Path, "error", err)
	w.Header().Set("Connection", "close")
	if tooSlow(err) {
		writeBodyTooSlow(w)
	} else {
		writeBadBody(w)
	}
}
