package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Health of the upstreams of a route with several: a picked upstream should be one that
// answers. Two signals take one out of the choice (see pickOf), neither matters to a
// route with one upstream, which gets every request whatever its state:
//   - passive: a failed dial marks the upstream down, and a probe dials it every
//     probeEvery until a dial succeeds;
//   - active, for a route with a health path (SetHealth): each of its upstreams is
//     asked for the path every healthEvery; healthFails failures in a row mark it
//     unhealthy for that host, one success clears it.
//
// Every probe runs on a goroutine the upstream owns (goProbe), which Drain stops.
const (
	dialProbeInterval = 250 * time.Millisecond
	healthInterval    = time.Second
	healthTimeout     = time.Second
	healthFails       = 2
	healthBodyLimit   = 64 << 10
)

// goProbe runs probe on a goroutine that Drain cancels (through u.ctx) and waits for.
// It reports false, running nothing, once Drain has begun.
func (u *Upstream) goProbe(probe func()) bool {
	u.probeMu.Lock()
	defer u.probeMu.Unlock()
	if u.stopped {
		return false
	}
	u.probes.Add(1)
	u.probing.Add(1)
	go func() {
		defer u.probes.Done()
		defer u.probing.Add(-1)
		probe()
	}()
	return true
}

// stopProbes ends u's probes and waits for them; none starts after.
func (u *Upstream) stopProbes() {
	u.probeMu.Lock()
	u.stopped = true
	u.probeMu.Unlock()
	u.cancel()
	u.probes.Wait()
}

// markDown takes u out of the choice after a failed dial, until a dial succeeds.
func (u *Upstream) markDown() {
	if u.down.CompareAndSwap(false, true) {
		u.goProbe(u.probeDial)
	}
}

// probeDial dials u every probeEvery and marks it up on the first success.
func (u *Upstream) probeDial() {
	tick := time.NewTicker(u.probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(u.ctx, healthTimeout)
		conn, err := u.dial(ctx)
		cancel()
		if err == nil {
			conn.Close()
			u.down.Store(false)
			return
		}
	}
}

// healthCheck is the active check of one forwarder, started and stopped under the
// proxy's mu (see syncHealth). Its verdict is its own: a check being stopped may
// still finish a request, and must not speak for its successor.
type healthCheck struct {
	path      string
	cancel    context.CancelFunc
	unhealthy atomic.Bool
}

// isUnhealthy reports whether f's active check, if one runs, failed.
func (f *forwarder) isUnhealthy() bool {
	hc := f.check.Load()
	return hc != nil && hc.unhealthy.Load()
}

// syncHealth starts the active checks next asks for and stops those it no longer
// does: routes with a health path and two upstreams or more. Called under p.mu with
// the table being replaced and its successor.
func (p *Proxy) syncHealth(prev, next routeTable) {
	want := map[*forwarder]string{}
	for _, rt := range next {
		if rt.health != "" && len(rt.forwarders) > 1 {
			for _, f := range rt.forwarders {
				want[f] = rt.health
			}
		}
	}
	for _, rt := range prev {
		for _, f := range rt.forwarders {
			if hc := f.check.Load(); hc != nil {
				if path, ok := want[f]; !ok || path != hc.path {
					f.check.Store(nil)
					hc.cancel()
				}
			}
		}
	}
	for f, path := range want {
		if f.check.Load() == nil {
			f.startCheck(path)
		}
	}
}

func (f *forwarder) startCheck(path string) {
	ctx, cancel := context.WithCancel(f.upstream.ctx)
	hc := &healthCheck{path: path, cancel: cancel}
	if !f.upstream.goProbe(func() { f.checkHealth(ctx, hc) }) {
		cancel() // draining: never picked again
		return
	}
	f.check.Store(hc)
}

// checkHealth asks for hc's path every healthEvery until ctx ends.
func (f *forwarder) checkHealth(ctx context.Context, hc *healthCheck) {
	path := hc.path
	tick := time.NewTicker(f.proxy.healthEvery)
	defer tick.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch {
		case f.healthy(ctx, path):
			fails = 0
			hc.unhealthy.Store(false)
		case ctx.Err() != nil:
			return
		default:
			if fails++; fails == healthFails {
				f.proxy.logger.Warn("Upstream failed its health check", "host", f.host, "upstream", f.upstream.name, "path", path)
				hc.unhealthy.Store(true)
			}
		}
	}
}

// healthy reports whether GET path, for f's host, answers 2xx or 3xx in time.
func (f *forwarder) healthy(ctx context.Context, path string) bool {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+upstreamURLHost+path, nil)
	if err != nil {
		return false
	}
	req.Host = f.host
	req.Header.Set("User-Agent", "slipway-health-check")
	res, err := f.upstream.transport.RoundTrip(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, healthBodyLimit))
	res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 400
}

// SetHealth gives host a health path ("" none), asked on each of its upstreams while
// it has two or more (see the top of this file). An unknown host is added.
func (p *Proxy) SetHealth(host, path string) {
	host = canonicalHost(host)
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	p.update(func(t routeTable) {
		next := &route{}
		if prev := t[host]; prev != nil {
			*next = *prev
		}
		next.health = path
		t[host] = next
	})
	p.logger.Info("Health path set", "host", host, "path", path)
}
