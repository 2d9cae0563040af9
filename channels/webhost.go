package channels

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/store"
)

// webPage is the web page's route through the front proxy (--web-host), so
// it is served over HTTPS with a certificate like any installation's.
type webPage struct {
	host string
	ip   netip.Addr // the web listener, on loopback
	port int
}

// ServeWebPage routes the web host (Config.WebHost) to the web page's
// listener at addr, with HTTPS redirect once it has a certificate, and
// starts a renew operation when it has none.
func (e *Engine) ServeWebPage(ctx context.Context, addr string) error {
	if e.cfg.WebHost == "" {
		return nil
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsUnspecified() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	port, _ := strconv.Atoi(portText)
	e.mu.Lock()
	e.web = &webPage{host: e.cfg.WebHost, ip: ip, port: port}
	e.mu.Unlock()
	if err := e.syncWebPage(ctx); err != nil {
		return fmt.Errorf("--web-host %s: %w", e.cfg.WebHost, err)
	}
	if t, ok := e.webTarget("slipway"); ok {
		if _, err := e.renew(ctx, t, renewal{}); err != nil && !errors.Is(err, ErrNothingDue) {
			e.log.Warn("No certificate for the web page yet", "host", e.cfg.WebHost, "err", err)
		}
	}
	return nil
}

// webPageRoute returns the web page's route, if it has one.
func (e *Engine) webPageRoute() (webPage, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.web == nil {
		return webPage{}, false
	}
	return *e.web, true
}

// syncWebPage gives the proxy the web page's route.
func (e *Engine) syncWebPage(ctx context.Context) error {
	w, ok := e.webPageRoute()
	if !ok {
		return nil
	}
	if err := e.router.AddHost(ctx, w.host); err != nil {
		return err
	}
	if _, err := e.router.Route(ctx, w.host, router.LocalUpstream(w.ip), w.port); err != nil {
		return err
	}
	return e.syncWebHTTPS(ctx, w.host)
}

// syncWebHTTPS redirects the web page to HTTPS once it has a certificate:
// sign-in links and session cookies never cross the network in clear then.
func (e *Engine) syncWebHTTPS(ctx context.Context, host string) error {
	mode := store.HTTPSOn
	if e.hasCertificate(host) {
		mode = store.HTTPSRedirect
	}
	return e.router.SetHTTPS(ctx, host, mode, 0)
}

// webTarget is the web page's host, for a renew operation by user.
func (e *Engine) webTarget(user string) (certTarget, bool) {
	w, ok := e.webPageRoute()
	if !ok {
		return certTarget{}, false
	}
	return certTarget{
		op:    store.Operation{Type: store.OpRenew, User: user},
		hosts: []string{w.host},
		sync:  e.syncWebHTTPS,
	}, true
}
