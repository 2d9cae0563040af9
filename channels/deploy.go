package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// deployCommit queues an operation that makes inst serve commit. Deploy,
// switch, restart and configure all take this one path.
func (e *Engine) deployCommit(ctx context.Context, inst store.Installation, commit, user string, opType store.OpType) (store.Operation, error) {
	op := store.Operation{
		Type: opType, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: commit, Channel: inst.Channel(),
	}
	branch := inst.Following.Ref // what the push moved, when it is a deploy
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		// The installation may have been pinned or moved to another branch
		// while this deploy waited in the queue.
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err == nil && opType == store.OpDeploy && !now.Follows(branch) {
			l.Logf("-----> %s now follows %s: commit %s of branch %s is stored, not deployed", now.Resource(), now.Channel(), shortID(commit), branch)
			return nil
		}
		return e.replace(ctx, l, op.Type, inst.ID, commit, l.id, nil)
	})
}

// pending is what an operation changes about an installation once its new
// instance serves: nothing is changed if the operation fails.
type pending struct {
	channel *store.Channel
	set     []store.ConfigVar
	unset   []string
}

// replace builds a new instance of commit, checks it is healthy, swaps traffic
// to it and removes the old one: build, verify, swap, drain. Until the swap,
// any failure (or a cancel) deletes the new instance and the old one keeps
// serving.
func (e *Engine) replace(ctx context.Context, l *opLog, opType store.OpType, installationID int64, commit string, opID int64, change *pending) (err error) {
	if change == nil {
		change = &pending{}
	}
	endUrgent := e.urgent.begin()
	defer endUrgent() // at the latest; on success right after the swap
	inst, err := e.store.InstallationByID(ctx, installationID)
	if err != nil {
		return fmt.Errorf("installation is gone: %w", err)
	}
	l.Logf("-----> %s of %s: commit %s (%s)", opType, inst.Resource(), shortID(commit), inst.Channel())

	r, err := repo.Open(e.repoDir(inst.App))
	if err != nil {
		return err
	}
	data, err := r.ReadFile(commit, ManifestFile)
	if errors.Is(err, repo.ErrNoFile) {
		return fmt.Errorf("no %s at the root of commit %s: add one (see the README)", ManifestFile, shortID(commit))
	}
	if err != nil {
		return err
	}
	m, err := ParseManifest(data)
	if err != nil {
		return err
	}

	var undo reverter
	defer func() {
		if err == nil {
			return
		}
		l.Logf("-----> Rolling back: %s", err)
		if rerr := undo.Fail(); rerr != nil {
			l.Logf("       Rollback failed: %s", rerr)
			return
		}
		if inst.Commit != "" {
			l.Logf("       Rollback succeeded: %s still serves commit %s", inst.Host, shortID(inst.Commit))
		} else {
			l.Logf("       Rollback succeeded: nothing was serving %s before; it still serves nothing", inst.Host)
		}
	}()

	env, err := e.appEnv(ctx, l, inst, commit, change)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s-%d", inst.App, inst.Environment, opID)
	hash := envHash(env)
	var published <-chan publishResult
	kept, keptErr := store.KeptImage{}, store.ErrNotFound
	if opType != store.OpRestart {
		kept, keptErr = e.store.KeptImageFor(ctx, inst.ID, commit, hash)
	}
	port := e.cfg.AppPort
	dial := func(ctx context.Context) (net.Conn, error) { return e.rt.Dial(ctx, name, port) }
	var healthy <-chan error // a health check already under way
	var settle func() error  // waits for the end of a launch the deploy did not wait for
	if keptErr == nil {
		// A rollback to a commit served before: its image holds the built
		// tree and the web script, so build and release are skipped and the
		// image's runner starts the app as the instance boots.
		step := time.Now()
		launched := make(chan error, 1)
		hctx, hcancel := context.WithCancel(ctx)
		defer hcancel()
		go func() {
			err := e.rt.Launch(ctx, name, kept.Fingerprint, e.labels(inst, commit, opID))
			if err != nil {
				hcancel()
			}
			launched <- err
		}()
		if len(m.Volumes) == 0 {
			// Nothing to attach first: check the app while Incus finishes
			// the start (see Runtime.Booted).
			healthy = e.checkWhenBooted(hctx, name, dial, inst.Host, m.Health)
		}
		if err := <-launched; err != nil {
			if healthy != nil {
				<-healthy
			}
			return e.stepError(ctx, "create instance from the image of "+shortID(commit), err)
		}
		undo.Add(func() error { return e.deleteInstance(l, name, "new instance") })
		l.Logf("       Instance %s started from the image of commit %s (%s): build and release skipped; release steps (migrations) are never reversed or re-run by a rollback",
			name, shortID(commit), time.Since(step).Round(time.Millisecond))
		if err := e.attachVolumes(ctx, l, inst, name, m); err != nil {
			return err
		}
	} else {
		// Without build or release steps nothing runs between copying the
		// tree and starting the app, so one exec does both.
		together := len(m.Build) == 0 && len(m.Release) == 0
		if name, settle, err = e.build(ctx, l, &undo, r, m, inst, name, commit, opID, env, !together); err != nil {
			return err
		}
		var tree io.ReadCloser
		if together {
			tree = treeReader(r, commit)
			defer tree.Close()
			l.Logf("-----> Copying commit %s and starting web: %s", shortID(commit), m.Web)
		} else {
			l.Logf("-----> Starting web: %s", m.Web)
		}
		if err := e.rt.StartService(ctx, name, m.Web, env, tree); err != nil {
			return e.stepError(ctx, "start web", err)
		}
	}

	step := time.Now()
	if healthy == nil {
		healthy = e.checkWhenBooted(ctx, name, dial, inst.Host, m.Health)
	}
	if err := <-healthy; err != nil {
		return err
	}
	l.Logf("       Healthy: GET %s answered in time (%s)", m.Health.Path, time.Since(step).Round(time.Millisecond))

	if settle != nil {
		// The instance was used before Incus ended its launch; that end
		// must have gone well before the instance serves.
		if err := settle(); err != nil {
			return e.stepError(ctx, "create instance", err)
		}
	}

	// The swap, the store first: a crash from here on finds the new instance
	// recorded (and routes to it), a crash before finds the old one. From
	// the proxy's swap on the new instance serves, so nothing is undone.
	if err := e.recordSwap(l, inst, store.Swap{Commit: commit, Instance: name, State: store.StateRunning, EnvHash: hash}, change); err != nil {
		return err
	}
	up := proxy.NewUpstream(name, dial)
	old := e.proxy.Swap(inst.Host, up)
	undo.Success()
	endUrgent()
	if to := change.channel; to != nil {
		l.Logf("-----> %s now follows %s", inst.Resource(), describe(*to))
	}
	l.Logf("-----> %s now serves commit %s from %s", inst.Host, shortID(commit), name)
	if keptErr != nil {
		published = e.publish(l, inst, name, commit, hash)
	}
	// The operation ends here: the new commit serves. The rest is clean-up.
	l.afterwards(func() error {
		err := e.retire(l, old, inst)
		if published != nil {
			err = errors.Join(err, e.keepImage(l, inst, commit, hash, published))
		}
		return err
	})
	return nil
}

// recordSwap stores what the installation serves now, with the channel and
// config the operation changes, in one write.
func (e *Engine) recordSwap(l *opLog, inst store.Installation, sw store.Swap, change *pending) error {
	if to := change.channel; to != nil {
		sw.Following = to
	}
	sw.Set, sw.Unset = change.set, change.unset
	e.crashPoint("before the swap is recorded")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.RecordSwap(ctx, inst.ID, sw); err != nil {
		return fmt.Errorf("record the swap: %w", err)
	}
	e.crashPoint("after the swap is recorded")
	return nil
}

// checkWhenBooted health-checks the instance once its init runs, in the
// background; the channel gets the outcome.
func (e *Engine) checkWhenBooted(ctx context.Context, name string, dial proxy.DialFunc, host string, h Health) <-chan error {
	done := make(chan error, 1)
	go func() {
		if err := e.rt.Booted(ctx, name); err != nil {
			done <- e.stepError(ctx, "start instance", err)
			return
		}
		done <- healthCheck(ctx, dial, host, h)
	}()
	return done
}

// labels are what the engine records on every instance it makes.
func (e *Engine) labels(inst store.Installation, commit string, opID int64) map[string]string {
	return map[string]string{
		LabelInstallation: strconv.FormatInt(inst.ID, 10),
		LabelApp:          inst.App,
		LabelEnvironment:  inst.Environment,
		LabelCommit:       commit,
		LabelOperation:    strconv.FormatInt(opID, 10),
	}
}

// envHash identifies the environment an instance was built with; a kept
// instance is reused only for the same one, since build steps may bake it in.
func envHash(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, env[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// build makes a new instance of commit: launch, tree (unless withTree is
// false: the caller copies it), build and release steps. It returns the
// instance's name: the one asked for, or that of the instance started ahead
// of the deploy while the push arrived (see Prewarm).
func (e *Engine) build(ctx context.Context, l *opLog, undo *reverter, r *repo.Repo, m *Manifest, inst store.Installation, name, commit string, opID int64, env map[string]string, withTree bool) (_ string, settle func() error, _ error) {
	step := time.Now()
	// Only the tree's delivery comes before the health check on the
	// together path, so it may start as soon as the instance has booted.
	early := !withTree && len(m.Volumes) == 0
	if ahead, wait, err := e.claimPrewarm(ctx, inst.ID, m.Image, early); err == nil {
		name, settle = ahead, wait
		undo.Add(func() error {
			if settle != nil {
				settle() // Incus deletes an instance only once its launch has ended
			}
			return e.deleteInstance(l, name, "new instance")
		})
		l.Logf("       Instance %s started from image %s while the push arrived (waited %s)", name, m.Image, time.Since(step).Round(time.Millisecond))
	} else {
		if ctx.Err() != nil {
			return name, nil, e.stepError(ctx, "create instance", err)
		}
		if err := e.rt.Launch(ctx, name, m.Image, e.labels(inst, commit, opID)); err != nil {
			return name, nil, e.stepError(ctx, "create instance", err)
		}
		undo.Add(func() error { return e.deleteInstance(l, name, "new instance") })
		l.Logf("       Instance %s started from image %s (%s)", name, m.Image, time.Since(step).Round(time.Millisecond))
	}
	if err := e.attachVolumes(ctx, l, inst, name, m); err != nil {
		return name, settle, err
	}

	if !withTree {
		return name, settle, nil
	}
	if err := e.putTree(ctx, r, name, commit); err != nil {
		return name, settle, e.stepError(ctx, "copy the commit into the instance", err)
	}
	for _, cmd := range m.Build {
		if err := e.runStep(ctx, l, name, "build", cmd, env); err != nil {
			return name, settle, err
		}
	}
	for _, cmd := range m.Release {
		if err := e.runStep(ctx, l, name, "release", cmd, env); err != nil {
			return name, settle, err
		}
	}
	if len(m.Release) > 0 {
		l.Logf("       Note: a later rollback does not undo release steps (migrations); roll forward instead")
	}
	return name, settle, nil
}

func (e *Engine) deleteInstance(l *opLog, name, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.rt.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete %s %s: %w", what, name, err)
	}
	l.Logf("       Deleted %s %s", what, name)
	return nil
}

// retire drains the replaced upstream and deletes its instance. It runs after
// the swap, so its failures do not fail the operation: it says what it could
// not delete, which housekeeping deletes later.
func (e *Engine) retire(l *opLog, old *proxy.Upstream, inst store.Installation) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout+time.Minute)
	defer cancel()
	names := map[string]bool{}
	if old != nil {
		dctx, dcancel := context.WithTimeout(ctx, e.cfg.DrainTimeout)
		if err := old.Drain(dctx); err != nil {
			l.Logf("       Drain of %s stopped after %s with requests still in flight", old.Name(), e.cfg.DrainTimeout)
		}
		dcancel()
		names[old.Name()] = true
	}
	if inst.Instance != "" {
		names[inst.Instance] = true
	}
	e.retiring.add(inst.ID, names)
	defer e.retiring.remove(inst.ID, names)
	e.urgent.waitIdle(ctx) // the old instance serves nobody now; deploys under way come first
	var failed error
	for name := range names {
		if err := e.rt.Delete(ctx, name); err != nil {
			l.Logf("       Could not delete old instance %s: %s (housekeeping tries again)", name, err)
			e.store.AddLeftover(context.Background(), name, l.id, err.Error())
			failed = errors.Join(failed, fmt.Errorf("delete old instance %s: %w", name, err))
			continue
		}
		l.Logf("       Old instance %s deleted", name)
	}
	return failed
}

// stepError words a runtime failure for the log, naming a cancel as such.
func (e *Engine) stepError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ErrCancelled)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// treeReader streams a tar of commit's tree; closing it stops the writer.
func treeReader(r *repo.Repo, commit string) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(r.WriteTar(commit, pw)) }()
	return pr
}

func (e *Engine) putTree(ctx context.Context, r *repo.Repo, name, commit string) error {
	tree := treeReader(r, commit)
	defer tree.Close()
	var out limitedBuffer
	code, err := e.rt.Exec(ctx, name, []string{"tar", "-x", "-f", "-", "-C", "/app"}, nil, tree, &out)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("tar exited with status %d: %s", code, out.String())
	}
	return nil
}

func (e *Engine) runStep(ctx context.Context, l *opLog, name, kind, cmd string, env map[string]string) error {
	l.Logf("-----> %s: %s", kind, cmd)
	step := time.Now()
	code, err := e.rt.Exec(ctx, name, []string{"/bin/sh", "-c", "cd /app && " + cmd}, env, nil, l)
	l.Flush()
	if err != nil {
		return e.stepError(ctx, kind+" step "+strconv.Quote(cmd), err)
	}
	if code != 0 {
		return fmt.Errorf("%s step %q exited with status %d", kind, cmd, code)
	}
	l.Logf("       done in %s", time.Since(step).Round(time.Millisecond))
	return nil
}

// appEnv is the environment every command of the app sees: the stored config
// with the operation's pending changes, then slipway's own variables.
func (e *Engine) appEnv(ctx context.Context, l *opLog, inst store.Installation, commit string, change *pending) (map[string]string, error) {
	vars, err := e.store.Config(ctx, inst.ID)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v.Key] = v.Value
		if v.Secret && l != nil {
			l.hide(v.Value)
		}
	}
	if change != nil {
		for _, v := range change.set {
			env[v.Key] = v.Value
			if v.Secret && l != nil {
				l.hide(v.Value)
			}
		}
		for _, k := range change.unset {
			delete(env, k)
		}
	}
	for k, v := range map[string]string{
		"PORT":                strconv.Itoa(e.cfg.AppPort),
		"SLIPWAY_APP":         inst.App,
		"SLIPWAY_ENVIRONMENT": inst.Environment,
		"SLIPWAY_COMMIT":      commit,
		"SLIPWAY_HOST":        inst.Host,
		"HOME":                "/root",
		"PATH":                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	} {
		if _, set := env[k]; !set || k == "PORT" || strings.HasPrefix(k, "SLIPWAY_") {
			env[k] = v
		}
	}
	return env, nil
}

// healthCheck polls the health path through dial until it answers 2xx or 3xx
// or the manifest's timeout passes. Each attempt has its own short deadline so
// a hanging app cannot stall the check.
func healthCheck(ctx context.Context, dial proxy.DialFunc, host string, h Health) error {
	transport := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(h.Timeout)
	// Poll often at first: an app that comes up in 30 ms should serve after
	// 30 ms, and a refused connection inside the instance costs next to nothing.
	start := time.Now()
	wait := 10 * time.Millisecond
	var last string
	for {
		attempt := min(2*time.Second, time.Until(deadline))
		if attempt <= 0 {
			break
		}
		actx, cancel := context.WithTimeout(ctx, attempt)
		req, _ := http.NewRequestWithContext(actx, http.MethodGet, "http://"+host+h.Path, nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 400 {
				cancel()
				return nil
			}
			last = "answered " + resp.Status
		} else {
			last = err.Error()
			if errors.Is(err, context.DeadlineExceeded) && actx.Err() != nil {
				last = fmt.Sprintf("no answer within %s", attempt.Round(time.Millisecond))
			}
		}
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("health check: %w", ErrCancelled)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("health check: %w", ErrCancelled)
		}
		if time.Since(start) > 2*time.Second {
			wait = min(wait*2, 250*time.Millisecond)
		}
	}
	return fmt.Errorf("app never became healthy: GET %s did not answer 2xx/3xx within %s (last: %s)", h.Path, h.Timeout, last)
}

// limitedBuffer keeps the first 4 KiB written to it, for error messages.
type limitedBuffer struct{ b []byte }

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(w.b); room > 0 {
		w.b = append(w.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (w *limitedBuffer) String() string { return string(w.b) }
