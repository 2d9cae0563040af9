package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Serve's timeouts, the same for the fast path and the net/http server behind it
// (which takes them at New). A request body has a minimum rate instead (see
// minBodyRate). Variables only so that tests can make them short.
var (
	headerTimeout = 10 * time.Second  // to read a request head once it has started
	idleTimeout   = 120 * time.Second // between requests on a connection
)

// server is the state of Serve: its listeners, the client connections on the fast
// path, and the net/http server the others are handed off to.
//
// Why a fast path: net/http costs a goroutine hand-off per request (its background
// read), header maps, and httputil's request cloning; on a small machine that is more
// than half of the proxy's CPU per request. The fast path reads a request head into the
// connection's buffer, checks it, and when it is simple (GET, HEAD or OPTIONS without a
// body, for a host with an upstream) writes it through to a pooled upstream connection
// and relays the response, all on the connection's goroutine. Anything else goes to
// net/http and ServeHTTP, which keep the connection from then on.
type server struct {
	proxy *Proxy
	// ctx ends with Close, stopping the dials of requests in flight.
	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	listeners   map[net.Listener]struct{}
	conns       map[*clientConn]struct{}
	perIP       map[string]int // open client connections by address, handed off ones too
	noConns     chan struct{}  // closed when conns becomes empty, made by Shutdown
	httpStarted bool
	closing     atomic.Bool // Shutdown or Close has begun

	handoff  *handoffListener
	http     *http.Server
	tls      *tls.Config   // ServeTLS's
	httpDone chan struct{} // http.Serve has returned

	date atomic.Pointer[dateLine]
}

func (s *server) init(p *Proxy) {
	s.proxy = p
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.listeners = map[net.Listener]struct{}{}
	s.conns = map[*clientConn]struct{}{}
	s.perIP = map[string]int{}
	s.handoff = newHandoffListener()
	s.http = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn),
		ConnContext:       s.connContext,
		ConnState:         s.connState,
	}
	s.httpDone = make(chan struct{})
	s.tls = p.tlsConfig()
}

// connState releases the address of an HTTP/2 connection (handed to net/http as it
// is, see handOffH2) once it is closed; the others release theirs through gateConn.
func (s *server) connState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok && (state == http.StateClosed || state == http.StateHijacked) {
		s.releaseIP(clientIP(tc))
	}
}

// Serve accepts client connections on ln and serves them until Shutdown or Close, when
// it returns http.ErrServerClosed; it closes ln. It may serve several listeners at once.
// Requests are answered as ServeHTTP answers them.
func (p *Proxy) Serve(ln net.Listener) error { return p.front.serve(ln, false) }

// ServeTLS is Serve for HTTPS: it serves TLS on ln with the certificates LoadCerts
// loaded, to hosts whose HTTPS mode is on or redirect. HTTP/1.1 takes the same fast
// path as Serve; HTTP/2 is served by net/http. Redirects from HTTP go to ln's port.
func (p *Proxy) ServeTLS(ln net.Listener) error {
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		p.httpsPort.Store(int32(a.Port))
	}
	return p.front.serve(ln, true)
}

func (s *server) serve(ln net.Listener, useTLS bool) error {
	p := s.proxy
	if !s.addListener(ln) {
		ln.Close()
		return http.ErrServerClosed
	}
	defer s.removeListener(ln)
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait for some to be freed, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.logger.Warn("Accept failed, retrying", "error", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if useTLS {
			conn = tls.Server(conn, s.tls)
		}
		c, err := s.addConn(conn)
		if err != nil {
			conn.Close()
			if err == errTooManyConns {
				p.refusedConns.Add(1)
				continue
			}
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// Shutdown stops Serve and ends its connections gracefully: the listeners and idle
// connections are closed at once; a request in flight gets its response (with
// Connection: close), then its connection is closed. It returns once no connection
// is left, or with ctx's error when ctx ends first; Close then cuts the rest.
func (p *Proxy) Shutdown(ctx context.Context) error {
	s := &p.front
	s.closing.Store(true)
	s.closeListeners()
	// Handed-off connections answer with Connection: close from now on, and the idle
	// ones are closed.
	s.http.SetKeepAlivesEnabled(false)

	s.mu.Lock()
	for c := range s.conns {
		c.closeIfIdle()
	}
	var wait chan struct{}
	if len(s.conns) > 0 {
		if s.noConns == nil {
			s.noConns = make(chan struct{})
		}
		wait = s.noConns
	}
	started := s.httpStarted
	s.mu.Unlock()

	var err error
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	// Only now: until the fast path's connections are gone, one may still hand its
	// connection off. With ctx ended this still closes the listener and idle
	// connections.
	if herr := s.http.Shutdown(ctx); err == nil {
		err = herr
	}
	if started {
		<-s.httpDone
	}
	return err
}

// Close closes the listeners and every client connection at once, cutting the
// requests in flight.
func (p *Proxy) Close() error {
	s := &p.front
	s.closing.Store(true)
	s.closeListeners()
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.state.Store(connClosed)
		c.conn.Close()
	}
	started := s.httpStarted
	s.mu.Unlock()
	err := s.http.Close()
	if started {
		<-s.httpDone
	}
	return err
}

// addListener registers ln, starting the net/http server with the first one; it
// reports false once the server is closing.
func (s *server) addListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	if !s.httpStarted {
		s.httpStarted = true
		go func() {
			defer close(s.httpDone)
			if err := s.http.Serve(s.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.proxy.logger.Error("Proxy's HTTP server stopped", "error", err)
			}
		}()
	}
	return true
}

func (s *server) removeListener(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	ln.Close()
}

func (s *server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		ln.Close()
	}
}

var errTooManyConns = errors.New("too many connections from one address")

// addConn registers a new client connection. It fails once the server is closing, or
// when the client's address has MaxConnsPerIP open.
func (s *server) addConn(conn net.Conn) (*clientConn, error) {
	ip := clientIP(conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil, http.ErrServerClosed
	}
	if limit := s.proxy.MaxConnsPerIP; limit > 0 && s.perIP[ip] >= limit {
		return nil, errTooManyConns
	}
	s.perIP[ip]++
	c := newClientConn(s, conn, ip)
	s.conns[c] = struct{}{}
	return c, nil
}

// releaseIP forgets a client connection that is closed, on the fast path or after a
// hand-off, in its address's count.
func (s *server) releaseIP(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// removeConn forgets c, closed or handed off.
func (s *server) removeConn(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.noConns != nil {
		close(s.noConns)
		s.noConns = nil
	}
}

// dateLine is a Date field for responses, made at most once a second.
type dateLine struct {
	unix int64
	line []byte
}

func (s *server) dateLine() []byte {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.unix == now.Unix() {
		return d.line
	}
	line := now.UTC().AppendFormat([]byte("Date: "), http.TimeFormat)
	line = append(line, "\r\n"...)
	s.date.Store(&dateLine{unix: now.Unix(), line: line})
	return line
}
