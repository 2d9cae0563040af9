// Package router keeps the front proxy's routes by name: which instance serves
// each host, which hosts are in maintenance, which replaced instances still
// drain. A Table applies each change to a proxy.Proxy and, when given a path,
// keeps the routes in a state file, so a proxy process started again serves
// from it before the daemon says anything. The daemon reaches a Table in the
// proxy process through a Client over a unix socket (see server.go).
package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"

	"github.com/slipway-dev/slipway/channels/proxy"
)

// Route is what the proxy does with one host.
type Route struct {
	Host string `json:"host"`
	// Instances serve the host, on Port each; none: known, nothing deployed (503).
	// Instance is the first, for the readers of one (an older proxy, a state file it
	// wrote): see normalize.
	Instance    string   `json:"instance,omitempty"`
	Instances   []string `json:"instances,omitempty"`
	Health      string   `json:"health,omitempty"` // the path the proxy checks on each of several instances (proxy.SetHealth)
	Port        int      `json:"port,omitempty"`
	Maintenance bool     `json:"maintenance,omitempty"`
	Message     string   `json:"message,omitempty"`
	HTTPS       string   `json:"https,omitempty"` // "" or off, on, redirect (see proxy.HTTPSMode)
	HSTS        int      `json:"hsts,omitempty"`  // Strict-Transport-Security max-age on HTTPS, seconds; 0: none
}

// Dialer connects to port inside an instance.
type Dialer func(ctx context.Context, instance string, port int) (net.Conn, error)

// Table is the route table. Its methods are safe for concurrent use.
type Table struct {
	px      *proxy.Proxy
	dial    Dialer
	state   string // the state file, or "" for none
	certDir string // the certificates (see proxy.LoadCerts), or "" for none

	mu        sync.Mutex
	over      bool                       // handed over to a new process: changes go there
	routes    map[string]Route           // by canonical host
	acme      Challenges                 // the ACME challenges set, kept for a successor (see Challenges)
	upstreams map[string]*proxy.Upstream // by instance: serving, or replaced and not yet drained
}

// Open returns a table applying its routes to px, loading them from the state
// file at state first when there is one ("" keeps no file).
func Open(px *proxy.Proxy, dial Dialer, state string) (*Table, error) {
	t := &Table{px: px, dial: dial, state: state, routes: map[string]Route{}, upstreams: map[string]*proxy.Upstream{}}
	saved, err := loadState(state)
	if err != nil {
		return nil, err
	}
	for _, r := range saved {
		t.apply(r)
	}
	return t, nil
}

// normalize makes Instance and Instances agree: a route written with Instance alone
// (an older daemon or state file) is served by that one.
func (r *Route) normalize() {
	if len(r.Instances) == 0 && r.Instance != "" {
		r.Instances = []string{r.Instance}
	}
	r.Instance = ""
	if len(r.Instances) > 0 {
		r.Instance = r.Instances[0]
	}
}

// apply makes the proxy do what r says, and records it. It returns the instances
// that served the host before and no longer do.
func (t *Table) apply(r Route) (replaced []string) {
	r.normalize()
	key := proxy.CanonicalHost(r.Host)
	prev, known := t.routes[key]
	if !known {
		t.px.AddHost(r.Host)
	}
	if r.Health != prev.Health || !known {
		t.px.SetHealth(r.Host, r.Health)
	}
	if !slices.Equal(r.Instances, prev.Instances) || r.Port != prev.Port || !known {
		ups := make([]*proxy.Upstream, len(r.Instances))
		for i, instance := range r.Instances {
			ups[i] = t.upstream(instance, r.Port)
		}
		for _, old := range t.px.SwapSet(r.Host, ups) {
			replaced = append(replaced, old.Name())
		}
	}
	switch {
	case r.Maintenance:
		t.px.SetMaintenance(r.Host, r.Message)
	case prev.Maintenance:
		t.px.ClearMaintenance(r.Host)
	}
	if r.HTTPS != prev.HTTPS || r.HSTS != prev.HSTS || !known {
		// Checked by SetHTTPS, or by Open for a state file: a mode that no longer
		// parses serves as off.
		mode, _ := proxy.ParseHTTPSMode(r.HTTPS)
		t.px.SetHTTPS(r.Host, mode, max(r.HSTS, 0))
	}
	r.Host = key
	t.routes[key] = r
	return replaced
}

// upstream returns the instance's upstream, made on first use.
func (t *Table) upstream(instance string, port int) *proxy.Upstream {
	if up := t.upstreams[instance]; up != nil {
		return up
	}
	up := proxy.NewUpstream(instance, func(ctx context.Context) (net.Conn, error) {
		return t.dial(ctx, instance, port)
	})
	t.upstreams[instance] = up
	return up
}

// change applies what edit makes of host's route and saves the table. It
// returns the instances the change took traffic from.
func (t *Table) change(host string, edit func(*Route)) (replaced []string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return nil, ErrHandedOver
	}
	key := proxy.CanonicalHost(host)
	r, ok := t.routes[key]
	if !ok {
		r = Route{Host: key}
	}
	edit(&r)
	replaced = t.apply(r)
	return replaced, t.save()
}

// AddHost makes host known; until an instance is routed to it, it gets 503.
func (t *Table) AddHost(_ context.Context, host string) error {
	_, err := t.change(host, func(*Route) {})
	return err
}

// Route is RouteSet with one instance and no health path, returning the instance
// it replaced ("" if none).
func (t *Table) Route(ctx context.Context, host, instance string, port int) (string, error) {
	replaced, err := t.RouteSet(ctx, host, []string{instance}, port, "")
	return first(replaced), err
}

// RouteSet sends host's requests to port of instances, balanced, with health the
// path checked on each while there are several ("" none), and returns the instances
// that served host before and no longer do. Requests that start after it returns go
// to the set.
func (t *Table) RouteSet(_ context.Context, host string, instances []string, port int, health string) ([]string, error) {
	if len(instances) == 0 || slices.Contains(instances, "") || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("route %s: bad instances %q or port %d", host, instances, port)
	}
	set := []string{}
	for _, instance := range instances {
		if !slices.Contains(set, instance) {
			set = append(set, instance)
		}
	}
	return t.change(host, func(r *Route) { r.Instance, r.Instances, r.Port, r.Health = set[0], set, port, health })
}

// Maintenance turns host's maintenance page on (with message) or off.
func (t *Table) Maintenance(_ context.Context, host string, on bool, message string) error {
	_, err := t.change(host, func(r *Route) {
		r.Maintenance, r.Message = on, message
		if !on {
			r.Message = ""
		}
	})
	return err
}

// RemoveHost is RemoveHostSet returning the first instance ("" if none).
func (t *Table) RemoveHost(ctx context.Context, host string) (string, error) {
	old, err := t.RemoveHostSet(ctx, host)
	return first(old), err
}

// RemoveHostSet forgets host (404 from then on) and returns the instances that
// served it, which the caller drains.
func (t *Table) RemoveHostSet(_ context.Context, host string) ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return nil, ErrHandedOver
	}
	var names []string
	for _, up := range t.px.RemoveHostSet(host) {
		names = append(names, up.Name())
	}
	delete(t.routes, proxy.CanonicalHost(host))
	return names, t.save()
}

func first(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// Drain waits until the requests in flight to instance, which no host routes
// to any more, have finished or ctx ends, then forgets it. An instance the
// table does not know has nothing in flight.
func (t *Table) Drain(ctx context.Context, instance string) error {
	t.mu.Lock()
	up := t.upstreams[instance]
	for _, r := range t.routes {
		if slices.Contains(r.Instances, instance) {
			up = nil // routed again: not ours to drain
		}
	}
	t.mu.Unlock()
	if up == nil {
		return nil
	}
	err := up.Drain(ctx)
	t.mu.Lock()
	if t.upstreams[instance] == up {
		delete(t.upstreams, instance)
	}
	t.mu.Unlock()
	return err
}

// SetHTTPS sets how host is served over TLS: mode "off" (or ""), "on" or
// "redirect" (HTTP answers 308 to HTTPS), and the max-age in seconds of the
// Strict-Transport-Security of its HTTPS responses (0: none). An unknown host is
// added. The proxy serves HTTPS for host once a certificate covers it.
func (t *Table) SetHTTPS(_ context.Context, host, mode string, hsts int) error {
	if _, err := proxy.ParseHTTPSMode(mode); err != nil {
		return fmt.Errorf("https %s: %w", host, err)
	}
	if hsts < 0 {
		return fmt.Errorf("https %s: HSTS max-age %d is negative", host, hsts)
	}
	if mode == "off" {
		mode = ""
	}
	_, err := t.change(host, func(r *Route) { r.HTTPS, r.HSTS = mode, hsts })
	return err
}

// UseCertDir makes LoadCerts read the certificates in dir.
func (t *Table) UseCertDir(dir string) {
	t.mu.Lock()
	t.certDir = dir
	t.mu.Unlock()
}

// ReloadCerts reads the certificate directory again, as LoadCerts does.
func (t *Table) ReloadCerts(ctx context.Context) error {
	_, err := t.LoadCerts(ctx)
	return err
}

// LoadCerts reads the certificate directory again (see proxy.LoadCerts) and
// returns how many pairs serve: a pair that does not load is logged and
// skipped, the others serve.
func (t *Table) LoadCerts(context.Context) (int, error) {
	t.mu.Lock()
	dir, over := t.certDir, t.over
	t.mu.Unlock()
	if over {
		return 0, ErrHandedOver
	}
	if dir == "" {
		return 0, errors.New("this proxy has no certificate directory")
	}
	return t.px.LoadCerts(dir)
}

// Challenges are the ACME challenges a table has set: transient, so not in the
// state file, but handed to the process that takes over on an upgrade, which
// may come in the middle of a validation.
type Challenges struct {
	HTTP01 map[string]string    `json:"http01,omitempty"` // key authorization by token
	ALPN   map[string][2][]byte `json:"alpn,omitempty"`   // certificate and key PEM by domain
}

// Challenge answers the ACME HTTP-01 token with keyAuth ("" removes it).
func (t *Table) Challenge(_ context.Context, token, keyAuth string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return ErrHandedOver
	}
	if err := t.px.SetChallenge(token, keyAuth); err != nil {
		return err
	}
	if t.acme.HTTP01 == nil {
		t.acme.HTTP01 = map[string]string{}
	}
	if keyAuth == "" {
		delete(t.acme.HTTP01, token)
	} else {
		t.acme.HTTP01[token] = keyAuth
	}
	return nil
}

// ALPNChallenge presents the TLS-ALPN-01 certificate for domain (empty removes it).
func (t *Table) ALPNChallenge(_ context.Context, domain string, certPEM, keyPEM []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return ErrHandedOver
	}
	if err := t.px.SetALPNChallenge(domain, certPEM, keyPEM); err != nil {
		return err
	}
	if t.acme.ALPN == nil {
		t.acme.ALPN = map[string][2][]byte{}
	}
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		delete(t.acme.ALPN, domain)
	} else {
		t.acme.ALPN[domain] = [2][]byte{certPEM, keyPEM}
	}
	return nil
}

// ChallengesFrozen returns the ACME challenges set, for a successor. Call it while the
// table is frozen, so that none changes after.
func (t *Table) ChallengesFrozen() Challenges { return t.acme }

// RestoreChallenges sets the challenges a predecessor had; one that does not take
// is skipped.
func (t *Table) RestoreChallenges(ctx context.Context, c Challenges) {
	for token, keyAuth := range c.HTTP01 {
		t.Challenge(ctx, token, keyAuth)
	}
	for domain, pems := range c.ALPN {
		t.ALPNChallenge(ctx, domain, pems[0], pems[1])
	}
}

// ErrHandedOver: a new proxy process took over; ask it.
var ErrHandedOver = errors.New("this proxy process has handed over to a new one")

// Freeze holds every change until resume is called: a new process reads the
// state file meanwhile. resume(true) ends changes here for good (they are
// the new process's); resume(false) lets them go on.
func (t *Table) Freeze() (resume func(handedOver bool)) {
	t.mu.Lock()
	return func(handedOver bool) {
		t.over = handedOver
		t.mu.Unlock()
	}
}

// Routes returns every route, by host.
func (t *Table) Routes(context.Context) ([]Route, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Route, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}

// Stats returns the proxy's counters.
func (t *Table) Stats(context.Context) (proxy.Stats, error) { return t.px.Stats(), nil }

// UpstreamStats returns the counters of each routed instance, by name.
func (t *Table) UpstreamStats(context.Context) ([]proxy.UpstreamStat, error) {
	return t.px.UpstreamStats(), nil
}

// New returns a table that keeps no state file, for a proxy in the same
// process as its engine.
func New(px *proxy.Proxy, dial Dialer) *Table {
	t, _ := Open(px, dial, "") // without a file there is nothing to fail
	return t
}
