package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// What an app is told about its client. Behind a CDN or load balancer the proxy's
// peer is that machine, not the client, so the forwarding fields it sends are the
// only account of the client there is; from anyone else they are the client's own
// claims. So: from a peer in TrustedProxies, X-Forwarded-For is kept and the peer
// appended, X-Forwarded-Proto and CF-Connecting-IP are kept, and the client address
// (X-Real-IP) is CF-Connecting-IP, else the last X-Forwarded-For entry that is not a
// trusted proxy. From any other peer, X-Forwarded-For is the peer, X-Forwarded-Proto
// what the peer spoke, X-Real-IP the peer, and CF-Connecting-IP is removed. Both
// paths (Serve's fast path and ServeHTTP) do the same.

// trusts reports whether the peer address ip (as X-Forwarded-For has it) is in one
// of the trusted prefixes.
func trusts(prefixes []netip.Prefix, ip string) bool {
	if len(prefixes) == 0 || ip == "" {
		return false
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientAddress is the client's address as a trusted peer tells it: CF-Connecting-IP
// when it is an address, else the last entry of the X-Forwarded-For chain (the
// values, comma-separated, in order) that is not a trusted proxy, else the first
// entry, else the peer.
func clientAddress(prefixes []netip.Prefix, cfIP, xff, peer string) string {
	if cfIP = strings.TrimSpace(cfIP); cfIP != "" {
		if _, err := netip.ParseAddr(cfIP); err == nil {
			return cfIP
		}
	}
	first := ""
	for rest := xff; rest != ""; {
		var entry string
		if i := strings.LastIndexByte(rest, ','); i >= 0 {
			entry, rest = rest[i+1:], rest[:i]
		} else {
			entry, rest = rest, ""
		}
		entry = strings.TrimSpace(entry)
		if _, err := netip.ParseAddr(entry); err != nil {
			continue
		}
		if !trusts(prefixes, entry) {
			return entry
		}
		first = entry
	}
	if first != "" {
		return first
	}
	return peer
}

// connInfo is what ServeHTTP knows of the connection a request came on, put into
// the request's context by the net/http server's ConnContext.
type connInfo struct {
	tls     bool
	ip      string // the peer, as X-Forwarded-For has it
	trusted bool   // the peer is a trusted proxy
}

type connInfoKey struct{}

// connContext records what the connection is (see connInfo).
func (s *server) connContext(ctx context.Context, c net.Conn) context.Context {
	info := &connInfo{}
	switch c := c.(type) {
	case *gateConn:
		info.tls, info.ip = c.tls, c.ip
	default:
		_, info.tls = c.(*tls.Conn)
		info.ip = clientIP(c)
	}
	info.trusted = trusts(s.proxy.TrustedProxies, info.ip)
	return context.WithValue(ctx, connInfoKey{}, info)
}

// infoOf returns what is known of r's connection; a request served by another
// server (ServeHTTP as a plain Handler) is read from r itself.
func (p *Proxy) infoOf(r *http.Request) *connInfo {
	if info, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
		return info
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = ""
	}
	return &connInfo{tls: r.TLS != nil, ip: ip, trusted: trusts(p.TrustedProxies, ip)}
}

// setForwarded sets the forwarding fields of an outbound request (see the top of
// this file); in is the request as the client sent it.
func (p *Proxy) setForwarded(out http.Header, in *http.Request, info *connInfo) {
	proto := "http"
	if info.tls || in.TLS != nil {
		proto = "https"
	}
	if info.trusted {
		prior := strings.Join(in.Header["X-Forwarded-For"], ", ")
		cfIP := in.Header.Get("Cf-Connecting-Ip")
		out.Set("X-Real-Ip", clientAddress(p.TrustedProxies, cfIP, prior, info.ip))
		if prior != "" {
			prior += ", "
		}
		out.Set("X-Forwarded-For", prior+info.ip)
		if v := in.Header["X-Forwarded-Proto"]; len(v) > 0 {
			proto = v[0]
		}
	} else {
		out.Del("Cf-Connecting-Ip")
		if info.ip != "" {
			out.Set("X-Forwarded-For", info.ip)
			out.Set("X-Real-Ip", info.ip)
		} else {
			out.Del("X-Forwarded-For")
			out.Del("X-Real-Ip")
		}
	}
	out.Set("X-Forwarded-Proto", proto)
	out.Set("X-Forwarded-Host", in.Host)
}
