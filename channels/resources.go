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
		return store.App{}, fmt.Errorf("%w: app %s", ErrExists, name)
	}
	dir := e.repoDir(name)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := repo.Init(dir); err != nil {
			return store.App{}, fmt.Errorf("create repository for %s: %w", name, err)
		}
	}
	app, err := e.store.CreateApp(ctx, name)
	if errors.Is(err, store.ErrExists) {
		return app, fmt.Errorf("%w: app %s", ErrExists, name)
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
		return env, fmt.Errorf("%w: environment %s", ErrExists, name)
	}
	return env, err
}

// Install makes an installation of app in env that follows branch, served on
// host (default APP.ENV.<base domain>). When the branch already has commits,
// the first deploy is queued at once.
func (e *Engine) Install(ctx context.Context, app, env, branch, host, user string) (store.Installation, *store.Operation, error) {
	if err := CheckBranch(branch); err != nil {
		return store.Installation{}, nil, err
	}
	if _, err := e.store.AppByName(ctx, app); err != nil {
		return store.Installation{}, nil, fmt.Errorf("%w: %s", ErrUnknownApp, app)
	}
	if _, err := e.store.EnvironmentByName(ctx, env); err != nil {
		return store.Installation{}, nil, fmt.Errorf("%w: %s", ErrUnknownEnvironment, env)
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
		return inst, nil, fmt.Errorf("%w: %s/%s is installed already, or host %s is taken", ErrExists, app, env, host)
	}
	if err != nil {
		return inst, nil, err
	}
	e.proxy.AddHost(inst.Host)
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return inst, nil, nil
	}
	commit, err := r.Branch(branch)
	if err != nil {
		return inst, nil, nil // nothing pushed yet: the first push deploys
	}
	op, err := e.deployCommit(ctx, inst, commit, user, "deploy")
	if err != nil {
		return inst, nil, err
	}
	return inst, &op, nil
}

func checkHost(host string) error {
	if len(host) > 253 || host == "" {
		return fmt.Errorf("%w: host %q is not a valid host name", ErrInvalidName, host)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("%w: host %q is not a valid host name", ErrInvalidName, host)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: host %q is not a valid host name", ErrInvalidName, host)
			}
		}
	}
	return nil
}
