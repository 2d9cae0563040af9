package router

import (
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
)

// The control protocol: a client connects to the proxy's unix socket, writes
// one request as a line of JSON and reads one response line. Every call has
// its own connection, so a drain that waits holds up nothing else.

type request struct {
	Op       string `json:"op"` // hello, add, route, maintenance, remove, drain, routes, stats, watch, upgrade, https, certs, challenge, alpn
	Host     string `json:"host,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Instances, when set, is route's set (Instance its first, for an older
	// server); Health its health path.
	Instances []string `json:"instances,omitempty"`
	Health    string   `json:"health,omitempty"`
	Port      int      `json:"port,omitempty"`
	On        bool     `json:"on,omitempty"`
	Message   string   `json:"message,omitempty"`
	Mode      string   `json:"mode,omitempty"`     // https
	HSTS      int      `json:"hsts,omitempty"`     // https
	Token     string   `json:"token,omitempty"`    // challenge
	KeyAuth   string   `json:"key_auth,omitempty"` // challenge; "" removes
	Domain    string   `json:"domain,omitempty"`   // alpn
	CertPEM   []byte   `json:"cert_pem,omitempty"` // alpn; empty removes
	KeyPEM    []byte   `json:"key_pem,omitempty"`  // alpn
	// Files are certificate pairs (NAME.crt, NAME.key) for putcerts: the
	// whole of another member's certificate directory.
	Files map[string][]byte `json:"files,omitempty"`
	// Wait bounds a drain, from the client's deadline (the server cannot
	// see the client's context).
	Wait time.Duration `json:"wait,omitempty"`
}

type response struct {
	Error       string               `json:"error,omitempty"`
	Retry       bool                 `json:"retry,omitempty"`        // ask again: a new process takes over
	Replaced    string               `json:"replaced,omitempty"`     // the first of ReplacedAll, for an older client
	ReplacedAll []string             `json:"replaced_all,omitempty"` // route, remove
	Certs       int                  `json:"certs,omitempty"`        // pairs loaded by certs
	Routes      []Route              `json:"routes,omitempty"`
	Stats       proxy.Stats          `json:"stats"`
	Upstreams   []proxy.UpstreamStat `json:"upstreams,omitempty"` // stats
	Hello       Hello                `json:"hello"`
}

// Hello is what a proxy process says about itself.
type Hello struct {
	PID       int    `json:"pid"`
	Addr      string `json:"addr"`                 // where it serves HTTP
	HTTPSAddr string `json:"https_addr,omitempty"` // where it serves HTTPS; "": it does not
	Version   string `json:"version"`
}
