// Package agent lets slipway reach instances that run on another member of
// an Incus cluster. slipway reaches an instance through the kernel of the
// host it runs on (its supervisor's socket in its root, its app in its
// network namespace), so on each member an agent (the slipway proxy there)
// makes those connections for the others and relays them byte for byte.
//
// The protocol: a TLS connection, both sides presenting the cluster's one
// slipway certificate and accepting only that one (pinned, as Incus pins
// its members' certificate); the client writes one request line of JSON,
// the agent answers one line, and from then on the connection is the
// instance's.
package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"time"
)

// Local makes the connections an agent relays, on its own member.
type Local interface {
	// DialSupervisor connects to the instance's supervisor.
	DialSupervisor(ctx context.Context, name string) (net.Conn, error)
	// Dial connects to 127.0.0.1:port inside the instance.
	Dial(ctx context.Context, name string, port int) (net.Conn, error)
}

// Ops of a request.
const (
	opSupervisor = "supervisor"
	opApp        = "app"
	opControl    = "control" // the member's proxy's control socket (package router)
)

type request struct {
	Op       string `json:"op"`
	Instance string `json:"instance"`
	Port     int    `json:"port,omitempty"`
}

type response struct {
	Error string `json:"error,omitempty"`
}

// maxLine bounds a request or response line.
const maxLine = 4096

// handshakeTimeout bounds the TLS handshake and the request line.
const handshakeTimeout = 10 * time.Second

// Pinned is a TLS configuration that presents cert and accepts a peer only
// when it presents the same certificate.
func Pinned(cert tls.Certificate) (*tls.Config, error) {
	if len(cert.Certificate) == 0 {
		return nil, errors.New("agent: no certificate")
	}
	want := cert.Certificate[0]
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || string(raw[0]) != string(want) {
			return errors.New("agent: the peer does not present the cluster's slipway certificate")
		}
		return nil
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		// The chain is checked by pinning, not by a CA: there is none.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
		MinVersion:            tls.VersionTLS13,
	}, nil
}

// Server relays connections to the instances of its member.
type Server struct {
	local Local
	tls   *tls.Config
	log   *slog.Logger

	// Control, when set, connects to this member's proxy's control socket,
	// so the daemon on another member can route here.
	Control func(ctx context.Context) (net.Conn, error)

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// NewServer returns an agent for local, authenticated by tlsConfig (see
// Pinned). A nil logger discards.
func NewServer(local Local, tlsConfig *tls.Config, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{local: local, tls: tlsConfig, log: logger, conns: map[net.Conn]bool{}}
}

// Serve answers connections on ln until it is closed, then closes the
// relays under way and waits for them.
func (s *Server) Serve(ln net.Listener) error {
	defer s.closeAll()
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(tls.Server(conn, s.tls))
		}()
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) track(c net.Conn, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.conns[c] = true
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) handle(conn *tls.Conn) {
	s.track(conn, true)
	defer s.track(conn, false)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReaderSize(io.LimitReader(conn, maxLine), 512)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return // a handshake refused or a peer that said nothing
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(conn, fmt.Errorf("not a request: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	target, err := s.dial(ctx, req)
	cancel()
	if err != nil {
		reply(conn, err)
		return
	}
	defer target.Close()
	if err := reply(conn, nil); err != nil {
		return
	}
	conn.SetDeadline(time.Time{})
	relay(conn, target)
}

// instanceName is what Incus allows an instance to be called: a name that
// reaches no path or API call other than its own.
var instanceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,62}$`)

func (s *Server) dial(ctx context.Context, req request) (net.Conn, error) {
	if req.Op != opControl && !instanceName.MatchString(req.Instance) {
		return nil, fmt.Errorf("%q is not an instance name", req.Instance)
	}
	if req.Op == opApp && (req.Port <= 0 || req.Port > 65535) {
		return nil, fmt.Errorf("port %d is not a port", req.Port)
	}
	switch req.Op {
	case opSupervisor:
		return s.local.DialSupervisor(ctx, req.Instance)
	case opApp:
		return s.local.Dial(ctx, req.Instance, req.Port)
	case opControl:
		if s.Control != nil {
			return s.Control(ctx)
		}
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

func reply(w io.Writer, err error) error {
	var res response
	if err != nil {
		res.Error = err.Error()
	}
	b, _ := json.Marshal(res)
	_, werr := w.Write(append(b, '\n'))
	return werr
}

// relay copies both ways until both directions end; a half-close is passed on.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go pipe(a, b)
	go pipe(b, a)
	wg.Wait()
}

// Client reaches the instances of one member through its agent.
type Client struct {
	addr string
	tls  *tls.Config
}

// NewClient returns a client of the agent at addr (HOST:PORT).
func NewClient(addr string, tlsConfig *tls.Config) *Client {
	return &Client{addr: addr, tls: tlsConfig}
}

// DialSupervisor connects to the supervisor of instance name on the agent's member.
func (c *Client) DialSupervisor(ctx context.Context, name string) (net.Conn, error) {
	return c.open(ctx, request{Op: opSupervisor, Instance: name})
}

// Ping reports whether the agent answers a TLS handshake: its member is up.
func (c *Client) Ping(ctx context.Context) error {
	d := tls.Dialer{Config: c.tls}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("reach the slipway agent at %s: %w", c.addr, err)
	}
	return conn.Close()
}

// DialControl connects to the control socket of the proxy of the agent's member.
func (c *Client) DialControl(ctx context.Context) (net.Conn, error) {
	return c.open(ctx, request{Op: opControl})
}

// Dial connects to port inside instance name on the agent's member.
func (c *Client) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	return c.open(ctx, request{Op: opApp, Instance: name, Port: port})
}

func (c *Client) open(ctx context.Context, req request) (net.Conn, error) {
	d := tls.Dialer{Config: c.tls}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("reach the slipway agent at %s: %w", c.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(handshakeTimeout))
	}
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, fmt.Errorf("the slipway agent at %s: %w", c.addr, err)
	}
	line, err := readLine(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("the slipway agent at %s did not answer: %w", c.addr, err)
	}
	var res response
	if err := json.Unmarshal(line, &res); err != nil {
		conn.Close()
		return nil, fmt.Errorf("the slipway agent at %s: %w", c.addr, err)
	}
	if res.Error != "" {
		conn.Close()
		return nil, fmt.Errorf("the slipway agent at %s: %s", c.addr, res.Error)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// readLine reads the answer a byte at a time, so nothing of the instance's
// own bytes after it is taken into a buffer the caller would not see.
func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < maxLine {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			return line, nil
		}
		line = append(line, b[0])
	}
	return nil, errors.New("answer too long")
}
