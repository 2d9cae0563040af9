package frontproxy

import (
	"context"
	"testing"
)

// An upgrade starts the new proxy while the old one holds the agent's port.
func TestTwoProxiesShareTheAgentPort(t *testing.T) {
	ctx := context.Background()
	a, err := listenShared(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := listenShared(ctx, a.Addr().String())
	if err != nil {
		t.Fatalf("a second listener on the agent's port: %v", err)
	}
	b.Close()
}
