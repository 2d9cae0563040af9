package channels

import (
	"context"
	"sync"
	"time"
)

// urgency counts the work somebody is waiting on: deploys that have not
// swapped yet, and instances started ahead of a push. The clean-up after a
// swap (publishing the rollback image, deleting the old instance) is Incus
// work too, and on a small host ten deploys at once spend as much CPU on the
// first ones' clean-up as on the last ones' launches. So clean-up waits until
// nothing urgent runs, for at most urgencyPatience.
type urgency struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0
}

const urgencyPatience = 30 * time.Second

// begin marks urgent work; end must be called once it is over.
func (u *urgency) begin() (end func()) {
	u.mu.Lock()
	if u.n == 0 {
		u.idle = make(chan struct{})
	}
	u.n++
	u.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			u.mu.Lock()
			u.n--
			if u.n == 0 {
				close(u.idle)
			}
			u.mu.Unlock()
		})
	}
}

// waitIdle returns once no urgent work runs, after urgencyPatience, or when
// ctx ends, whichever comes first.
func (u *urgency) waitIdle(ctx context.Context) {
	u.mu.Lock()
	if u.n == 0 {
		u.mu.Unlock()
		return
	}
	idle := u.idle
	u.mu.Unlock()
	t := time.NewTimer(urgencyPatience)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}
