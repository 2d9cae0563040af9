// Package channels is slipway's operation engine: what each installation
// follows (a branch or a pinned commit), and the operations that change what it
// serves, run one at a time per installation with logs, cancel and rollback.
package channels

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/applog"
	"github.com/slipway-dev/slipway/channels/backup"
	"github.com/slipway-dev/slipway/store"
)

// Defaults of Config, used by the daemon's flags and by NewEngine for zero
// values (KeepImages 0 is a choice: keep none).
const (
	DefaultMaxParallel  = 4
	DefaultAppPort      = 5000
	DefaultDrainTimeout = 30 * time.Second
	DefaultKeepImages   = 5
)

// Config is the engine's part of the daemon configuration.
type Config struct {
	ReposDir     string          // bare repositories, one per app
	BaseDomain   string          // default host is APP.ENV.BaseDomain
	MaxParallel  int             // operations running at once across installations
	AppPort      int             // $PORT inside every instance
	DrainTimeout time.Duration   // how long in-flight requests may take after a swap
	KeepImages   int             // images of earlier builds kept per installation for fast rollback
	Backups      BackupConfig    // persistent volumes' and the store's backups (package backup)
	AppLogs      *applog.Store   // where the apps' own output is kept (nil: nowhere)
	HTTPS        HTTPSConfig     // certificates and how they are obtained
	WebHost      string          // the web page's own domain through the front proxy ("": none)
	Databases    DatabaseServers // Postgres servers for environments (nil: none)
	Copies       CopyConfig      // off-site copies of backups
	HealEvery    time.Duration   // how often dead instances are looked for (0: DefaultHealEvery; <0: never)
}

// Engine queues and runs operations.
type Engine struct {
	cfg    Config
	store  *store.Store
	rt     Runtime
	router Router
	log    *slog.Logger
	logs   *logHub

	backups *backup.Manager // the work of backup, restore and purge operations

	base     context.Context
	stop     context.CancelFunc
	slots    chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	lanes    map[string]*lane // by laneOf
	jobs     map[int64]*job   // queued or running, by operation
	shutdown bool

	durations durations
	prewarms  prewarms
	urgent    urgency
	settling  map[int64]chan struct{} // by installation: closed when its clean-ups end (settle.go)
	retiring  retiring
	appLogs   *applog.Store
	collect   collector
	heal      healer
	web       *webPage // the web page's route through the proxy, once ServeWebPage ran

	// crashAt, set by tests only, is called at named points where a crash of
	// the daemon must leave a consistent store.
	crashAt func(point string)
}

func (e *Engine) crashPoint(point string) {
	if e.crashAt != nil {
		e.crashAt(point)
	}
}

// laneOf names the queue op waits in: its installation's, its database's,
// or slipway's own (the store, the system, the web page's certificate).
func laneOf(op store.Operation) string {
	if op.Database != "" {
		return "database " + op.Database
	}
	return "installation " + strconv.FormatInt(op.InstallationID, 10)
}

// lane is one installation's (or database's) queue: its operations run one
// at a time, in order.
type lane struct {
	pending []*job
	busy    bool
}

type job struct {
	op          store.Operation
	run         func(ctx context.Context, l *opLog) error
	cancel      context.CancelFunc
	cancelledBy string
	started     bool
}

// NewEngine wires an engine; call Recover before serving traffic and Close on shutdown.
func NewEngine(cfg Config, st *store.Store, rt Runtime, rtr Router, logger *slog.Logger) *Engine {
	if cfg.MaxParallel <= 0 {
		cfg.MaxParallel = DefaultMaxParallel
	}
	if cfg.AppPort == 0 {
		cfg.AppPort = DefaultAppPort
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	base, stop := context.WithCancel(context.Background())
	return &Engine{
		cfg: cfg, store: st, rt: rt, router: rtr, log: logger, logs: newLogHub(st), appLogs: cfg.AppLogs,
		backups: newBackups(cfg, st, rt, logger),
		base:    base, stop: stop, slots: make(chan struct{}, cfg.MaxParallel),
		lanes: map[string]*lane{}, jobs: map[int64]*job{}, settling: map[int64]chan struct{}{},
		heal: healer{after: map[int64]time.Time{}, wait: map[int64]time.Duration{}},
	}
}

// Close cancels running operations (their new instances are removed, the old
// ones keep serving) and waits for them to finish.
func (e *Engine) Close() {
	e.mu.Lock()
	e.shutdown = true
	e.mu.Unlock()
	e.stop()
	e.wg.Wait()
}

// Store returns the engine's store, for readers.
func (e *Engine) Store() *store.Store { return e.store }

func (e *Engine) repoDir(app string) string {
	return filepath.Join(e.cfg.ReposDir, app+".git")
}

// submit records an operation and queues it on its installation's lane.
func (e *Engine) submit(ctx context.Context, op store.Operation, run func(ctx context.Context, l *opLog) error) (store.Operation, error) {
	e.mu.Lock()
	if e.shutdown {
		e.mu.Unlock()
		return store.Operation{}, ErrShuttingDown
	}
	e.mu.Unlock()
	op, err := e.store.CreateOperation(ctx, op)
	if err != nil {
		return store.Operation{}, fmt.Errorf("record operation: %w", err)
	}
	j := &job{op: op, run: run}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jobs[op.ID] = j
	key := laneOf(op)
	l := e.lanes[key]
	if l == nil {
		l = &lane{}
		e.lanes[key] = l
	}
	l.pending = append(l.pending, j)
	if !l.busy {
		l.busy = true
		e.wg.Add(1)
		go e.drainLane(key, l)
	}
	return op, nil
}

// drainLane runs a lane's jobs in order until it is empty.
func (e *Engine) drainLane(key string, l *lane) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(l.pending) == 0 {
			l.busy = false
			delete(e.lanes, key)
			e.mu.Unlock()
			return
		}
		j := l.pending[0]
		l.pending = l.pending[1:]
		e.mu.Unlock()
		e.execute(j)
	}
}

func (e *Engine) execute(j *job) {
	defer func() {
		e.mu.Lock()
		delete(e.jobs, j.op.ID)
		e.mu.Unlock()
		e.logs.notify(j.op.ID)
	}()
	select {
	case e.slots <- struct{}{}:
	case <-e.base.Done():
		e.finish(j.op, store.StatusFailed, "interrupted: slipway shut down before it started")
		return
	}
	defer func() { <-e.slots }()

	ctx, cancel := context.WithCancel(e.base)
	defer cancel()
	e.mu.Lock()
	if j.cancelledBy != "" { // cancelled while queued
		e.mu.Unlock()
		return
	}
	j.cancel, j.started = cancel, true
	e.mu.Unlock()

	log := &opLog{hub: e.logs, id: j.op.ID}
	if err := e.store.StartOperation(ctx, j.op.ID); err != nil {
		e.log.Error("start operation", "op", j.op.ID, "err", err)
	}
	e.logs.notify(j.op.ID)
	started := time.Now()
	err := j.run(ctx, log)
	log.Flush()

	e.mu.Lock()
	by := j.cancelledBy
	e.mu.Unlock()
	status, reason := store.StatusSucceeded, ""
	switch {
	case err == nil:
		log.Logf("Operation %d succeeded in %s", j.op.ID, time.Since(started).Round(time.Millisecond))
	case by != "":
		status, reason = store.StatusCancelled, "cancelled by "+by
		log.Logf("Operation %d cancelled by %s", j.op.ID, by)
	case e.base.Err() != nil:
		status, reason = store.StatusFailed, "interrupted: slipway shut down"
		log.Logf("Operation %d interrupted: slipway shut down", j.op.ID)
	default:
		status, reason = store.StatusFailed, err.Error()
		log.Logf("Operation %d failed: %s", j.op.ID, reason)
	}
	startCleanup := e.settleAfter(j.op, log)
	e.finish(j.op, status, reason)
	startCleanup()
	e.durations.observe(string(j.op.Type), time.Since(started))
	e.log.Info("Operation finished", "op", j.op.ID, "type", j.op.Type, "resource", j.op.Resource(), "status", status, "reason", reason, "duration", time.Since(started))
}

func (e *Engine) finish(op store.Operation, status, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.FinishOperation(ctx, op.ID, status, reason); err != nil {
		e.log.Error("finish operation", "op", op.ID, "err", err)
	}
	e.logs.notify(op.ID)
}

// Cancel stops a queued or running operation. A running one rolls back: its
// new instance is deleted and the old one keeps serving.
func (e *Engine) Cancel(opID int64, user string) error {
	e.mu.Lock()
	j, ok := e.jobs[opID]
	if !ok || j.cancelledBy != "" {
		e.mu.Unlock()
		return ErrNotRunning
	}
	j.cancelledBy = user
	started := j.started
	if started {
		j.cancel()
	} else if l := e.lanes[laneOf(j.op)]; l != nil {
		for i, p := range l.pending {
			if p == j {
				l.pending = append(l.pending[:i], l.pending[i+1:]...)
				break
			}
		}
		delete(e.jobs, opID)
	}
	e.mu.Unlock()
	if !started {
		e.logs.append(opID, fmt.Sprintf("Operation %d cancelled by %s before it started", opID, user))
		e.finish(j.op, store.StatusCancelled, "cancelled by "+user)
	}
	return nil
}

// Follow streams an operation's log; see logHub.Follow.
func (e *Engine) Follow(ctx context.Context, opID, after int64, fn func(store.LogLine) error) (store.Operation, error) {
	return e.logs.Follow(ctx, opID, after, fn)
}

// Wait blocks until the operation ends and returns it.
func (e *Engine) Wait(ctx context.Context, opID int64) (store.Operation, error) {
	return e.logs.Follow(ctx, opID, 1<<62, func(store.LogLine) error { return nil })
}

// lookup errors translated for people.
func (e *Engine) installation(ctx context.Context, app, env string) (store.Installation, error) {
	inst, err := e.store.InstallationByName(ctx, app, env)
	if errors.Is(err, store.ErrNotFound) {
		return inst, failf(ErrUnknownInstallation, "unknown installation %s/%s", app, env)
	}
	return inst, err
}
