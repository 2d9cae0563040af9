package channels

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/channels/backup"
	"github.com/slipway-dev/slipway/store"
)

// BackupSchedule returns the cron schedule an installation's volumes are
// backed up on ("" for none) and whether it is the installation's own.
func (e *Engine) BackupSchedule(ctx context.Context, app, env string) (spec string, own bool, err error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return "", false, err
	}
	return e.backups.Schedule(ctx, inst.ID)
}

// SetBackupSchedule gives an installation its own backup schedule (a cron
// line read in UTC, or "off"); "default" returns it to the daemon's.
func (e *Engine) SetBackupSchedule(ctx context.Context, app, env, spec string) error {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return err
	}
	spec, err = backup.ParseSchedule(spec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	return e.backups.SetSchedule(ctx, inst.ID, spec)
}

// RunScheduledBackups queues the backups that fell due in (from, to]: every
// installation with volumes on its own schedule or the default one, each
// followed by a purge of what is past retention. The daemon's cron calls it
// every minute, so schedule changes apply without a restart.
func (e *Engine) RunScheduledBackups(ctx context.Context, from, to time.Time) []store.Operation {
	insts, err := e.backups.Due(ctx, from, to)
	if err != nil {
		e.log.Error("scheduled backups", "err", err)
		return nil
	}
	var ops []store.Operation
	for _, inst := range insts {
		op, err := e.Backup(ctx, inst.App, inst.Environment, "slipway", store.OriginScheduled)
		if err != nil {
			e.log.Error("scheduled backup", "installation", inst.Resource(), "err", err)
			continue
		}
		ops = append(ops, op)
		if op, err := e.Purge(ctx, inst.App, inst.Environment, "slipway"); err == nil {
			ops = append(ops, op)
		}
	}
	return ops
}
