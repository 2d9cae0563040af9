package channels

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// Healing: every few seconds the engine compares the instances each
// installation serves from with what the runtime runs. An instance that
// stopped (its init died, an OOM kill, `incus stop`) or vanished (`incus
// delete --force`) is taken out of the proxy's set at once, when others
// serve, and a heal operation replaces it with a fresh one of the same
// commit and process type. The supervisor inside restarts a crashed process
// itself, so an instance whose app dies and comes back is not replaced.

// DefaultHealEvery is how often the engine looks for dead instances.
const DefaultHealEvery = 2 * time.Second

// healSettle is how long after it took traffic an instance is left alone:
// a cluster member may report a state it has not caught up with yet.
const healSettle = 5 * time.Second

// healBackoff bounds how often an installation whose heal failed is tried
// again: a commit that no longer starts must not launch instances forever.
const (
	healBackoffMin = 5 * time.Second
	healBackoffMax = 10 * time.Minute
)

type healer struct {
	resyncing atomic.Bool // a resync of the proxies' routes is under way

	mu    sync.Mutex
	after map[int64]time.Time     // by installation: no heal before then
	wait  map[int64]time.Duration // the next backoff after a failure

	// suspects are the instances seen dead at the last look: one is healed
	// only when the next look sees it dead too, so a state Incus could not
	// read for a moment (a busy cluster member) replaces nothing.
	suspects map[string]bool
}

// startHealer runs the healing loop until the engine closes.
func (e *Engine) startHealer() {
	every := e.cfg.HealEvery
	if every < 0 {
		return
	}
	if every == 0 {
		every = DefaultHealEvery
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			select {
			case <-e.base.Done():
				return
			case <-time.After(every):
			}
			go e.resyncStale(e.base) // a member's proxy that does not answer must not hold up healing
			e.healDead(e.base)
		}
	}()
}

// staleRouter is a router that may have missed changes on some proxy (a
// cluster member's, see router.Fanout).
type staleRouter interface{ TakeStale() bool }

// resyncStale gives every proxy every route again when one missed a change,
// one resync at a time.
func (e *Engine) resyncStale(ctx context.Context) {
	if !e.heal.resyncing.CompareAndSwap(false, true) {
		return
	}
	defer e.heal.resyncing.Store(false)
	if s, ok := e.router.(staleRouter); ok && s.TakeStale() {
		if err := e.SyncRoutes(ctx); err != nil {
			e.log.Warn("Give the proxies their routes again", "err", err)
		}
	}
}

// healDead starts a heal for each installation with dead members.
func (e *Engine) healDead(ctx context.Context) {
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		return
	}
	list, err := e.rt.List(ctx)
	if err != nil {
		return // Incus is down for a moment: look again later
	}
	running := map[string]bool{}
	present := map[string]bool{}
	for _, in := range list {
		present[in.Name] = true
		running[in.Name] = in.Running
	}
	seen := map[string]bool{}
	defer func() {
		e.heal.mu.Lock()
		e.heal.suspects = seen
		e.heal.mu.Unlock()
	}()
	for _, inst := range insts {
		dead := map[string]string{}
		for _, m := range inst.Members {
			why := ""
			switch {
			case !present[m.Name]:
				why = "vanished"
			case !running[m.Name]:
				why = "stopped"
			}
			if why == "" || time.Since(m.StartedAt) < healSettle {
				continue
			}
			seen[m.Name] = true
			if e.suspected(m.Name) {
				dead[m.Name] = why
			}
		}
		if len(dead) == 0 || inst.State != store.StateRunning || !e.mayHeal(inst.ID) {
			continue
		}
		e.log.Info("Healing installation", "installation", inst.Resource(), "dead", deadList(dead))
		if _, err := e.Heal(ctx, inst, dead); err != nil {
			e.log.Warn("Heal installation", "installation", inst.Resource(), "err", err)
		}
	}
}

// suspected reports whether name was seen dead at the last look too.
func (e *Engine) suspected(name string) bool {
	e.heal.mu.Lock()
	defer e.heal.mu.Unlock()
	return e.heal.suspects[name]
}

// mayHeal: no operation of the installation is queued or running (it will
// change the set itself) and no failed heal holds it back.
func (e *Engine) mayHeal(id int64) bool {
	e.mu.Lock()
	_, busy := e.lanes["installation "+strconv.FormatInt(id, 10)]
	e.mu.Unlock()
	e.heal.mu.Lock()
	defer e.heal.mu.Unlock()
	return !busy && time.Now().After(e.heal.after[id])
}

// routeAround takes dead web members out of the proxy's set while others
// serve, so no request waits for their replacements. It runs in the heal
// operation, in the installation's lane, so it never meets a swap.
func (e *Engine) routeAround(inst store.Installation, dead map[string]string) {
	var alive []string
	for _, name := range webMembers(inst.Members) {
		if dead[name] == "" {
			alive = append(alive, name)
		}
	}
	if len(alive) == 0 || len(alive) == len(webMembers(inst.Members)) {
		return
	}
	if _, err := e.routeAll(inst, alive, inst.Health); err != nil {
		e.log.Warn("Route around dead instances", "installation", inst.Resource(), "err", err)
	}
}

// Heal replaces an installation's dead members (name → why) with fresh
// instances of the commit it serves, as an operation of slipway's own.
func (e *Engine) Heal(ctx context.Context, inst store.Installation, dead map[string]string) (store.Operation, error) {
	op := store.Operation{Type: store.OpHeal, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: "slipway", Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		drop := map[string]bool{}
		for _, m := range now.Members {
			if why := dead[m.Name]; why != "" {
				l.Logf("-----> Instance %s (%s) %s: replacing it", m.Name, m.Process, describeDeath(why))
				drop[m.Name] = true
			}
		}
		if len(drop) == 0 {
			l.Logf("-----> The dead instances were replaced by another operation: nothing to do")
			return nil
		}
		e.routeAround(now, dead)
		if why := e.strandedVolumes(ctx, now); why != "" {
			l.Logf("-----> %s", why)
			err = errors.New(why)
			e.healed(inst.ID, err)
			return err
		}
		err = e.reform(ctx, l, store.OpHeal, inst.ID, now.Formation, drop)
		e.healed(inst.ID, err)
		return err
	})
}

func describeDeath(why string) string {
	if why == "vanished" {
		return "is gone (deleted outside slipway)"
	}
	return "stopped"
}

// healed records a heal's outcome: a failure holds the next one back.
func (e *Engine) healed(id int64, err error) {
	e.heal.mu.Lock()
	defer e.heal.mu.Unlock()
	if err == nil {
		delete(e.heal.after, id)
		delete(e.heal.wait, id)
		return
	}
	wait := max(e.heal.wait[id]*2, healBackoffMin)
	wait = min(wait, healBackoffMax)
	e.heal.wait[id] = wait
	e.heal.after[id] = time.Now().Add(wait)
}

// deadList renders dead members for a log line.
func deadList(dead map[string]string) string {
	var parts []string
	for name, why := range dead {
		parts = append(parts, fmt.Sprintf("%s (%s)", name, why))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
