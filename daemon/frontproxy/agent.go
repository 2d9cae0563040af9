package frontproxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/slipway-dev/slipway/channels/agent"
	"github.com/slipway-dev/slipway/channels/container"
	"golang.org/x/sys/unix"
)

// DefaultAgentAddr is where the slipway agent of a cluster member listens:
// next to Incus's own 8443.
const DefaultAgentAddr = ":8444"

// AgentDirIn is where the cluster's slipway certificate is kept in the data
// directory (see agent.CertFiles).
func AgentDirIn(data string) string { return filepath.Join(data, "agent") }

// Cluster is this host's part in an Incus cluster: its own agent, to serve,
// and the other members' agents, by member name (see Agents).
type Cluster struct {
	Server *agent.Server

	mu     sync.Mutex
	agents map[string]*agent.Client
}

// Agents are the other members' agents as last listed: a member that joins
// later is added when the runtime meets it.
func (c *Cluster) Agents() map[string]*agent.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*agent.Client, len(c.agents))
	for k, v := range c.agents {
		out[k] = v
	}
	return out
}

// SupervisorDirIn is where the supervisor every instance mounts is kept in
// the data directory: the same path on every member.
func SupervisorDirIn(data string) string { return filepath.Join(data, "supervisor") }

// JoinCluster has rt reach the instances of the other members of an Incus
// cluster through their agents, with the cluster's slipway certificate from
// dir (made when missing), at the port of agentAddr. A lone incusd on
// another host (--incus-url) is one such member, whose proxy is its agent. On
// a lone incusd's own host the proxy serves as that agent once the
// certificate has been put in dir. It returns nil otherwise (or with
// agentAddr ""): then nothing is listened on.
func JoinCluster(rt *container.Incus, agentAddr, dir string, logger *slog.Logger) (*Cluster, error) {
	if agentAddr == "" {
		return nil, nil
	}
	clustered, err := rt.Clustered()
	if err != nil {
		return nil, err
	}
	_, portText, err := net.SplitHostPort(agentAddr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("--agent-addr %q is not HOST:PORT", agentAddr)
	}
	elsewhere, remote := rt.Elsewhere()
	if !clustered && !remote {
		return agentHost(rt, dir, logger)
	}
	cert, err := agent.LoadOrCreate(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := agent.Pinned(cert)
	if err != nil {
		return nil, err
	}
	if remote {
		// The Incus host's agent reaches every instance; this host serves none.
		a := agent.NewClient(net.JoinHostPort(elsewhere, portText), cfg)
		rt.SetMembers(container.Members{Local: "this host", Relays: map[string]container.Relay{"": a}})
		return &Cluster{agents: map[string]*agent.Client{container.ElsewhereHost: a}}, nil
	}
	cl := &Cluster{Server: agent.NewServer(rt, cfg, logger), agents: map[string]*agent.Client{}}
	relay := func(member, addr string) container.Relay {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if c := cl.agents[member]; c != nil {
			return c
		}
		c := agent.NewClient(addr, cfg)
		cl.agents[member] = c
		return c
	}
	if _, err := rt.JoinCluster(port, relay); err != nil {
		return nil, err
	}
	return cl, nil
}

// agentHost is the agent of a lone incusd's own host, for a daemon that
// drives it from elsewhere: there when the certificate was put in dir.
func agentHost(rt *container.Incus, dir string, logger *slog.Logger) (*Cluster, error) {
	certFile, keyFile := agent.CertFiles(dir)
	if _, err := os.Stat(certFile); err != nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("the slipway agent certificate in %s: %w", dir, err)
	}
	cfg, err := agent.Pinned(cert)
	if err != nil {
		return nil, err
	}
	return &Cluster{Server: agent.NewServer(rt, cfg, logger), agents: map[string]*agent.Client{}}, nil
}

// listenShared listens on addr with SO_REUSEPORT: during an upgrade the old
// proxy process still holds the agent's port while the new one starts, and
// the kernel spreads new connections over both until the old one closes.
func listenShared(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}
