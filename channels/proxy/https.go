package proxy

import (
	"fmt"
	"net/http"
	"strconv"
)

// HTTPSMode is how a host is served over TLS.
type HTTPSMode uint8

const (
	HTTPSOff      HTTPSMode = iota // no TLS: a handshake for the host fails; HTTP as ever
	HTTPSOn                        // HTTP and HTTPS both serve the app
	HTTPSRedirect                  // HTTPS serves the app; HTTP answers 308 to it
)

func (m HTTPSMode) String() string {
	switch m {
	case HTTPSOn:
		return "on"
	case HTTPSRedirect:
		return "redirect"
	}
	return "off"
}

// ParseHTTPSMode reads "off" (or ""), "on" or "redirect".
func ParseHTTPSMode(s string) (HTTPSMode, error) {
	switch s {
	case "", "off":
		return HTTPSOff, nil
	case "on":
		return HTTPSOn, nil
	case "redirect":
		return HTTPSRedirect, nil
	}
	return HTTPSOff, fmt.Errorf("HTTPS mode %q is not off, on or redirect", s)
}

// SetHTTPS sets how host is served over TLS, and the max-age in seconds of the
// Strict-Transport-Security its HTTPS responses carry (0: none). An unknown host is
// added. The host's upstream and maintenance are kept.
func (p *Proxy) SetHTTPS(host string, mode HTTPSMode, hsts int) error {
	if mode > HTTPSRedirect {
		return fmt.Errorf("HTTPS mode %d is not off, on or redirect", mode)
	}
	if hsts < 0 {
		return fmt.Errorf("HSTS max-age %d is negative", hsts)
	}
	host = canonicalHost(host)
	p.update(func(t routeTable) {
		next := &route{}
		if prev := t[host]; prev != nil {
			*next = *prev
		}
		next.https = mode
		next.hsts = nil
		if hsts > 0 {
			next.hsts = []byte("Strict-Transport-Security: max-age=" + strconv.Itoa(hsts) + "\r\n")
		}
		t[host] = next
	})
	p.logger.Info("HTTPS set", "host", host, "mode", mode.String(), "hsts", hsts)
	return nil
}

// hstsValue is the Strict-Transport-Security value of a route, for a header map.
func (r *route) hstsValue() string {
	const prefix = len("Strict-Transport-Security: ")
	return string(r.hsts[prefix : len(r.hsts)-2])
}

// redirectTarget is the https URL an HTTP request for host in redirect mode is sent
// to: the port the proxy serves HTTPS on, left out when it is 443.
func (p *Proxy) redirectTarget(host, requestURI string) string {
	u := "https://" + host
	if port := p.httpsPort.Load(); port != 0 && port != 443 {
		u += ":" + strconv.Itoa(int(port))
	}
	if requestURI == "" || requestURI[0] != '/' {
		requestURI = "/" + requestURI
	}
	return u + requestURI
}

func writeRedirect(w http.ResponseWriter, target string) {
	w.Header().Set("Location", target)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusPermanentRedirect)
	w.Write([]byte("this app is served at " + target + "\n"))
}

func writeNoHTTPS(w http.ResponseWriter, host string) {
	http.Error(w, printableHost(host)+" is not served over HTTPS", http.StatusMisdirectedRequest)
}
