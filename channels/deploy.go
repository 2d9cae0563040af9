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
	"sync"
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
	channel   *store.Channel
	set       []store.ConfigVar
	unset     []string
	limits    *store.Limits
	formation map[string]int // the process counts from now on (scale)
}

// recordSwap stores what the installation serves now, with the channel and
// config the operation changes, in one write.
func (e *Engine) recordSwap(l *opLog, inst store.Installation, sw store.Swap, change *pending) error {
	if to := change.channel; to != nil {
		sw.Following = to
	}
	sw.Set, sw.Unset, sw.Limits = change.set, change.unset, change.limits
	if change.formation != nil {
		sw.Formation = change.formation
	}
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
func (e *Engine) checkWhenBooted(ctx context.Context, name string, start func(context.Context) error, dial proxy.DialFunc, host string, h Health) <-chan error {
	done := make(chan error, 1)
	go func() {
		if err := e.rt.Booted(ctx, name); err != nil {
			done <- e.stepError(ctx, "start instance", err)
			return
		}
		if start != nil {
			if err := start(ctx); err != nil {
				done <- err
				return
			}
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

func (e *Engine) deleteInstance(l *opLog, name, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.rt.Delete(ctx, name); err != nil {
		return fmt.Errorf("delete %s %s: %w", what, name, err)
	}
	l.Logf("       Deleted %s %s", what, name)
	return nil
}

// markRetiring marks the instances a swap replaced (the old upstreams, and
// the ones the store recorded) as retiring, at once, so status shows them so
// from the swap on; retire unmarks them when it is done.
func (e *Engine) markRetiring(id int64, old []string, recorded []store.Member) map[string]bool {
	names := map[string]bool{}
	for _, n := range old {
		names[n] = true
	}
	for _, m := range recorded {
		names[m.Name] = true
	}
	e.retiring.add(id, names)
	return names
}

// retire drains the replaced upstream and deletes the instances markRetiring
// marked. It runs after the swap, so its failures do not fail the operation:
// it says what it could not delete, which housekeeping deletes later.
func (e *Engine) retire(l *opLog, old []string, inst store.Installation, names map[string]bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout+time.Minute)
	defer cancel()
	defer e.retiring.remove(inst.ID, names)
	e.drainAll(ctx, l, old)
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

// drainAll drains the instances names at once, each for up to DrainTimeout.
func (e *Engine) drainAll(ctx context.Context, l *opLog, names []string) {
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, e.cfg.DrainTimeout)
			defer cancel()
			if err := e.router.Drain(dctx, name); err != nil {
				l.Logf("       Drain of %s stopped after %s with requests still in flight (%s)", name, e.cfg.DrainTimeout, err)
			}
		}()
	}
	wg.Wait()
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
	return e.rt.Deliver(ctx, name, tree)
}

func (e *Engine) runStep(ctx context.Context, l *opLog, name, kind, cmd string, env map[string]string) error {
	l.Logf("-----> %s: %s", kind, cmd)
	step := time.Now()
	code, err := e.rt.Run(ctx, name, []string{"/bin/sh", "-c", "cd /app && " + cmd}, env, l)
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
// with the operation's pending changes, over appDefaults (what the app adds
// itself, such as a venv on PATH), then slipway's own variables.
func (e *Engine) appEnv(ctx context.Context, l *opLog, inst store.Installation, commit string, change *pending, appDefaults map[string]string) (map[string]string, error) {
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
	for k, v := range appDefaults { // the app's own (a venv's PATH), beneath its config
		if _, set := env[k]; !set {
			env[k] = v
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
