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
	// Route returns once requests for host go to instance, with the instance
	// it took them from.
	Route(ctx context.Context, host, instance string, port int) (replaced string, err error)
	Maintenance(ctx context.Context, host string, on bool, message string) error
	RemoveHost(ctx context.Context, host string) (replaced string, err error)
	// Drain waits for the requests in flight to an instance no host routes to.
	Drain(ctx context.Context, instance string) error
	Routes(ctx context.Context) ([]router.Route, error)
}

// routeRetry is how long a swap keeps asking a proxy that does not answer:
// long enough for the proxy process to be started again.
const routeRetry = 15 * time.Second

// route moves host to instance, asking again while the proxy process is
// being restarted.
func (e *Engine) route(host, instance string) (replaced string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), routeRetry)
	defer cancel()
	for {
		replaced, err = e.router.Route(ctx, host, instance, e.cfg.AppPort)
		if err == nil {
			return replaced, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the proxy did not take the new route (it will once it answers again): %w", err)
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

// syncRoutes makes the proxy's routes what the store says: each
// installation's host to its serving instance, with its maintenance page,
// and no host the store does not know. A proxy that kept serving while the
// daemon was down mostly has them already; one started afresh gets them all.
// It returns the serving instances.
func (e *Engine) syncRoutes(ctx context.Context, insts []store.Installation) (map[string]bool, error) {
	serving := map[string]bool{}
	hosts := map[string]bool{}
	for _, inst := range insts {
		if inst.State == store.StateDeprovisioned {
			continue
		}
		hosts[proxy.CanonicalHost(inst.Host)] = true
		if err := e.router.AddHost(ctx, inst.Host); err != nil {
			return nil, err
		}
		if inst.Instance != "" {
			serving[inst.Instance] = true
			if _, err := e.router.Route(ctx, inst.Host, inst.Instance, e.cfg.AppPort); err != nil {
				return nil, err
			}
		}
		msg := ""
		if inst.Maintenance != nil {
			msg = *inst.Maintenance
		}
		if err := e.router.Maintenance(ctx, inst.Host, inst.Maintenance != nil, msg); err != nil {
			return nil, err
		}
	}
	routes, err := e.router.Routes(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if !hosts[r.Host] {
			old, err := e.router.RemoveHost(ctx, r.Host)
			if err != nil {
				return nil, err
			}
			e.log.Info("Removed a route no installation has", "host", r.Host, "instance", old)
		}
	}
	return serving, nil
}
