package router

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// localPrefix names an upstream that is not an instance but a listener of
// slipway's own on this host (the web page behind --web-host): "@local/IP",
// with the route's port. Incus instance names cannot hold '@' or '/'.
const localPrefix = "@local/"

// LocalUpstream is the route target for a listener of slipway's own at ip.
func LocalUpstream(ip netip.Addr) string { return localPrefix + ip.String() }

// WithLocal returns a dialer that reaches LocalUpstream targets over TCP on
// loopback and every other instance through dial.
func WithLocal(dial Dialer) Dialer {
	return func(ctx context.Context, instance string, port int) (net.Conn, error) {
		rest, ok := strings.CutPrefix(instance, localPrefix)
		if !ok {
			return dial(ctx, instance, port)
		}
		ip, err := netip.ParseAddr(rest)
		if err != nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("route to %q: slipway's own listeners are reached on loopback only", instance)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	}
}
