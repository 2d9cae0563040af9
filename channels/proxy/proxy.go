// Package proxy is slipway's front HTTP proxy: it routes each request by its Host to one of
// the upstreams currently serving that host, swaps them atomically and drains the
// replaced ones, so a deploy never drops a request.
package proxy

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHandshakeTimeout bounds a TLS handshake unless told otherwise: a client that
// stalls in it must not hold a goroutine and a connection for long.
const DefaultHandshakeTimeout = 10 * time.Second

// DefaultMaxConnsPerIP is how many connections Serve keeps open from one client address
// unless told otherwise: far more than a browser opens (six per host), or a few dozen
// people behind one NAT, and few enough that one address cannot use up the file
// descriptors the others need.
const DefaultMaxConnsPerIP = 256

// Proxy routes requests by host. It is an http.Handler, and serves connections itself
// with Serve, which is faster.
type Proxy struct {
	// MaxConnsPerIP caps the client connections Serve keeps open from one address
	// (DefaultMaxConnsPerIP from New; 0: no cap); one more is closed at once. Set it
	// before Serve.
	MaxConnsPerIP int

	// TrustedProxies are the peers whose forwarding fields (X-Forwarded-For,
	// X-Forwarded-Proto, CF-Connecting-IP) are believed (see forwarded.go). Set it
	// before Serve.
	TrustedProxies []netip.Prefix

	// HandshakeTimeout bounds a TLS handshake on ServeTLS (DefaultHandshakeTimeout from
	// New). Set it before ServeTLS.
	HandshakeTimeout time.Duration

	logger  *slog.Logger
	buffers *bufferPool
	front   server // Serve's

	// routes is an immutable table replaced whole by writers (copy on write under mu),
	// so a request reads it with one atomic load and no lock.
	mu     sync.Mutex
	routes atomic.Pointer[routeTable]

	// TLS: the certificates by name (certs.go), and the ACME challenges (acme.go),
	// each copied on write like the routes.
	certs     atomic.Pointer[certIndex]
	acmeMu    sync.Mutex
	tokens    atomic.Pointer[map[string]string]
	alpnCerts atomic.Pointer[map[string]*tls.Certificate]
	httpsPort atomic.Int32 // the port ServeTLS listens on, for redirects

	// bodyRate is the slowest a request body may arrive at (see minBodyRate); a field
	// so that tests can make it quick.
	bodyRate bodyRate
	// healthEvery is how often active health checks ask (see health.go); a field for
	// tests too.
	healthEvery time.Duration

	requests       atomic.Uint64
	upstreamErrors atomic.Uint64
	clientErrors   atomic.Uint64
	retries        atomic.Uint64
	refusedConns   atomic.Uint64
}

// Stats are the proxy's counters since New, for export as metrics.
type Stats struct {
	Requests       uint64 // every request received, whatever its outcome
	UpstreamErrors uint64 // requests answered 502 because the upstream failed
	ClientErrors   uint64 // requests whose body the client botched, sent too slowly (400, 408) or hung up in
	Retries        uint64 // requests sent again, after failing to connect to an upstream or a reset (see retry.go)
	RefusedConns   uint64 // client connections closed at once: their address had MaxConnsPerIP open
}

// routeTable maps a canonical host (see canonicalHost) to its route. Neither the map nor
// the routes in it change once published.
type routeTable map[string]*route

type route struct {
	forwarders  []*forwarder // none: the host is known but nothing is deployed yet
	health      string       // the path of active health checks (health.go), or ""
	maintenance bool
	message     string
	https       HTTPSMode
	hsts        []byte // the Strict-Transport-Security line for HTTPS responses, or nil
}

// New returns a proxy with no hosts. A nil logger discards.
func New(logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{logger: logger, buffers: newBufferPool(), bodyRate: defaultBodyRate, MaxConnsPerIP: DefaultMaxConnsPerIP,
		HandshakeTimeout: DefaultHandshakeTimeout, healthEvery: healthInterval}
	p.routes.Store(&routeTable{})
	p.certs.Store(&certIndex{})
	p.tokens.Store(&map[string]string{})
	p.alpnCerts.Store(&map[string]*tls.Certificate{})
	p.front.init(p)
	return p
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	host := canonicalHost(r.Host)
	info := p.infoOf(r)
	if !info.tls && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if keyAuth, ok := p.challengeAnswer(r.URL.Path); ok {
			writeChallenge(w, keyAuth)
			return
		}
	}
	if isUpgrade(r.Header) {
		w = &closeUnlessSwitched{ResponseWriter: w}
	}

	var drained *Upstream
	for {
		rt := (*p.routes.Load())[host]
		if rt != nil && info.tls && rt.hsts != nil {
			w.Header().Set("Strict-Transport-Security", rt.hstsValue())
		}
		switch {
		case rt == nil:
			writeUnknownHost(w, host)
			return
		case info.tls && rt.https == HTTPSOff:
			writeNoHTTPS(w, host)
			return
		case !info.tls && rt.https == HTTPSRedirect && !strings.HasPrefix(r.URL.Path, acmeChallengePath) && p.certFor(host) != nil:
			// Without a certificate (not issued yet, or removed) the redirect would
			// lead nowhere: HTTP serves until there is one.
			writeRedirect(w, p.redirectTarget(host, r.URL.RequestURI()))
			return
		case rt.maintenance:
			writeMaintenance(w, host, rt.message)
			return
		}
		// No pick: nothing deployed, or every upstream drained while still routed
		// (Drain without a Swap first): nothing can serve the host.
		f := rt.pick(nil, drained)
		if f == nil {
			writeNoInstance(w, host)
			return
		}
		if f.serve(w, r) {
			return
		}
		// The upstream started draining after we read the route; whoever drains it
		// swapped it out first, so the table now holds its successor.
		drained = f.upstream
	}
}

// closeUnlessSwitched closes the connection after a response to an Upgrade request
// that does not switch protocols: Serve no longer checks what the client sends after
// such a request (see gateConn), which may be another protocol.
type closeUnlessSwitched struct {
	http.ResponseWriter
	wrote bool
}

func (w *closeUnlessSwitched) WriteHeader(status int) {
	if !w.wrote && status >= 200 {
		w.wrote = true
		if status != http.StatusSwitchingProtocols {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *closeUnlessSwitched) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// isUpgrade reports whether a request asks to switch protocols, as ReverseProxy reads
// it (without "Connection: upgrade" it drops the Upgrade field).
func isUpgrade(h http.Header) bool {
	if len(h["Upgrade"]) == 0 {
		return false
	}
	for _, v := range h["Connection"] {
		if hasToken([]byte(v), "upgrade") {
			return true
		}
	}
	return false
}

// Unwrap lets http.ResponseController reach the connection (a switch hijacks it).
func (w *closeUnlessSwitched) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// acquire returns a forwarder of host's current route, other than avoid's, with its
// upstream acquired, or nil if no upstream can take the request. The caller must
// release the upstream. A failed acquire leaves its upstream draining, which the next
// pick skips (in a set) or is told of (alone), so the loop ends.
func (p *Proxy) acquire(host string, avoid *Upstream) *forwarder {
	var drained *Upstream
	for {
		f := (*p.routes.Load())[host].pick(avoid, drained)
		if f == nil {
			return nil
		}
		if f.upstream.acquire() {
			return f
		}
		drained = f.upstream
	}
}

// acquireServing is acquire for Serve's fast path, with the route key as bytes, and
// returns the route and the forwarder it acquired; it returns nil for a host in
// maintenance, or not served over the connection's protocol (a redirect, a refusal)
// too: ServeHTTP writes those.
func (p *Proxy) acquireServing(host []byte, tls bool) (*route, *forwarder) {
	var drained *Upstream
	for {
		rt := (*p.routes.Load())[string(host)]
		if rt == nil || rt.maintenance || tls && rt.https == HTTPSOff || !tls && rt.https == HTTPSRedirect {
			return nil, nil
		}
		f := rt.pick(nil, drained)
		if f == nil {
			return nil, nil
		}
		if f.upstream.acquire() {
			return rt, f
		}
		drained = f.upstream
	}
}

// AddHost makes host known. Until an upstream is swapped in, its requests get 503.
func (p *Proxy) AddHost(host string) {
	host = canonicalHost(host)
	p.update(func(t routeTable) {
		if _, ok := t[host]; !ok {
			t[host] = &route{}
		}
	})
}

// SetMaintenance answers every request for host with 503, a Retry-After and message
// (a default one if empty), leaving its upstream in place. An unknown host is added.
func (p *Proxy) SetMaintenance(host, message string) {
	host = canonicalHost(host)
	p.update(func(t routeTable) {
		next := &route{}
		if prev := t[host]; prev != nil {
			*next = *prev
		}
		next.maintenance, next.message = true, message
		t[host] = next
	})
	p.logger.Info("Maintenance on", "host", host)
}

// ClearMaintenance sends host's requests to its upstream again.
func (p *Proxy) ClearMaintenance(host string) {
	host = canonicalHost(host)
	p.update(func(t routeTable) {
		if prev := t[host]; prev != nil && prev.maintenance {
			next := *prev
			next.maintenance, next.message = false, ""
			t[host] = &next
		}
	})
	p.logger.Info("Maintenance off", "host", host)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Requests:       p.requests.Load(),
		UpstreamErrors: p.upstreamErrors.Load(),
		ClientErrors:   p.clientErrors.Load(),
		Retries:        p.retries.Load(),
		RefusedConns:   p.refusedConns.Load(),
	}
}

// update publishes a modified copy of the route table. Writers are rare (deploys,
// admin commands), so copying the table buys lock-free reads on every request.
func (p *Proxy) update(change func(routeTable)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := *p.routes.Load()
	next := make(routeTable, len(cur)+1)
	for host, rt := range cur {
		next[host] = rt
	}
	change(next)
	p.syncHealth(cur, next)
	p.routes.Store(&next)
}

// canonicalHost turns a Host header (or a configured host name) into a route key:
// without port, without a trailing dot, lower case. It does not allocate for a host
// that is already canonical.
func canonicalHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && i > strings.LastIndexByte(host, ']') {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}

func nameOf(u *Upstream) string {
	if u == nil {
		return ""
	}
	return u.name
}
