package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// ErrNotDeployed means the installation serves nothing yet.
var ErrNotDeployed = errors.New("nothing is deployed there yet")

// Restart replaces the serving instance with a fresh one of the same commit.
func (e *Engine) Restart(ctx context.Context, app, env, user string) (store.Operation, error) {
	return e.redeploy(ctx, store.OpRestart, app, env, user)
}

// Rebuild deploys the served commit from scratch: no kept image, an empty
// build cache.
func (e *Engine) Rebuild(ctx context.Context, app, env, user string) (store.Operation, error) {
	return e.redeploy(ctx, store.OpRebuild, app, env, user)
}

// redeploy replaces the serving instance with a new one of the commit it
// serves when the operation starts.
func (e *Engine) redeploy(ctx context.Context, opType store.OpType, app, env, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	if inst.Commit == "" {
		return store.Operation{}, failf(ErrNotDeployed, "%s: nothing is deployed there yet", inst.Resource())
	}
	op := store.Operation{Type: opType, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		// What serves when the operation starts, not when it was queued: a
		// deploy queued before it may have changed that.
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		if now.Commit == "" {
			return failf(ErrNotDeployed, "%s: nothing is deployed there yet", now.Resource())
		}
		e.resolved(l, now.Commit)
		return e.replace(ctx, l, opType, inst.ID, now.Commit, l.id, nil)
	})
}

// resolved records the commit a queued operation settled on when it started.
func (e *Engine) resolved(l *opLog, commit string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.SetOperationCommit(ctx, l.id, commit); err != nil {
		e.log.Warn("record operation commit", "op", l.id, "err", err)
	}
}

var configKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Configure sets and unsets environment variables and redeploys the served
// commit with them. The change is stored only once the new instance serves.
// Secret values are never shown again, anywhere.
func (e *Engine) Configure(ctx context.Context, app, env string, set map[string]string, secret bool, unset []string, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	var vars []store.ConfigVar
	var keys []string
	for k, v := range set {
		if !configKey.MatchString(k) || k == "PORT" || strings.HasPrefix(k, "SLIPWAY_") {
			return store.Operation{}, failf(ErrInvalidName, "%q is not a variable you can set (letters, digits and _, not PORT or SLIPWAY_*)", k)
		}
		if strings.ContainsRune(v, 0) {
			// A process environment cannot hold one: every later start would fail.
			return store.Operation{}, failf(ErrInvalidName, "the value of %s holds a NUL byte, which no environment variable can", k)
		}
		vars = append(vars, store.ConfigVar{Key: k, Value: v, Secret: secret})
		keys = append(keys, k)
	}
	for _, k := range unset {
		if !configKey.MatchString(k) {
			return store.Operation{}, failf(ErrInvalidName, "%q is not a variable name", k)
		}
	}
	sort.Strings(keys)
	change := &pending{set: vars, unset: unset}
	op := store.Operation{Type: store.OpConfigure, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if len(keys) > 0 {
			what := "values shown by config"
			if secret {
				what = "secret values, never shown again"
			}
			l.Logf("-----> Setting %s (%s)", strings.Join(keys, ", "), what)
		}
		if len(unset) > 0 {
			l.Logf("-----> Unsetting %s", strings.Join(unset, ", "))
		}
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		if now.Commit == "" {
			l.Logf("       Nothing is deployed yet: the first deploy will use this config")
			return e.store.UpdateConfig(ctx, inst.ID, change.set, change.unset)
		}
		e.resolved(l, now.Commit)
		return e.replace(ctx, l, store.OpConfigure, inst.ID, now.Commit, l.id, change)
	})
}

// Deprovision stops an installation's traffic and deletes its instances. The
// installation is removed; its operations stay in the activity record.
func (e *Engine) Deprovision(ctx context.Context, app, env, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpDeprovision, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		e.waitSettled(ctx, inst.ID) // an image still being kept would outlive it
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		hosts, err := e.hostsOf(ctx, now)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if _, err := e.router.RemoveHost(ctx, h); err != nil {
				return err
			}
			l.Logf("-----> %s no longer routes to %s", h, now.Resource())
			e.dropCertificate(ctx, l, h)
		}
		old := webMembers(now.Members)
		e.retire(l, old, now, e.markRetiring(now.ID, old, now.Members))
		e.dropImages(ctx, l, now.ID)
		instances, err := e.rt.List(ctx)
		if err == nil {
			for _, in := range instances {
				if in.Labels[LabelInstallation] == fmt.Sprint(inst.ID) {
					if err := e.rt.Delete(ctx, in.Name); err == nil {
						l.Logf("       Deleted instance %s", in.Name)
					}
				}
			}
		}
		if err := e.store.DeleteInstallation(ctx, inst.ID); err != nil {
			return fmt.Errorf("remove installation: %w", err)
		}
		l.Logf("-----> %s deprovisioned; its operations stay listed", now.Resource())
		return nil
	})
}

// Maintenance turns maintenance mode on (the proxy answers 503 with message
// and Retry-After, the instance keeps running) or off (traffic at once).
func (e *Engine) Maintenance(ctx context.Context, app, env string, on bool, message, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	if err := checkMaintenanceMessage(message); err != nil {
		return store.Operation{}, err
	}
	if on && message == "" {
		message = "This site is down for maintenance. Please try again shortly."
	}
	state := "off"
	if on {
		state = "on"
	}
	op := store.Operation{Type: store.OpMaintenance, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.store.SetMaintenance(ctx, inst.ID, on, message); err != nil {
			return err
		}
		hosts, err := e.hostsOf(ctx, inst)
		if err != nil {
			return err
		}
		for _, h := range hosts {
			if err := e.router.Maintenance(ctx, h, on, message); err != nil {
				return err
			}
			l.Logf("-----> Maintenance mode %s for %s", state, h)
		}
		return nil
	})
}

// maxMaintenanceMessage bounds the text every visitor is shown.
const maxMaintenanceMessage = 500

func checkMaintenanceMessage(m string) error {
	if len(m) > maxMaintenanceMessage {
		return failf(ErrInvalidName, "the maintenance message has %d bytes; keep it to %d", len(m), maxMaintenanceMessage)
	}
	if !utf8.ValidString(m) {
		return failf(ErrInvalidName, "the maintenance message is not UTF-8 text")
	}
	for _, r := range m {
		if unicode.IsControl(r) {
			return failf(ErrInvalidName, "the maintenance message holds a control character (%U): give one line of text", r)
		}
	}
	return nil
}

// Execute runs a one-off command (a migration, a console) in the serving
// instance with the app's environment. Output goes to out and to the
// operation log; the command's exit status is returned. It does not wait
// behind the installation's queue: it runs beside the serving instance.
func (e *Engine) Execute(ctx context.Context, app, env string, cmd []string, stdin io.Reader, out io.Writer, term *runtime.Terminal, user string) (store.Operation, int, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, 0, err
	}
	if inst.Instance == "" {
		return store.Operation{}, 0, failf(ErrNotDeployed, "%s: nothing is deployed there yet", inst.Resource())
	}
	op, err := e.store.CreateOperation(ctx, store.Operation{Type: store.OpExecute, App: inst.App, Environment: inst.Environment,
		InstallationID: inst.ID, User: user, Commit: inst.Commit, Channel: inst.Channel()})
	if err != nil {
		return op, 0, err
	}
	e.store.StartOperation(ctx, op.ID)
	l := &opLog{hub: e.logs, id: op.ID}
	envVars, err := e.appEnv(ctx, l, inst, inst.Commit, nil, e.servedAppEnv(inst))
	l.Logf("-----> Running in %s: %s", inst.Instance, strings.Join(cmd, " "))
	code := -1
	if err == nil {
		// The words go through "$@" so they are not split again by the shell.
		argv := append([]string{"/bin/sh", "-c", "cd /app && exec \"$@\"", "run"}, cmd...)
		code, err = e.exec(ctx, inst.Instance, argv, envVars, stdin, io.MultiWriter(out, l), term)
	}
	l.Flush()
	status, reason := store.StatusSucceeded, ""
	switch {
	case err != nil:
		status, reason = store.StatusFailed, e.execFailure(ctx, inst, err)
		l.Logf("Operation %d failed: %s", op.ID, reason)
	case code != 0:
		status, reason = store.StatusFailed, exitReason(code)
		l.Logf("Operation %d failed: the command %s", op.ID, reason)
	default:
		l.Logf("Operation %d succeeded (exit status 0)", op.ID)
	}
	e.finish(op, status, reason)
	if err != nil && ctx.Err() == nil {
		err = failf(ErrExecFailed, "%s", reason)
	}
	return op, code, err
}

// exitReason says what a one-off command's non-zero exit status means
// when the shell gives it a meaning.
func exitReason(code int) string {
	reason := fmt.Sprintf("exited with status %d", code)
	switch {
	case code == 127:
		reason += ": command not found"
	case code == 126:
		reason += ": command not executable"
	case code == 137:
		reason += ": killed (SIGKILL; out of memory?)"
	case code > 128 && code < 128+32:
		reason += fmt.Sprintf(": killed by signal %d", code-128)
	}
	return reason
}

// execFailure says why a one-off command has no exit status: the command
// line it came from went away, the instance was replaced or stopped under
// it, or the runtime's own error.
func (e *Engine) execFailure(ctx context.Context, was store.Installation, err error) string {
	if ctx.Err() != nil {
		return "the SSH session ended before the command did (the client went away, or slipway stopped), so the command was killed"
	}
	now, nerr := e.store.InstallationByName(context.Background(), was.App, was.Environment)
	switch {
	case nerr == nil && now.Instance != was.Instance:
		return fmt.Sprintf("instance %s was replaced while the command ran (a deploy, restart or deprovision), so the command ended with it: %v", was.Instance, err)
	case strings.Contains(strings.ToLower(err.Error()), "not running"):
		return fmt.Sprintf("instance %s is not running, so the command could not run there (see: status %s)", was.Instance, was.Resource())
	}
	return "the command could not run or lost its instance: " + err.Error()
}

// servedAppEnv is the environment the served commit's app adds (a venv's
// PATH), for commands run beside it; nil when it cannot be read.
func (e *Engine) servedAppEnv(inst store.Installation) map[string]string {
	app, err := e.appAt(inst.App, inst.Commit)
	if err != nil {
		return nil
	}
	return app.Env
}
