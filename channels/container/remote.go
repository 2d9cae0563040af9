package container

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	incus "github.com/lxc/incus/v6/client"
)

// Remote is an incusd reached through its HTTPS API with a client
// certificate, instead of the local unix socket (URL "").
//
// slipway reaches an instance's supervisor and app through this host's
// kernel (the instance's root and network namespace, see supervised.go and
// netns.go), so the incusd must run on this host: a remote that does not is
// refused at connect, with the reason.
type Remote struct {
	URL        string // https://HOST:8443
	CertFile   string // the client certificate the server trusts (PEM)
	KeyFile    string // its key
	ServerCert string // the server's certificate, when no system CA signs it ("": the system's CAs)
}

// connect dials the remote's API in the default project.
func (r Remote) connect(ctx context.Context) (incus.InstanceServer, error) {
	if !strings.HasPrefix(r.URL, "https://") {
		return nil, fmt.Errorf("--incus-url %q: give https://HOST:PORT", r.URL)
	}
	read := func(flag, path string) (string, error) {
		if path == "" {
			return "", nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		return string(b), nil
	}
	args := &incus.ConnectionArgs{UserAgent: "slipway", SkipGetEvents: true}
	var err error
	if args.TLSClientCert, err = read("--incus-cert", r.CertFile); err != nil {
		return nil, err
	}
	if args.TLSClientKey, err = read("--incus-key", r.KeyFile); err != nil {
		return nil, err
	}
	if args.TLSServerCert, err = read("--incus-server-cert", r.ServerCert); err != nil {
		return nil, err
	}
	if args.TLSClientCert == "" || args.TLSClientKey == "" {
		return nil, fmt.Errorf("--incus-url needs --incus-cert and --incus-key: the client certificate the server trusts (incus config trust add-certificate)")
	}
	srv, err := incus.ConnectIncusWithContext(ctx, r.URL, args)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, r.URL, err)
	}
	if err := checkServer(srv, r.URL); err != nil {
		srv.Disconnect()
		return nil, err
	}
	return srv, nil
}

// checkServer refuses a server that does not trust the certificate (it
// answers as for anyone, with almost nothing: better said at once than at
// the first launch) and one whose incusd is not a process on this host (its
// instances' roots and namespaces would not be here).
func checkServer(srv incus.InstanceServer, url string) error {
	server, _, err := srv.GetServer()
	if err != nil {
		return wrap(err, "ask %s about itself", url)
	}
	if server.Auth != "trusted" {
		return fmt.Errorf("the Incus at %s does not trust --incus-cert: add it there with `incus config trust add-certificate FILE`", url)
	}
	return nil
}

// localIncusd reports whether pid is an incusd process on this host.
func localIncusd(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return pid > 0 && err == nil && strings.TrimSpace(string(comm)) == "incusd"
}

// Elsewhere reports whether the runtime drives a lone incusd on another host
// (through --incus-url), whose instances it reaches only through the slipway
// agent there, and that host's name.
func (c *Incus) Elsewhere() (host string, ok bool) {
	if c.remoteURL == "" {
		return "", false
	}
	server, _, err := c.srv.GetServer()
	if err != nil || server.Environment.ServerClustered || localIncusd(server.Environment.ServerPid) {
		return "", false
	}
	u, err := url.Parse(c.remoteURL)
	if err != nil {
		return "", false
	}
	return u.Hostname(), true
}

// ElsewhereHost is the member name under which a lone remote incusd's agent is
// known (Incus gives a lone server's instances no location).
const ElsewhereHost = "the Incus host"
