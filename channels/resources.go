package channels

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// CreateApp registers an app and makes its bare repository.
func (e *Engine) CreateApp(ctx context.Context, name string) (store.App, error) {
	if err := CheckName("app", name); err != nil {
		return store.App{}, err
	}
	if _, err := e.store.AppByName(ctx, name); err == nil {
		return store.App{}, failf(ErrExists, "app %s already exists", name)
	}
	dir := e.repoDir(name)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := repo.Init(dir); err != nil {
			return store.App{}, fmt.Errorf("create repository for %s: %w", name, err)
		}
	}
	app, err := e.store.CreateApp(ctx, name)
	if errors.Is(err, store.ErrExists) {
		return app, failf(ErrExists, "app %s already exists", name)
	}
	return app, err
}

// CreateEnvironment registers an environment.
func (e *Engine) CreateEnvironment(ctx context.Context, name string) (store.Environment, error) {
	if err := CheckName("environment", name); err != nil {
		return store.Environment{}, err
	}
	env, err := e.store.CreateEnvironment(ctx, name)
	if errors.Is(err, store.ErrExists) {
		return env, failf(ErrExists, "environment %s already exists", name)
	}
	return env, err
}

// DeleteApp removes an app and its repository: every commit pushed to it. It
// is refused while the app is installed anywhere. Its operations stay in the
// activity record under its name.
func (e *Engine) DeleteApp(ctx context.Context, name string) error {
	if _, err := e.store.AppByName(ctx, name); err != nil {
		return failf(ErrUnknownApp, "unknown app: %s", name)
	}
	insts, err := e.store.Installations(ctx, name)
	if err != nil {
		return err
	}
	if len(insts) > 0 {
		return failf(ErrInUse, "%s is installed in %s: deprovision %s first", name, resources(insts, func(i store.Installation) string { return i.Environment }), resources(insts, store.Installation.Resource))
	}
	if err := e.store.DeleteApp(ctx, name); err != nil {
		return err
	}
	// The record is gone first: a push that finds no app is refused, so
	// nothing writes into the repository while it is removed.
	if err := os.RemoveAll(e.repoDir(name)); err != nil {
		return fmt.Errorf("app %s is deleted, but its repository is not: %w", name, err)
	}
	return nil
}

// DeleteEnvironment removes an environment and the roles in it. It is refused
// while any installation is in it; its operations and reports stay on record.
func (e *Engine) DeleteEnvironment(ctx context.Context, name string) error {
	if _, err := e.store.EnvironmentByName(ctx, name); err != nil {
		return failf(ErrUnknownEnvironment, "unknown environment: %s", name)
	}
	all, err := e.store.Installations(ctx, "")
	if err != nil {
		return err
	}
	var insts []store.Installation
	for _, i := range all {
		if i.Environment == name {
			insts = append(insts, i)
		}
	}
	if len(insts) > 0 {
		return failf(ErrInUse, "environment %s holds %s: deprovision them first", name, resources(insts, store.Installation.Resource))
	}
	return e.store.DeleteEnvironment(ctx, name)
}

func resources(insts []store.Installation, name func(store.Installation) string) string {
	var out []string
	for _, i := range insts {
		out = append(out, name(i))
	}
	return strings.Join(out, ", ")
}

// Install makes an installation of app in env that follows branch, served on
// host (default APP.ENV.<base domain>). When the branch already has commits,
// the first deploy is queued at once.
func (e *Engine) Install(ctx context.Context, app, env, branch, host, user string) (store.Installation, *store.Operation, error) {
	if err := CheckBranch(branch); err != nil {
		return store.Installation{}, nil, err
	}
	if _, err := e.store.AppByName(ctx, app); err != nil {
		return store.Installation{}, nil, failf(ErrUnknownApp, "unknown app: %s", app)
	}
	if _, err := e.store.EnvironmentByName(ctx, env); err != nil {
		return store.Installation{}, nil, failf(ErrUnknownEnvironment, "unknown environment: %s", env)
	}
	if host == "" {
		host = app + "." + env + "." + e.cfg.BaseDomain
	}
	host = strings.ToLower(host)
	if err := checkHost(host); err != nil {
		return store.Installation{}, nil, err
	}
	inst, err := e.store.CreateInstallation(ctx, app, env, host, store.ChannelBranch, branch)
	if errors.Is(err, store.ErrExists) {
		return inst, nil, failf(ErrExists, "%s/%s is installed already, or host %s is taken", app, env, host)
	}
	if err != nil {
		return inst, nil, err
	}
	if err := e.router.AddHost(ctx, inst.Host); err != nil {
		return inst, nil, err
	}
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return inst, nil, nil
	}
	commit, err := r.Branch(branch)
	if err != nil {
		return inst, nil, nil // nothing pushed yet: the first push deploys
	}
	op, err := e.deployCommit(ctx, inst, commit, user, store.OpDeploy)
	if err != nil {
		return inst, nil, err
	}
	return inst, &op, nil
}

func checkHost(host string) error {
	if len(host) > 253 || host == "" {
		return failf(ErrInvalidName, "host %q is not a valid host name", host)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return failf(ErrInvalidName, "host %q is not a valid host name", host)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return failf(ErrInvalidName, "host %q is not a valid host name", host)
			}
		}
	}
	return nil
}
