package proxy

import "math/rand/v2"

// pick chooses the forwarder of r for a request, never avoid's nor one draining, or
// returns nil if there is none. One upstream gets every request, down or not: there is
// nothing to choose, and nothing to load but the route; drained is the one whose
// acquire just failed (it is draining), the caller's to tell. Among several, pickOf.
func (r *route) pick(avoid, drained *Upstream) *forwarder {
	if r == nil {
		return nil
	}
	switch fs := r.forwarders; len(fs) {
	case 0:
		return nil
	case 1:
		if fs[0].upstream == avoid || fs[0].upstream == drained {
			return nil
		}
		return fs[0]
	default:
		return pickOf(fs, avoid)
	}
}

// pickOf is the power of two choices: of two upstreams drawn at random among those up,
// the one with fewer requests in flight. It spreads load nearly as well as asking
// every upstream, without the herd that always picking the least loaded makes. If
// none is up, one of the others is tried anyway: a failure is no worse than a 502.
func pickOf(fs []*forwarder, avoid *Upstream) *forwarder {
	n := len(fs)
	start := rand.IntN(n)
	a := nextUsable(fs, start, avoid, true)
	if a < 0 {
		if a = nextUsable(fs, start, avoid, false); a < 0 {
			return nil
		}
		return fs[a]
	}
	other := rand.IntN(n - 1)
	if other >= a {
		other++
	}
	b := nextUsable(fs, other, avoid, true)
	if b == a || fs[b].upstream.InFlight() >= fs[a].upstream.InFlight() {
		return fs[a]
	}
	return fs[b]
}

// nextUsable returns the index of the first forwarder from i on (wrapping) that may
// take a request, only those up if up, or -1.
func nextUsable(fs []*forwarder, i int, avoid *Upstream, up bool) int {
	for range fs {
		f := fs[i]
		if u := f.upstream; u != avoid && !u.isDraining() && (!up || !u.down.Load() && !f.isUnhealthy()) {
			return i
		}
		if i++; i == len(fs) {
			i = 0
		}
	}
	return -1
}
