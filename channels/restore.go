package channels

import (
	"context"
	"fmt"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// Restore queues the restore of a volume backup of app/env into the same
// installation, or into toApp/toEnv when those are given. A safety backup of
// the current data is taken first; then the backup becomes a new volume,
// a new instance mounts it and takes the traffic (zero downtime), and the
// old volume is deleted.
func (e *Engine) Restore(ctx context.Context, app, env string, id int64, toApp, toEnv, user string) (store.Operation, error) {
	b, err := e.store.BackupByID(ctx, id)
	if err != nil || b.Kind != store.BackupKindVolume || b.App != app || b.Environment != env {
		return store.Operation{}, fmt.Errorf("%w %d of %s/%s (see: backup list %s/%s)", ErrUnknownBackup, id, app, env, app, env)
	}
	if toApp == "" {
		toApp, toEnv = app, env
	}
	inst, err := e.installation(ctx, toApp, toEnv)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: "restore", App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.Restore(ctx, l, b, inst.ID, restoreDeployment{e: e, l: l})
	})
}

// restoreDeployment is the engine's side of a restore operation (a
// backup.Deployment): its manifests, volume names and redeploys.
type restoreDeployment struct {
	e *Engine
	l *opLog
}

// CheckVolume reads the app at the commit the installation serves, as a
// deploy resolves it (manifest, Procfile, detection).
func (d restoreDeployment) CheckVolume(inst store.Installation, volume string) error {
	if inst.Commit == "" {
		return nil
	}
	app, err := d.e.appAt(inst.App, inst.Commit)
	if err != nil {
		return fmt.Errorf("read the manifest of %s: %w; nothing was changed", shortID(inst.Commit), err)
	}
	if _, ok := app.Volumes[volume]; !ok {
		return fmt.Errorf("%s's %s (commit %s) declares no volume %q; nothing was changed", inst.Resource(), ManifestFile, shortID(inst.Commit), volume)
	}
	return nil
}

func (d restoreDeployment) VolumeName(inst store.Installation, volume string) string {
	return incusVolumeName(inst, volume)
}

// Redeploy replaces the instance the way a deploy does, the new one
// mounting the volumes the store names.
func (d restoreDeployment) Redeploy(ctx context.Context, inst store.Installation) error {
	return d.e.replace(ctx, d.l, "restore", inst.ID, inst.Commit, d.l.id, nil)
}

// Afterwards runs fn after the operation's end, once replace's clean-up
// deleted the old instance.
func (d restoreDeployment) Afterwards(fn func() error) { d.l.afterwards(fn) }

// appAt resolves app at commit as a deploy of it would.
func (e *Engine) appAt(app, commit string) (*App, error) {
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return nil, err
	}
	return loadAppAt(r, commit)
}
