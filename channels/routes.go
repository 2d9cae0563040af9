package channels

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/store"
)

// Router is the front proxy as the engine drives it: a router.Table in the
// same process (tests), or a router.Client of the proxy process, which keeps
// serving while the daemon is down.
type Router interface {
	AddHost(ctx context.Context, host string) error
	// Route returns once requests for host go to instance alone, with the
	// instance it took them from (the web page's route).
	Route(ctx context.Context, host, instance string, port int) (replaced string, err error)
	// RouteSet returns once requests for host are spread over instances,
	// with the instances it took them from; the proxy checks health on each.
	RouteSet(ctx context.Context, host string, instances []string, port int, health string) (replaced []string, err error)
	Maintenance(ctx context.Context, host string, on bool, message string) error
	RemoveHost(ctx context.Context, host string) (replaced string, err error)
	// Drain waits for the requests in flight to an instance no host routes to.
	Drain(ctx context.Context, instance string) error
	Routes(ctx context.Context) ([]router.Route, error)
	// SetHTTPS says how host is served over TLS (store.HTTPSOff, On,
	// Redirect) and its HSTS max-age in seconds.
	SetHTTPS(ctx context.Context, host, mode string, hsts int) error
	// ReloadCerts has the proxy read the certificate directory again.
	ReloadCerts(ctx context.Context) error
}

// routeRetry is how long a swap keeps asking a proxy that does not answer:
// long enough for the proxy process to be started again.
const routeRetry = 15 * time.Second

// routeAll moves every name inst answers on to instances (its web members),
// whose health path the proxy checks, and returns the instances its own host
// was served from and no longer is.
func (e *Engine) routeAll(inst store.Installation, instances []string, health string) (replaced []string, err error) {
	hosts, err := e.hostsOf(context.Background(), inst)
	if err != nil {
		return nil, err
	}
	for i, h := range hosts {
		old, err := e.route(h, instances, health)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			replaced = old
		}
	}
	return replaced, nil
}

// route moves host to instances, asking again while the proxy process is
// being restarted.
func (e *Engine) route(host string, instances []string, health string) (replaced []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), routeRetry)
	defer cancel()
	for {
		replaced, err = e.router.RouteSet(ctx, host, instances, e.cfg.AppPort, health)
		if err == nil {
			return replaced, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the proxy did not take the new route (it will once it answers again): %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// SyncRoutes gives the proxy every route the store has, as after a start.
func (e *Engine) SyncRoutes(ctx context.Context) error {
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		return err
	}
	_, err = e.syncRoutes(ctx, insts)
	return err
}

// syncRoutes makes the proxy's routes what the store says: each name an
// installation answers on to its serving instance, with its maintenance page
// and HTTPS, and no host the store does not know. A proxy that kept serving
// while the daemon was down mostly has them already; one started afresh gets
// them all. It returns the serving instances.
func (e *Engine) syncRoutes(ctx context.Context, insts []store.Installation) (map[string]bool, error) {
	serving := map[string]bool{}
	known := map[string]bool{}
	for _, inst := range insts {
		if inst.State == store.StateDeprovisioned {
			continue
		}
		for _, m := range inst.Members {
			serving[m.Name] = true
		}
		hosts, err := e.hostsOf(ctx, inst)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			known[proxy.CanonicalHost(h)] = true
			if err := e.syncHost(ctx, inst, h); err != nil {
				return nil, err
			}
		}
	}
	if w, ok := e.webPageRoute(); ok {
		known[proxy.CanonicalHost(w.host)] = true
		if err := e.syncWebPage(ctx); err != nil {
			return nil, err
		}
	}
	routes, err := e.router.Routes(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if !known[r.Host] {
			old, err := e.router.RemoveHost(ctx, r.Host)
			if err != nil {
				return nil, err
			}
			e.log.Info("Removed a route no installation has", "host", r.Host, "instance", old)
		}
	}
	return serving, nil
}

// syncHost gives the proxy host's route as inst has it: its serving
// instance, its maintenance page and its HTTPS.
func (e *Engine) syncHost(ctx context.Context, inst store.Installation, host string) error {
	if err := e.router.AddHost(ctx, host); err != nil {
		return err
	}
	if web := webMembers(inst.Members); len(web) > 0 {
		if _, err := e.router.RouteSet(ctx, host, web, e.cfg.AppPort, inst.Health); err != nil {
			return err
		}
	}
	msg := ""
	if inst.Maintenance != nil {
		msg = *inst.Maintenance
	}
	if err := e.router.Maintenance(ctx, host, inst.Maintenance != nil, msg); err != nil {
		return err
	}
	return e.syncHTTPS(ctx, inst, host)
}
