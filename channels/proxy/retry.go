package proxy

import (
	"errors"
	"io"
	"net/http"
	"syscall"
)

// A request that failed before any of a response reached the client is sent once more,
// to another upstream of its host's current set, when that is safe:
//   - a failed dial wrote nothing, so any request without a body may go again; with
//     no other upstream it goes to the same one, as the failure may be passing (a
//     successor being swapped in, a restart);
//   - a reset or EOF before the response head may come after the app read the
//     request, so only methods that may run twice (RFC 9110 9.2.2) go again, and
//     never to the upstream that failed.

// retryTarget returns the forwarder, acquired, to send again a request that failed on
// f with err, or nil if the request may not or cannot go again. A failed dial also
// takes f's upstream out of the choice (health.go).
func (p *Proxy) retryTarget(f *forwarder, err error, method string, hasBody bool) *forwarder {
	failed := f.upstream
	dial := isDialError(err)
	if dial {
		failed.markDown()
	}
	var next *forwarder
	switch {
	case hasBody:
		return nil
	case dial:
		if next = p.acquire(f.host, failed); next == nil {
			next = p.acquire(f.host, nil)
		}
	case idempotent(method) && isConnReset(err):
		next = p.acquire(f.host, failed)
	}
	if next != nil {
		p.retries.Add(1)
		p.logger.Info("Retrying request", "host", f.host, "method", method, "failed", failed.name, "upstream", next.upstream.name, "error", err)
	}
	return next
}

// idempotent reports whether a request with method may be sent twice.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// isConnReset reports whether err is the upstream closing the connection before a
// response head: errNoResponse from a connPool, or what http.Transport passes on.
func isConnReset(err error) bool {
	return errors.Is(err, errNoResponse) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
