package router

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxRequest bounds a request line: a route is a few hundred bytes.
const maxRequest = 64 << 10

// Server answers the control protocol for a Table.
type Server struct {
	table  *Table
	hello  Hello
	logger *slog.Logger

	// Upgrade, when set, is called for an upgrade request; it returns once a
	// new proxy process serves in this one's place, or with why not. done is
	// called once the answer is sent.
	Upgrade func() (done func(), err error)

	mu      sync.Mutex
	watches map[net.Conn]bool
}

// NewServer returns a server for t; hello is what it says of its process.
func NewServer(t *Table, hello Hello, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{table: t, hello: hello, logger: logger, watches: map[net.Conn]bool{}}
}

// Serve answers connections on ln until it is closed.
func (s *Server) Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		go s.handle(conn)
	}
}

// CloseWatches ends the watchers' connections: they see the process go.
func (s *Server) CloseWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.watches {
		c.Close()
	}
}

func (s *Server) handle(conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReaderSize(io.LimitReader(conn, maxRequest), 4096).ReadBytes('\n')
	if err != nil {
		conn.Close()
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		s.reply(conn, response{Error: "not a request: " + err.Error()})
		conn.Close()
		return
	}
	if req.Op == "watch" {
		s.watch(conn)
		return
	}
	defer conn.Close()
	if req.Op == "upgrade" {
		s.upgrade(conn)
		return
	}
	s.reply(conn, s.answer(req))
}

func (s *Server) upgrade(conn net.Conn) {
	if s.Upgrade == nil {
		s.reply(conn, response{Error: "this proxy cannot upgrade itself"})
		return
	}
	done, err := s.Upgrade()
	if err != nil {
		s.logger.Warn("Upgrade failed", "err", err)
		s.reply(conn, response{Error: err.Error()})
		return
	}
	s.reply(conn, response{Hello: s.hello})
	done()
}

// watch holds conn open, saying nothing, until either side closes it: a
// daemon learns at once that the proxy process is gone.
func (s *Server) watch(conn net.Conn) {
	s.mu.Lock()
	s.watches[conn] = true
	s.mu.Unlock()
	conn.SetReadDeadline(time.Time{})
	s.reply(conn, response{Hello: s.hello})
	io.Copy(io.Discard, conn)
	s.mu.Lock()
	delete(s.watches, conn)
	s.mu.Unlock()
	conn.Close()
}

func (s *Server) reply(conn net.Conn, r response) {
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	data, _ := json.Marshal(r)
	conn.Write(append(data, '\n'))
}

func (s *Server) answer(req request) response {
	ctx := context.Background()
	var out response
	var err error
	switch req.Op {
	case "hello":
		out.Hello = s.hello
	case "add":
		err = s.table.AddHost(ctx, req.Host)
	case "route":
		instances := req.Instances
		if len(instances) == 0 { // an older client
			instances = []string{req.Instance}
		}
		out.ReplacedAll, err = s.table.RouteSet(ctx, req.Host, instances, req.Port, req.Health)
		out.Replaced = first(out.ReplacedAll)
	case "maintenance":
		err = s.table.Maintenance(ctx, req.Host, req.On, req.Message)
	case "remove":
		out.ReplacedAll, err = s.table.RemoveHostSet(ctx, req.Host)
		out.Replaced = first(out.ReplacedAll)
	case "drain":
		dctx, cancel := context.WithTimeout(ctx, req.Wait)
		err = s.table.Drain(dctx, req.Instance)
		cancel()
	case "routes":
		out.Routes, err = s.table.Routes(ctx)
	case "stats":
		out.Stats, err = s.table.Stats(ctx)
		if err == nil {
			out.Upstreams, err = s.table.UpstreamStats(ctx)
		}
	case "https":
		err = s.table.SetHTTPS(ctx, req.Host, req.Mode, req.HSTS)
	case "certs":
		out.Certs, err = s.table.LoadCerts(ctx)
	case "putcerts":
		out.Certs, err = s.table.PutCerts(ctx, req.Files)
	case "challenge":
		err = s.table.Challenge(ctx, req.Token, req.KeyAuth)
	case "alpn":
		err = s.table.ALPNChallenge(ctx, req.Domain, req.CertPEM, req.KeyPEM)
	default:
		err = fmt.Errorf("unknown request %q", req.Op)
	}
	if err != nil {
		out.Error, out.Retry = err.Error(), errors.Is(err, ErrHandedOver)
		s.logger.Warn("Control request failed", "op", req.Op, "host", req.Host, "err", err)
	}
	return out
}
