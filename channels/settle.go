package channels

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// An operation that swapped has done what its user waits for: the new commit
// serves. Draining and deleting the old instance and keeping the rollback
// image take up to a second more (and a drain up to DrainTimeout), so they
// run after the operation has ended, still writing to its log. An
// installation's clean-ups run one at a time, in the order of their
// operations, and each waits for the one before: a rollback image must be
// taken from its instance before a later deploy deletes that instance.

// settleAfter registers the work operation op left for after its end, and
// returns what starts it: call that once the operation is recorded as ended.
// Registered first, the work is there for whoever waits for the operation and
// then for its installation to settle.
func (e *Engine) settleAfter(op store.Operation, l *opLog) (start func()) {
	l.mu.Lock()
	then := l.then
	l.then = nil
	l.mu.Unlock()
	if len(then) == 0 {
		return func() {}
	}
	id := op.InstallationID
	done := make(chan struct{})
	e.mu.Lock()
	prev := e.settling[id]
	e.settling[id] = done
	e.wg.Add(1)
	e.mu.Unlock()
	e.setCleanup(op.ID, store.CleanupPending)
	ended := make(chan struct{})
	go func() {
		defer e.wg.Done()
		<-ended
		if prev != nil {
			<-prev
		}
		var err error
		for _, fn := range then {
			err = errors.Join(err, fn())
		}
		l.Flush()
		state := store.CleanupDone
		if err != nil {
			state = store.CleanupFailed + err.Error()
			e.log.Warn("Clean-up after the swap", "op", op.ID, "resource", op.Resource(), "err", err)
		}
		e.setCleanup(op.ID, state)
		e.mu.Lock()
		if e.settling[id] == done {
			delete(e.settling, id)
		}
		e.mu.Unlock()
		close(done)
		e.logs.notify(op.ID)
	}()
	return func() { close(ended) }
}

func (e *Engine) setCleanup(opID int64, state string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.SetOperationCleanup(ctx, opID, state); err != nil {
		e.log.Error("record clean-up", "op", opID, "err", err)
	}
}

// waitSettled waits until the clean-ups of installation id have ended.
func (e *Engine) waitSettled(ctx context.Context, id int64) {
	e.mu.Lock()
	done := e.settling[id]
	e.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// retiring is the set of old instances being drained and deleted, by
// installation, for status to show.
type retiring struct {
	mu    sync.Mutex
	names map[int64]map[string]bool
}

func (r *retiring) add(id int64, names map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[int64]map[string]bool{}
	}
	if r.names[id] == nil {
		r.names[id] = map[string]bool{}
	}
	for n := range names {
		r.names[id][n] = true
	}
}

func (r *retiring) remove(id int64, names map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := range names {
		delete(r.names[id], n)
	}
	if len(r.names[id]) == 0 {
		delete(r.names, id)
	}
}

// Retiring returns the old instances of installation id still being drained
// or deleted.
func (e *Engine) Retiring(id int64) []string {
	e.retiring.mu.Lock()
	defer e.retiring.mu.Unlock()
	var out []string
	for n := range e.retiring.names[id] {
		out = append(out, n)
	}
	return out
}

// DeleteLeftovers tries again to delete old instances whose deletion failed
// after their swap; housekeeping calls it. It returns how many are still left.
func (e *Engine) DeleteLeftovers(ctx context.Context) (int, error) {
	left, err := e.store.Leftovers(ctx)
	if err != nil {
		return 0, err
	}
	remaining := 0
	for _, lo := range left {
		if err := e.rt.Delete(ctx, lo.Instance); err != nil {
			remaining++
			e.log.Warn("Delete leftover instance", "instance", lo.Instance, "since", lo.Since, "err", err)
			continue
		}
		e.store.ForgetLeftover(ctx, lo.Instance)
		if lo.OperationID != 0 {
			e.logs.append(lo.OperationID, "       Old instance "+lo.Instance+" deleted by housekeeping")
		}
		e.log.Info("Deleted leftover instance", "instance", lo.Instance)
	}
	return remaining, nil
}
