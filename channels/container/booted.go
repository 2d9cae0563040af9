package container

import (
	"context"
	"time"
)

// An instance's init runs a good while (50–100 ms here) before Incus ends
// the operation that created and started it: incusd still has its own
// bookkeeping to do. Booted lets a caller start using the instance (deliver
// the app, health-check an image that starts it at boot) in that time, while
// Launch is still waiting.

type launch struct {
	done chan struct{} // closed when the launch ended
	err  error
}

func (c *Incus) startLaunch(name string) *launch {
	l := &launch{done: make(chan struct{})}
	c.mu.Lock()
	c.launching[name] = l
	c.mu.Unlock()
	return l
}

func (c *Incus) endLaunch(name string, l *launch, err error) {
	l.err = err
	c.mu.Lock()
	if c.launching[name] == l {
		delete(c.launching, name)
	}
	c.mu.Unlock()
	close(l.done)
}

func (c *Incus) launchOf(name string) *launch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.launching[name]
}

// Booted returns once the instance's init runs, which can be before the
// Launch of it returns. If that Launch fails first, Booted returns its error.
// For an instance no Launch of this runtime is working on it returns nil
// (after a short grace for a Launch called concurrently to begin).
func (c *Incus) Booted(ctx context.Context, name string) error {
	grace := time.Now().Add(20 * time.Millisecond)
	for {
		if c.initFromCgroup(name) > 0 {
			return nil
		}
		var done <-chan struct{}
		l := c.launchOf(name)
		if l != nil {
			done = l.done
		} else if time.Now().After(grace) {
			return nil
		}
		select {
		case <-done:
			return l.err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}
