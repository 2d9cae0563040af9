package channels

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/applog"
	"github.com/slipway-dev/slipway/channels/runtime"
)

// The collector copies what every running instance's processes print into
// the app logs, each instance from where its logs were last stored. The
// supervisor in the instance keeps recent lines in memory, so a collector
// that starts late (a new instance, a daemon restart) loses nothing recent.

// collectEvery is how often the collector looks for instances it does not
// follow yet; Kick makes it look at once.
const collectEvery = 2 * time.Second

type collector struct {
	mu        sync.Mutex
	following map[string]bool // instance names
	kick      chan struct{}
}

// startCollector runs the collector until the engine closes.
func (e *Engine) startCollector() {
	if e.appLogs == nil {
		return
	}
	e.collect = collector{following: map[string]bool{}, kick: make(chan struct{}, 1)}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			e.followNew(e.base)
			select {
			case <-e.base.Done():
				return
			case <-e.collect.kick:
			case <-time.After(collectEvery):
			}
		}
	}()
}

// kickCollector makes the collector look for new instances now (one was
// just started).
func (e *Engine) kickCollector() {
	if e.appLogs == nil {
		return
	}
	select {
	case e.collect.kick <- struct{}{}:
	default:
	}
}

// followNew starts a follower for every running instance of an installation
// that has none.
func (e *Engine) followNew(ctx context.Context) {
	list, err := e.rt.List(ctx)
	if err != nil {
		return // Incus is down for a moment: look again later
	}
	for _, in := range list {
		id, err := strconv.ParseInt(in.Labels[LabelInstallation], 10, 64)
		if err != nil || !in.Running {
			continue
		}
		e.collect.mu.Lock()
		busy := e.collect.following[in.Name]
		e.collect.following[in.Name] = true
		e.collect.mu.Unlock()
		if !busy {
			e.wg.Add(1)
			go e.followInstance(ctx, id, in.Name)
		}
	}
}

// followInstance stores the instance's output until it stops (or the engine
// closes); the next look starts a new follower if it still runs.
func (e *Engine) followInstance(ctx context.Context, id int64, name string) {
	defer e.wg.Done()
	defer func() {
		e.collect.mu.Lock()
		delete(e.collect.following, name)
		e.collect.mu.Unlock()
	}()
	hide, err := e.secretsOf(ctx, id)
	if err != nil {
		e.log.Warn("app logs not collected", "instance", name, "err", err)
		return
	}
	from, err := e.appLogs.Cursor(id, name)
	if err != nil {
		e.log.Warn("app logs not collected", "instance", name, "err", err)
		return
	}
	err = e.rt.FollowLogs(ctx, name, from.Boot, from.Seq, func(l runtime.LogLine) error {
		return e.appLogs.Append(id, applog.Record{Time: l.Time, Instance: name, Process: l.Process,
			Stream: l.Stream, Line: hide.redact(l.Line), Boot: l.Boot, Seq: l.Seq})
	})
	if err != nil && ctx.Err() == nil {
		e.log.Debug("app logs follower ended", "instance", name, "err", err)
	}
}
