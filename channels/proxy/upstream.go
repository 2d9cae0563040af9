package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DialFunc opens a connection to an upstream. Slipway's upstreams are containers reached
// inside their network namespace, so there is no address to give net.Dial: the function
// is the address.
type DialFunc func(ctx context.Context) (net.Conn, error)

const (
	// maxIdleConnsPerUpstream is generous because every client request in flight holds
	// one upstream connection; a small pool (net/http's default is 2) makes the proxy
	// dial and tear down connections under load.
	maxIdleConnsPerUpstream = 256
	idleConnTimeout         = 90 * time.Second

	// draining is a flag kept in the same word as the in-flight count (see acquire).
	draining = int64(1) << 62
)

// Upstream is one backend instance (a container). Requests hold it while they are in
// flight so Drain can wait for them.
type Upstream struct {
	name      string
	transport *http.Transport // requests with a body, upgrades
	fast      *connPool       // the rest (see fastPath)

	// state is the number of requests in flight, plus the draining flag; requests
	// counts those ever acquired, next to it as both change together.
	state     atomic.Int64
	requests  atomic.Uint64
	drained   chan struct{}
	drainOnce sync.Once

	// Health (health.go): down is set by a failed dial and cleared by the probe it
	// starts. The probes live until Drain cancels ctx.
	dial       DialFunc
	down       atomic.Bool
	probeEvery time.Duration
	ctx        context.Context
	cancel     context.CancelFunc
	probeMu    sync.Mutex
	stopped    bool // no probe may start any more
	probes     sync.WaitGroup
	probing    atomic.Int32 // probe goroutines alive, for tests
}

// NewUpstream returns an upstream that reaches its instance through dial. The name
// appears in logs. One upstream may serve several hosts; draining it stops it for all.
func NewUpstream(name string, dial DialFunc) *Upstream {
	dialUp := func(ctx context.Context) (net.Conn, error) {
		conn, err := dial(ctx)
		if err != nil {
			return nil, &dialError{upstream: name, err: err}
		}
		return conn, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Upstream{
		name: name,
		dial: dial, probeEvery: dialProbeInterval, ctx: ctx, cancel: cancel,
		fast: &connPool{dial: dialUp, maxIdle: maxIdleConnsPerUpstream, idleFor: idleConnTimeout},
		transport: &http.Transport{
			// The transport asks for "tcp" to some address; the address is meaningless
			// here (every connection of this transport goes to the same instance).
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialUp(ctx)
			},
			Proxy:               nil, // never HTTP_PROXY from the environment
			MaxIdleConnsPerHost: maxIdleConnsPerUpstream,
			IdleConnTimeout:     idleConnTimeout,
			ForceAttemptHTTP2:   false,
			DisableCompression:  true, // pass the app's encoding through untouched
		},
		drained: make(chan struct{}),
	}
}

// Name returns the name given to NewUpstream.
func (u *Upstream) Name() string { return u.name }

// InFlight returns the number of requests currently held on u.
func (u *Upstream) InFlight() int64 { return u.state.Load() &^ draining }

// Drain stops u taking new requests, waits until the requests in flight have finished
// or ctx ends, then closes u's idle connections. Once Drain has returned (either way),
// no request is ever sent to u again; Drain is meant for an upstream that a Swap or
// RemoveHost has just replaced.
func (u *Upstream) Drain(ctx context.Context) error {
	// Idle connections are closed in both cases; a request still in flight after a
	// timeout has its connection closed when it comes back, because the transport
	// closes connections that become idle after CloseIdleConnections until it is
	// asked for a new one, and u will not be asked again.
	defer u.fast.CloseIdleConnections()
	defer u.transport.CloseIdleConnections()
	u.stopProbes() // a draining upstream is never picked: nothing to probe for

	if u.state.Or(draining)&^draining == 0 {
		u.drainOnce.Do(func() { close(u.drained) })
	}
	select {
	case <-u.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain upstream %s with %d requests in flight: %w", u.name, u.InFlight(), ctx.Err())
	}
}

// roundTrip sends req to u's instance.
func (u *Upstream) roundTrip(req *http.Request) (*http.Response, error) {
	if fastPath(req) {
		return u.fast.RoundTrip(req)
	}
	return u.transport.RoundTrip(req)
}

// acquire registers a request on u, or reports false if u is draining, in which case
// the caller must read the route again: whoever drains u has already swapped it out.
//
// The race this prevents: a request loads the route (old upstream), then Swap and Drain
// run to completion, then the request sends to the old upstream, which may already be
// stopped. Counting first and checking the flag second, in one atomic word that Drain
// sets its flag in, orders the two: either this Add sees the flag and backs out, or
// Drain's Or sees this request counted and waits for it.
func (u *Upstream) acquire() bool {
	if u.state.Add(1)&draining != 0 {
		u.release()
		return false
	}
	u.requests.Add(1)
	return true
}

// isDraining reports whether Drain was called: u takes no new request, ever.
func (u *Upstream) isDraining() bool { return u.state.Load()&draining != 0 }

// release ends a request registered by acquire.
func (u *Upstream) release() {
	if u.state.Add(-1) == draining {
		u.drainOnce.Do(func() { close(u.drained) })
	}
}
