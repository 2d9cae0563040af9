package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// startCron schedules the periodic jobs: weekly activity reports (and, as they
// come, backups and purges). Schedules are read in UTC.
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
	d.cron.Start()
	return nil
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
