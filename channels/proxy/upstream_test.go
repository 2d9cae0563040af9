package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Once Drain has returned, no request holds the upstream or can acquire it, however the
// requests' acquire races with it.
func TestAcquireRacesWithDrain(t *testing.T) {
	for range 50 {
		up := NewUpstream("app", func(ctx context.Context) (net.Conn, error) { panic("no dial") })
		var (
			drained  atomic.Bool
			late     atomic.Int64
			acquired atomic.Int64
			wg       sync.WaitGroup
		)
		for range 4 {
			wg.Go(func() {
				for {
					if !up.acquire() {
						return
					}
					acquired.Add(1)
					if drained.Load() {
						late.Add(1)
					}
					up.release()
				}
			})
		}
		for acquired.Load() < 100 {
		}
		if err := up.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		drained.Store(true)
		wg.Wait()
		if n := late.Load(); n != 0 {
			t.Fatalf("%d requests held the upstream after Drain returned", n)
		}
		if up.acquire() || up.InFlight() != 0 {
			t.Fatal("a drained upstream can be acquired")
		}
	}
}
