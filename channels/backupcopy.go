package channels

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/slipway-dev/slipway/store"
)

// CopyConfig says where off-site copies of backups go.
type CopyConfig struct {
	Dir  string   // a directory on other storage (a mounted NAS, an rclone mount of S3); "": no copies
	Envs []string // environments whose verified backups the cron job copies; the store's and slipway's own always
}

// copyTarget names the copy directory in the store's records.
func (e *Engine) copyTarget() string { return "dir:" + filepath.Clean(e.cfg.Copies.Dir) }

// CopyBackup starts a copy operation sending backup id to the copy
// directory, checked there against its SHA-256.
func (e *Engine) CopyBackup(ctx context.Context, id, user string) (store.Operation, error) {
	if e.cfg.Copies.Dir == "" {
		return store.Operation{}, failf(ErrNotRunning, "no place for copies: start slipway with --backup-copy-dir DIR")
	}
	n, err := strconv.ParseInt(id, 10, 64)
	b, berr := e.store.BackupByID(ctx, n)
	if err != nil || berr != nil {
		return store.Operation{}, failf(ErrUnknownBackup, "no backup %s", id)
	}
	if b.State != store.BackupVerified {
		return store.Operation{}, failf(ErrNotRunning, "backup %d is %s: only verified backups are copied", b.ID, b.State)
	}
	return e.submitCopy(ctx, b, user)
}

func (e *Engine) submitCopy(ctx context.Context, b store.Backup, user string) (store.Operation, error) {
	op := store.Operation{Type: store.OpCopy, App: b.App, Environment: b.Environment, InstallationID: b.InstallationID, User: user}
	if b.Kind == store.BackupKindDatabase {
		op.App, op.Database = "", b.Volume
	}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		l.Logf("-----> Copying backup %d of %s to %s", b.ID, b.Resource(), e.cfg.Copies.Dir)
		sum, err := e.backups.CopyTo(b, e.cfg.Copies.Dir)
		if err != nil {
			return err
		}
		if err := e.store.RecordCopy(ctx, b.ID, e.copyTarget(), sum); err != nil {
			return err
		}
		l.Logf("       Copied, and read back there: SHA-256 %s, as recorded", sum)
		return nil
	})
}

// CopyDueBackups starts a copy of every verified backup not copied yet, of
// the store, of slipway itself and of the environments in Copies.Envs; the
// cron job calls it.
func (e *Engine) CopyDueBackups(ctx context.Context) []store.Operation {
	if e.cfg.Copies.Dir == "" {
		return nil
	}
	due, err := e.store.Uncopied(ctx, e.copyTarget())
	if err != nil {
		e.log.Error("Backup copies", "err", err)
		return nil
	}
	var ops []store.Operation
	for _, b := range due {
		own := b.Kind == store.BackupKindStore || b.Kind == store.BackupKindSystem
		if !own && !slices.Contains(e.cfg.Copies.Envs, b.Environment) {
			continue
		}
		op, err := e.submitCopy(ctx, b, "slipway")
		if err != nil {
			e.log.Error("Backup copy", "backup", b.ID, "err", err)
			continue
		}
		ops = append(ops, op)
	}
	return ops
}
