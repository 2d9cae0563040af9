package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipway-dev/slipway/store"
)

// startCron schedules the periodic jobs: weekly activity reports, backups
// and purges, housekeeping. Schedules are read in UTC.
func (d *Daemon) startCron() error {
	d.cron = cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := d.cron.AddFunc(d.cfg.ReportSchedule, func() {
		ops := d.engine.MakeWeeklyReports(context.Background(), d.now())
		d.log.Info("Weekly activity reports queued", "operations", len(ops))
	}); err != nil {
		return fmt.Errorf("--report-schedule %q: %w", d.cfg.ReportSchedule, err)
	}
	// Housekeeping, daily: logs of deprovisioned installations past their
	// retention, and spent sign-in links and sessions.
	if _, err := d.cron.AddFunc("15 3 * * *", d.housekeeping); err != nil {
		return err
	}
	// Old instances whose deletion failed after a swap, tried again.
	if _, err := d.cron.AddFunc("*/5 * * * *", func() {
		if _, err := d.engine.DeleteLeftovers(context.Background()); err != nil {
			d.log.Error("Delete leftover instances", "err", err)
		}
	}); err != nil {
		return err
	}
	if err := d.scheduleBackups(); err != nil {
		return err
	}
	// Verified backups copied off the host, when a place is given.
	if d.cfg.BackupCopyDir != "" {
		if _, err := d.cron.AddFunc("*/10 * * * *", func() {
			if ops := d.engine.CopyDueBackups(context.Background()); len(ops) > 0 {
				d.log.Info("Backup copies queued", "operations", len(ops))
			}
		}); err != nil {
			return err
		}
	}
	// Certificates due (or missing, or past their back-off), renewed.
	if _, err := d.cron.AddFunc(d.cfg.ACME.RenewSchedule, func() {
		if ops := d.engine.RenewDue(context.Background()); len(ops) > 0 {
			d.log.Info("Certificate renewals queued", "operations", len(ops))
		}
	}); err != nil {
		return fmt.Errorf("--renew-schedule %q: %w", d.cfg.ACME.RenewSchedule, err)
	}
	d.cron.Start()
	return nil
}

// scheduleBackups adds the backup jobs: the store's on its own schedule, and
// every minute a look at each installation's schedule (its own or the
// default), so one set with `backup schedule` applies without a restart.
// Each backup is followed by a purge of what is past retention.
func (d *Daemon) scheduleBackups() error {
	if spec := d.cfg.StoreBackupSchedule; spec != "" && spec != "off" {
		_, err := d.cron.AddFunc(spec, func() {
			ctx := context.Background()
			op, err := d.engine.BackupStore(ctx, "slipway", store.OriginScheduled)
			if err != nil {
				d.log.Error("Scheduled store backup", "err", err)
				return
			}
			if _, err := d.engine.PurgeStore(ctx, "slipway"); err != nil {
				d.log.Error("Purge of store backups", "err", err)
			}
			d.log.Info("Store backup queued", "op", op.ID)
		})
		if err != nil {
			return fmt.Errorf("--store-backup-schedule %q: %w", spec, err)
		}
	}
	lastDB := d.now() // each database's own schedule, or the default, looked at every minute
	if _, err := d.cron.AddFunc("* * * * *", func() {
		now := d.now()
		if ops := d.engine.BackUpDueDatabases(context.Background(), lastDB, now, d.cfg.DatabaseBackupSchedule); len(ops) > 0 {
			d.log.Info("Database backups queued", "operations", len(ops))
		}
		lastDB = now
	}); err != nil {
		return err
	}
	if spec := d.cfg.SystemBackupSchedule; spec != "" && spec != "off" {
		if _, err := d.cron.AddFunc(spec, d.backUpSystem); err != nil {
			return fmt.Errorf("--system-backup-schedule %q: %w", spec, err)
		}
	}
	last := d.now() // only the job below uses it, and never twice at once
	_, err := d.cron.AddFunc("* * * * *", func() {
		now := d.now()
		ops := d.engine.RunScheduledBackups(context.Background(), last, now)
		last = now
		if len(ops) > 0 {
			d.log.Info("Scheduled backups queued", "operations", len(ops))
		}
	})
	return err
}

// backUpSystem queues the scheduled backup of slipway itself and a purge of
// the system backups past retention.
func (d *Daemon) backUpSystem() {
	ctx := context.Background()
	op, err := d.engine.BackupSystem(ctx, "slipway", store.OriginScheduled)
	if err != nil {
		d.log.Error("Scheduled system backup", "err", err)
		return
	}
	if _, err := d.engine.PurgeSystem(ctx, "slipway"); err != nil {
		d.log.Error("Purge of system backups", "err", err)
	}
	d.log.Info("System backup queued", "op", op.ID)
}

func (d *Daemon) stopCron() {
	if d.cron != nil {
		<-d.cron.Stop().Done()
	}
}

func (d *Daemon) now() time.Time {
	if d.cfg.Now != nil {
		return d.cfg.Now()
	}
	return time.Now()
}

func (d *Daemon) housekeeping() {
	ctx := context.Background()
	n, err := d.store.PurgeDeprovisionedLogs(ctx, d.now().Add(-d.cfg.LogRetention))
	if err != nil {
		d.log.Error("Purge logs of deprovisioned installations", "err", err)
	} else if n > 0 {
		d.log.Info("Purged logs of deprovisioned installations", "lines", n, "retention", d.cfg.LogRetention)
	}
	if err := d.store.PurgeSignIns(ctx); err != nil {
		d.log.Error("Purge sign-ins", "err", err)
	}
}
