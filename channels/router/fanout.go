package router

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Fanout drives the proxies of every member of a cluster as one, so a
// request arriving at any member's proxy finds its route. A change goes to
// all of them at once and returns once every one took it; a member whose
// proxy does not answer (it is down, or its member is) does not hold the
// others up: the change is logged as missed there, and TakeStale tells the
// engine to give that proxy every route again.
type Fanout struct {
	Local   *Client            // this host's proxy: its answers are the ones returned
	Others  map[string]*Client // the other members' proxies, by member name
	CertDir string             // this host's certificates, copied to the others on ReloadCerts
	Log     *slog.Logger

	// Members, when set, gives the other members' proxies anew for each
	// change (members join); Others is then ignored. A member never seen
	// before gets every route (see TakeStale).
	Members func() map[string]*Client
	known   map[string]bool

	mu    sync.Mutex
	stale bool
	down  map[string]time.Time // members whose proxy did not answer, until when they are left out
}

// othersTimeout bounds a change on another member's proxy.
const othersTimeout = 5 * time.Second

// downFor is how long a member whose proxy did not answer is left out of
// the changes (each would wait othersTimeout for it): it is tried again
// after, and given every route once it answers.
const downFor = 10 * time.Second

// each applies fn to the local proxy and to the others at once, and returns
// the local proxy's error.
func (f *Fanout) each(ctx context.Context, what string, fn func(context.Context, *Client) error) error {
	var wg sync.WaitGroup
	for name, c := range f.others() {
		if f.isDown(name) {
			f.mu.Lock()
			f.stale = true
			f.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), othersTimeout)
			defer cancel()
			if err := fn(octx, c); err != nil {
				f.missed(name, what, err)
			}
		}()
	}
	err := fn(ctx, f.Local)
	wg.Wait()
	return err
}

// others are the other members' proxies now; a new one marks the routes
// stale, so it gets them all.
func (f *Fanout) others() map[string]*Client {
	if f.Members == nil {
		return f.Others
	}
	now := f.Members()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.known == nil {
		f.known = map[string]bool{}
		for name := range now {
			f.known[name] = true
		}
	}
	for name := range now {
		if !f.known[name] {
			f.known[name] = true
			f.stale = true
		}
	}
	return now
}

func (f *Fanout) isDown(member string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Before(f.down[member])
}

func (f *Fanout) missed(member, what string, err error) {
	f.mu.Lock()
	f.stale = true
	if f.down == nil {
		f.down = map[string]time.Time{}
	}
	f.down[member] = time.Now().Add(downFor)
	f.mu.Unlock()
	if f.Log != nil {
		f.Log.Warn("A member's proxy missed a change; it gets every route again once it answers", "member", member, "change", what, "err", err)
	}
}

// TakeStale reports whether a proxy missed a change since the last call.
func (f *Fanout) TakeStale() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stale
	f.stale = false
	return s
}

func (f *Fanout) AddHost(ctx context.Context, host string) error {
	return f.each(ctx, "add "+host, func(ctx context.Context, c *Client) error { return c.AddHost(ctx, host) })
}

// Route routes host to instance alone on every proxy and returns what the
// local one replaced.
func (f *Fanout) Route(ctx context.Context, host, instance string, port int) (string, error) {
	var replaced string
	err := f.each(ctx, "route "+host, func(ctx context.Context, c *Client) error {
		r, err := c.Route(ctx, host, instance, port)
		if c == f.Local {
			replaced = r
		}
		return err
	})
	return replaced, err
}

// RouteSet spreads host over instances on every proxy and returns what the
// local one replaced.
func (f *Fanout) RouteSet(ctx context.Context, host string, instances []string, port int, health string) ([]string, error) {
	var replaced []string
	err := f.each(ctx, "route "+host, func(ctx context.Context, c *Client) error {
		r, err := c.RouteSet(ctx, host, instances, port, health)
		if c == f.Local {
			replaced = r
		}
		return err
	})
	return replaced, err
}

func (f *Fanout) Maintenance(ctx context.Context, host string, on bool, message string) error {
	return f.each(ctx, "maintenance "+host, func(ctx context.Context, c *Client) error { return c.Maintenance(ctx, host, on, message) })
}

func (f *Fanout) RemoveHost(ctx context.Context, host string) (string, error) {
	var replaced string
	err := f.each(ctx, "remove "+host, func(ctx context.Context, c *Client) error {
		r, err := c.RemoveHost(ctx, host)
		if c == f.Local {
			replaced = r
		}
		return err
	})
	return replaced, err
}

// Drain waits until no proxy has requests in flight to instance (any of
// them may have sent it some), or ctx ends. A proxy that does not answer
// has nothing in flight that the drain could wait for.
func (f *Fanout) Drain(ctx context.Context, instance string) error {
	var wg sync.WaitGroup
	for _, c := range f.others() {
		wg.Add(1)
		go func() { defer wg.Done(); c.Drain(ctx, instance) }()
	}
	err := f.Local.Drain(ctx, instance)
	wg.Wait()
	return err
}

// Routes are the local proxy's.
func (f *Fanout) Routes(ctx context.Context) ([]Route, error) { return f.Local.Routes(ctx) }

func (f *Fanout) SetHTTPS(ctx context.Context, host, mode string, hsts int) error {
	return f.each(ctx, "https "+host, func(ctx context.Context, c *Client) error { return c.SetHTTPS(ctx, host, mode, hsts) })
}

// ReloadCerts has this host's proxy read its certificate directory again and
// gives the others a copy of it: HTTPS is served by every member.
func (f *Fanout) ReloadCerts(ctx context.Context) error {
	files, err := readCertDir(f.CertDir)
	if err != nil {
		return err
	}
	return f.each(ctx, "certificates", func(ctx context.Context, c *Client) error {
		if c == f.Local {
			return c.ReloadCerts(ctx)
		}
		return c.PutCerts(ctx, files)
	})
}

// Challenge sets an ACME HTTP-01 answer on every proxy: the CA may ask any
// member the domain's DNS names.
func (f *Fanout) Challenge(ctx context.Context, token, keyAuth string) error {
	return f.each(ctx, "challenge", func(ctx context.Context, c *Client) error { return c.Challenge(ctx, token, keyAuth) })
}

// ALPNChallenge sets a TLS-ALPN-01 certificate on every proxy.
func (f *Fanout) ALPNChallenge(ctx context.Context, domain string, certPEM, keyPEM []byte) error {
	return f.each(ctx, "challenge", func(ctx context.Context, c *Client) error { return c.ALPNChallenge(ctx, domain, certPEM, keyPEM) })
}
