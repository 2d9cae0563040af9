package container

import (
	"context"
	"testing"
	"time"
)

// TestWaitOutlastsOneWaitRequest runs a command that outlives one wait
// request: incusd answers the first with "context deadline exceeded" and
// Exec must ask again.
func TestWaitOutlastsOneWaitRequest(t *testing.T) {
	c := NewTestIncus(t)
	waitSeconds = 1
	t.Cleanup(func() { waitSeconds = 30 })
	if err := c.Launch(context.Background(), "t-long", TestImage, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, err := c.Exec(context.Background(), "t-long", []string{"sh", "-c", "sleep 2.5; exit 7"}, nil, nil, nil)
	if err != nil || code != 7 {
		t.Fatalf("exec: %d, %v", code, err)
	}
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("exec returned after %v, before the command ended", took)
	}
}
