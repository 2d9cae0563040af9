package router

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
)

// ErrNoProxy: nothing answers on the proxy's control socket.
var ErrNoProxy = errors.New("the proxy process is not running")

// callTimeout bounds every call but a drain: the proxy answers from memory
// after one small file write.
const callTimeout = 10 * time.Second

// Client reaches a proxy process's Table over its control socket.
type Client struct {
	socket string
	dialFn func(ctx context.Context) (net.Conn, error) // instead of the socket, when set
}

// NewClient returns a client of the proxy listening on the unix socket path.
func NewClient(socket string) *Client { return &Client{socket: socket} }

// NewClientDial returns a client of a proxy reached through dial (another
// cluster member's, through its agent); name says which in errors.
func NewClientDial(name string, dial func(ctx context.Context) (net.Conn, error)) *Client {
	return &Client{socket: name, dialFn: dial}
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if c.dialFn != nil {
		conn, err := c.dialFn(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w (%s): %w", ErrNoProxy, c.socket, err)
		}
		return conn, nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %w", ErrNoProxy, c.socket, err)
	}
	return conn, nil
}

// call sends req and returns the response, or the error it carries. A
// process that has handed over says so, and the call goes again to the new
// one, which answers on the same socket.
func (c *Client) call(ctx context.Context, req request) (response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	for {
		resp, err := c.callOnce(ctx, req)
		if !resp.Retry || ctx.Err() != nil {
			return resp, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *Client) callOnce(ctx context.Context, req request) (response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		return response{}, fmt.Errorf("proxy %s: %w", req.Op, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return response{}, fmt.Errorf("proxy %s: no answer: %w", req.Op, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return response{}, fmt.Errorf("proxy %s: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("proxy %s: %s", req.Op, resp.Error)
	}
	return resp, nil
}

// Hello asks the proxy who it is.
func (c *Client) Hello(ctx context.Context) (Hello, error) {
	r, err := c.call(ctx, request{Op: "hello"})
	return r.Hello, err
}

func (c *Client) AddHost(ctx context.Context, host string) error {
	_, err := c.call(ctx, request{Op: "add", Host: host})
	return err
}

func (c *Client) Route(ctx context.Context, host, instance string, port int) (string, error) {
	r, err := c.call(ctx, request{Op: "route", Host: host, Instance: instance, Port: port})
	return r.Replaced, err
}

// RouteSet is Table.RouteSet over the socket.
func (c *Client) RouteSet(ctx context.Context, host string, instances []string, port int, health string) ([]string, error) {
	req := request{Op: "route", Host: host, Instances: instances, Port: port, Health: health}
	if len(instances) > 0 {
		req.Instance = instances[0]
	}
	r, err := c.call(ctx, req)
	return replacedAll(r), err
}

// replacedAll is what a response says was replaced; an older server says only the
// first.
func replacedAll(r response) []string {
	if len(r.ReplacedAll) == 0 && r.Replaced != "" {
		return []string{r.Replaced}
	}
	return r.ReplacedAll
}

func (c *Client) Maintenance(ctx context.Context, host string, on bool, message string) error {
	_, err := c.call(ctx, request{Op: "maintenance", Host: host, On: on, Message: message})
	return err
}

func (c *Client) RemoveHost(ctx context.Context, host string) (string, error) {
	r, err := c.call(ctx, request{Op: "remove", Host: host})
	return r.Replaced, err
}

// RemoveHostSet is Table.RemoveHostSet over the socket.
func (c *Client) RemoveHostSet(ctx context.Context, host string) ([]string, error) {
	r, err := c.call(ctx, request{Op: "remove", Host: host})
	return replacedAll(r), err
}

// Drain waits for instance's requests in flight, as long as ctx allows.
func (c *Client) Drain(ctx context.Context, instance string) error {
	wait := callTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait+time.Second)
		defer cancel()
	}
	_, err := c.call(ctx, request{Op: "drain", Instance: instance, Wait: wait})
	return err
}

func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	r, err := c.call(ctx, request{Op: "routes"})
	return r.Routes, err
}

func (c *Client) Stats(ctx context.Context) (proxy.Stats, error) {
	r, err := c.call(ctx, request{Op: "stats"})
	return r.Stats, err
}

// UpstreamStats returns the counters of each routed instance (requests per
// upstream, for /metrics); an older proxy has none to give.
func (c *Client) UpstreamStats(ctx context.Context) ([]proxy.UpstreamStat, error) {
	r, err := c.call(ctx, request{Op: "stats"})
	return r.Upstreams, err
}

// SetHTTPS sets host's HTTPS mode ("off" or "", "on", "redirect") and the HSTS
// max-age, in seconds, of its HTTPS responses (0: none). It is kept in the state
// file.
func (c *Client) SetHTTPS(ctx context.Context, host, mode string, hsts int) error {
	_, err := c.call(ctx, request{Op: "https", Host: host, Mode: mode, HSTS: hsts})
	return err
}

// ReloadCerts has the proxy read its certificate directory again.
func (c *Client) ReloadCerts(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: "certs"})
	return err
}

// PutCerts has the proxy make its certificate directory files (NAME.crt,
// NAME.key pairs, and nothing else) and load them.
func (c *Client) PutCerts(ctx context.Context, files map[string][]byte) error {
	_, err := c.call(ctx, request{Op: "putcerts", Files: files})
	return err
}

// Challenge has the proxy answer the ACME HTTP-01 token with keyAuth, for any
// host, on its HTTP listener; an empty keyAuth removes it.
func (c *Client) Challenge(ctx context.Context, token, keyAuth string) error {
	_, err := c.call(ctx, request{Op: "challenge", Token: token, KeyAuth: keyAuth})
	return err
}

// ALPNChallenge has the proxy present certPEM/keyPEM (the TLS-ALPN-01 challenge
// certificate) to a TLS client asking for domain with acme-tls/1; empty PEMs remove
// it.
func (c *Client) ALPNChallenge(ctx context.Context, domain string, certPEM, keyPEM []byte) error {
	_, err := c.call(ctx, request{Op: "alpn", Domain: domain, CertPEM: certPEM, KeyPEM: keyPEM})
	return err
}

// Upgrade asks the proxy to hand its sockets to a new process of the binary
// now installed, and returns once that one serves.
func (c *Client) Upgrade(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := c.call(ctx, request{Op: "upgrade"})
	return err
}

// Watch returns a channel closed when the proxy process goes (or ctx ends),
// with the process's Hello.
func (c *Client) Watch(ctx context.Context) (<-chan struct{}, Hello, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, Hello{}, err
	}
	data, _ := json.Marshal(request{Op: "watch"})
	conn.SetDeadline(time.Now().Add(callTimeout))
	if _, err := conn.Write(append(data, '\n')); err != nil {
		conn.Close()
		return nil, Hello{}, err
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadBytes('\n')
	var resp response
	if err == nil {
		err = json.Unmarshal(line, &resp)
	}
	if err != nil {
		conn.Close()
		return nil, Hello{}, fmt.Errorf("proxy watch: %w", err)
	}
	conn.SetDeadline(time.Time{})
	gone := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	go func() {
		defer close(gone)
		defer stop()
		defer conn.Close()
		io.Copy(io.Discard, rd)
	}()
	return gone, resp.Hello, nil
}
