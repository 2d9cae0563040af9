package container_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/agent"
	"github.com/slipway-dev/slipway/channels/container"
)

// countingRelay counts the connections it makes for the runtime.
type countingRelay struct {
	container.Relay
	supervisor, app atomic.Int64
}

func (r *countingRelay) DialSupervisor(ctx context.Context, name string) (net.Conn, error) {
	r.supervisor.Add(1)
	return r.Relay.DialSupervisor(ctx, name)
}

func (r *countingRelay) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	r.app.Add(1)
	return r.Relay.Dial(ctx, name, port)
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := agent.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// An instance on another member is delivered to, started and dialled
// through that member's agent. Here the "other member" is this host: a
// second runtime serves the agent, and the first is told its instances are
// elsewhere.
func TestInstancesOfAnotherMemberAreReachedThroughItsAgent(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	there, err := container.Connect(c.Project(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer there.Close()
	cfg, err := agent.Pinned(selfSigned(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- agent.NewServer(there, cfg, nil).Serve(ln) }()
	defer func() { ln.Close(); <-done }()

	relay := &countingRelay{Relay: agent.NewClient(ln.Addr().String(), cfg)}
	// Off a cluster an instance's location is "": call this host another
	// member, so every instance is "" and elsewhere.
	c.SetMembers(container.Members{Local: "this-host", Relays: map[string]container.Relay{"": relay}})

	ctx := context.Background()
	name := launch(t, c, nil)
	if err := c.Deliver(ctx, name, tarOf(map[string]string{"public/index.html": "through the agent\n"})); err != nil {
		t.Fatal(err)
	}
	if err := c.StartProcesses(ctx, name, web(`exec httpd -f -p "$PORT" -h /app/public`, map[string]string{"PORT": "5000"})); err != nil {
		t.Fatal(err)
	}
	if body := waitGet(t, c, name, 5000, "/index.html", 5*time.Second); body != "through the agent\n" {
		t.Fatalf("GET /index.html = %q", body)
	}
	if relay.supervisor.Load() < 2 || relay.app.Load() < 1 {
		t.Fatalf("the agent was not used: %d supervisor and %d app connections", relay.supervisor.Load(), relay.app.Load())
	}
	// A member with no agent known: the reason, not a dial into this host.
	c.SetMembers(container.Members{Local: "this-host"})
	if _, err := c.Dial(ctx, name, 5000); err == nil || !strings.Contains(err.Error(), "no slipway agent") {
		t.Fatalf("dial without an agent for the member: %v", err)
	}
}
