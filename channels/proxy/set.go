package proxy

import (
	"slices"
	"strings"
)

// A route holds a set of upstreams, the instances of one app: SwapSet replaces the set
// and pick chooses one per request.

// SwapSet makes ups serve host, adding host if it is unknown, and returns the upstreams
// that no longer serve it, for the caller to drain. Every request that starts after
// SwapSet returns goes to one of ups; requests already holding an old upstream finish
// there, which is what its Drain waits for. An upstream kept in the set keeps its
// in-flight requests and its health. A host's maintenance mode is kept. An empty set
// leaves the host known without an upstream (503).
func (p *Proxy) SwapSet(host string, ups []*Upstream) (old []*Upstream) {
	host = canonicalHost(host)
	p.update(func(t routeTable) {
		prev := t[host]
		next := &route{}
		if prev != nil {
			*next = *prev
		}
		next.forwarders = nil
		for _, up := range ups {
			if up != nil && next.index(up) < 0 {
				next.forwarders = append(next.forwarders, p.forwarderFor(prev, host, up))
			}
		}
		if prev != nil {
			for _, f := range prev.forwarders {
				if next.index(f.upstream) < 0 {
					old = append(old, f.upstream)
				}
			}
		}
		t[host] = next
	})
	p.logger.Info("Swapped upstreams", "host", host, "upstreams", namesOf(ups), "replaced", namesOf(old))
	return old
}

// forwarderFor returns prev's forwarder to up if it has one, else a new one.
func (p *Proxy) forwarderFor(prev *route, host string, up *Upstream) *forwarder {
	if i := prev.index(up); i >= 0 {
		return prev.forwarders[i]
	}
	return p.newForwarder(host, up)
}

// Swap is SwapSet with the one upstream up (nil: none), returning the first upstream
// replaced (nil if none); use SwapSet when host may have had several.
func (p *Proxy) Swap(host string, up *Upstream) (old *Upstream) {
	var ups []*Upstream
	if up != nil {
		ups = []*Upstream{up}
	}
	return first(p.SwapSet(host, ups))
}

// RemoveHostSet forgets host, whose requests then get 404, and returns its upstreams
// for the caller to drain.
func (p *Proxy) RemoveHostSet(host string) (old []*Upstream) {
	host = canonicalHost(host)
	p.update(func(t routeTable) {
		old = t[host].upstreams()
		delete(t, host)
	})
	p.logger.Info("Removed host", "host", host, "upstreams", namesOf(old))
	return old
}

// RemoveHost is RemoveHostSet returning the first upstream (nil if none).
func (p *Proxy) RemoveHost(host string) (old *Upstream) { return first(p.RemoveHostSet(host)) }

// Current returns the first upstream serving host, or nil.
func (p *Proxy) Current(host string) *Upstream { return first(p.Set(host)) }

// Set returns the upstreams serving host, in the order given to SwapSet.
func (p *Proxy) Set(host string) []*Upstream {
	return (*p.routes.Load())[canonicalHost(host)].upstreams()
}

// UpstreamStat is one routed upstream's counters, for export as metrics.
type UpstreamStat struct {
	Name     string `json:"name"`
	Requests uint64 `json:"requests"`  // acquired since NewUpstream, retries included
	InFlight int64  `json:"in_flight"` // held now
	Down     bool   `json:"down"`      // out of the choice: its dial or, for some host, its health check failed
}

// UpstreamStats returns the counters of every upstream serving a host, by name.
func (p *Proxy) UpstreamStats() []UpstreamStat {
	seen := map[*Upstream]int{}
	var out []UpstreamStat
	for _, rt := range *p.routes.Load() {
		for _, f := range rt.forwarders {
			i, ok := seen[f.upstream]
			if !ok {
				u := f.upstream
				i = len(out)
				seen[u] = i
				out = append(out, UpstreamStat{Name: u.name, Requests: u.requests.Load(), InFlight: u.InFlight(), Down: u.down.Load()})
			}
			out[i].Down = out[i].Down || f.isUnhealthy()
		}
	}
	slices.SortFunc(out, func(a, b UpstreamStat) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// upstreams returns r's upstreams (nil for a nil route).
func (r *route) upstreams() []*Upstream {
	if r == nil || len(r.forwarders) == 0 {
		return nil
	}
	ups := make([]*Upstream, len(r.forwarders))
	for i, f := range r.forwarders {
		ups[i] = f.upstream
	}
	return ups
}

// index returns where up is in r's set, or -1.
func (r *route) index(up *Upstream) int {
	if r == nil {
		return -1
	}
	return slices.IndexFunc(r.forwarders, func(f *forwarder) bool { return f.upstream == up })
}

func first(ups []*Upstream) *Upstream {
	if len(ups) == 0 {
		return nil
	}
	return ups[0]
}

func namesOf(ups []*Upstream) []string {
	names := make([]string, len(ups))
	for i, u := range ups {
		names[i] = nameOf(u)
	}
	return names
}
