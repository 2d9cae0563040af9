package frontproxy

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"

	"github.com/slipway-dev/slipway/channels/agent"
	"github.com/slipway-dev/slipway/channels/container"
)

// DefaultAgentAddr is where the slipway agent of a cluster member listens:
// next to Incus's own 8443.
const DefaultAgentAddr = ":8444"

// AgentDirIn is where the cluster's slipway certificate is kept in the data
// directory (see agent.CertFiles).
func AgentDirIn(data string) string { return filepath.Join(data, "agent") }

// JoinCluster has rt reach the instances of the other members of an Incus
// cluster through their agents, with the cluster's slipway certificate from
// dir (made when missing), at the port of agentAddr. It returns the TLS
// setup for this member's own agent, or nil off a cluster (or with
// agentAddr ""): then nothing is listened on.
func JoinCluster(rt *container.Incus, agentAddr, dir string, logger *slog.Logger) (*agent.Server, error) {
	if agentAddr == "" {
		return nil, nil
	}
	clustered, err := rt.Clustered()
	if err != nil || !clustered {
		return nil, err
	}
	_, portText, err := net.SplitHostPort(agentAddr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("--agent-addr %q is not HOST:PORT", agentAddr)
	}
	cert, err := agent.LoadOrCreate(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := agent.Pinned(cert)
	if err != nil {
		return nil, err
	}
	if _, err := rt.JoinCluster(port, func(addr string) container.Relay { return agent.NewClient(addr, cfg) }); err != nil {
		return nil, err
	}
	return agent.NewServer(rt, cfg, logger), nil
}
