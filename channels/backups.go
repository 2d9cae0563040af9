package channels

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/slipway-dev/slipway/channels/backup"
	"github.com/slipway-dev/slipway/store"
)

// Backups of persistent volumes and of the store are package backup's work;
// these methods run it as the engine's operations.

// BackupConfig is the engine's part of the backup configuration.
type BackupConfig = backup.Config

var (
	// ErrNoVolumes means the installation has no persistent volumes to back up.
	ErrNoVolumes = errors.New("no volumes")
	// ErrUnknownBackup means there is no such backup of that installation.
	ErrUnknownBackup = errors.New("unknown backup")
)

// newBackups makes the engine's backup manager, filling in the defaults of cfg.
func newBackups(cfg Config, st *store.Store, rt Runtime, logger *slog.Logger) *backup.Manager {
	bc := cfg.Backups
	if bc.Dir == "" {
		bc.Dir = filepath.Join(filepath.Dir(cfg.ReposDir), "backups")
	}
	if bc.DataDir == "" {
		bc.DataDir = filepath.Dir(cfg.ReposDir)
	}
	if bc.ScratchImage == "" {
		bc.ScratchImage = DefaultImage
	}
	d := backup.Deps{Store: st, Instances: rt, Logger: logger, Cancelled: ErrCancelled, OperationLabel: LabelOperation}
	if vr, ok := rt.(VolumeRuntime); ok {
		d.Volumes = vr
	}
	return backup.New(bc, d)
}

// Backup queues a backup of every volume of an installation. origin is
// store.OriginManual or store.OriginScheduled.
func (e *Engine) Backup(ctx context.Context, app, env, user, origin string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	vols, err := e.store.Volumes(ctx, inst.ID)
	if err != nil {
		return store.Operation{}, err
	}
	if len(vols) == 0 {
		return store.Operation{}, fmt.Errorf("%s has %w to back up: declare them under volumes: in %s and deploy", inst.Resource(), ErrNoVolumes, ManifestFile)
	}
	op := store.Operation{Type: "backup", App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.BackUpInstallation(ctx, l, inst.ID, origin)
	})
}

// BackupStore queues a backup of the daemon's own store.
func (e *Engine) BackupStore(ctx context.Context, user, origin string) (store.Operation, error) {
	op := store.Operation{Type: "backup", User: user, Channel: "store"}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.BackUpStore(ctx, l, origin)
	})
}

// BackupSystem queues a backup of slipway itself: store, keys and
// repositories in one archive.
func (e *Engine) BackupSystem(ctx context.Context, user, origin string) (store.Operation, error) {
	op := store.Operation{Type: "backup", User: user, Channel: "system"}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.BackUpSystem(ctx, l, origin)
	})
}

// VerifyBackup queues a new verification of a backup: its file must still
// match its recorded SHA-256 and restore to the same files.
func (e *Engine) VerifyBackup(ctx context.Context, id int64, user string) (store.Operation, error) {
	b, err := e.store.BackupByID(ctx, id)
	if err != nil {
		return store.Operation{}, fmt.Errorf("%w %d", ErrUnknownBackup, id)
	}
	if b.State == store.BackupRunning {
		return store.Operation{}, fmt.Errorf("backup %d is still being taken", id)
	}
	op := store.Operation{Type: "backup", User: user, Channel: b.Kind}
	if b.Kind == store.BackupKindVolume {
		op = store.Operation{Type: "backup", App: b.App, Environment: b.Environment, User: user}
		if inst, err := e.store.InstallationByName(ctx, b.App, b.Environment); err == nil {
			op.InstallationID, op.Commit, op.Channel = inst.ID, inst.Commit, inst.Channel()
		}
	}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.Verify(ctx, l, b)
	})
}

// Purge queues the removal of an installation's backups past retention.
func (e *Engine) Purge(ctx context.Context, app, env, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: "purge", App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.PurgeVolumes(ctx, l, inst)
	})
}

// PurgeStore queues the removal of store backups past retention.
func (e *Engine) PurgeStore(ctx context.Context, user string) (store.Operation, error) {
	op := store.Operation{Type: "purge", User: user, Channel: "store"}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.PurgeStore(ctx, l)
	})
}

// PurgeSystem queues the removal of system backups past retention.
func (e *Engine) PurgeSystem(ctx context.Context, user string) (store.Operation, error) {
	op := store.Operation{Type: "purge", User: user, Channel: "system"}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.PurgeSystem(ctx, l)
	})
}

// Backups lists an installation's volume backups, newest first.
func (e *Engine) Backups(ctx context.Context, app, env string) ([]store.Backup, error) {
	if _, err := e.installation(ctx, app, env); err != nil {
		return nil, err
	}
	return e.store.Backups(ctx, store.BackupFilter{Kind: store.BackupKindVolume, App: app, Environment: env})
}

// StoreBackups lists the store's backups, newest first.
func (e *Engine) StoreBackups(ctx context.Context) ([]store.Backup, error) {
	return e.store.Backups(ctx, store.BackupFilter{Kind: store.BackupKindStore})
}

// SystemBackups lists the backups of slipway itself, newest first.
func (e *Engine) SystemBackups(ctx context.Context) ([]store.Backup, error) {
	return e.store.Backups(ctx, store.BackupFilter{Kind: store.BackupKindSystem})
}

// BackupPath is where a backup's file is.
func (e *Engine) BackupPath(b store.Backup) string { return e.backups.Path(b) }

// RecoverBackups finishes what a stopped daemon left of backups and
// restores: backups it was taking are marked failed, scratch instances and
// volumes are deleted, and a restore that had not swapped traffic yet goes
// back to the volume in use before it. Call it after Recover.
func (e *Engine) RecoverBackups(ctx context.Context) error { return e.backups.Recover(ctx) }
