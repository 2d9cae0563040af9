package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipway-dev/slipway/store"
)

// Schedule returns the cron schedule an installation's volumes are backed
// up on ("" for none) and whether it is the installation's own.
func (m *Manager) Schedule(ctx context.Context, installationID int64) (spec string, own bool, err error) {
	spec, err = m.store.BackupSchedule(ctx, installationID)
	if err != nil || spec != "" {
		return spec, spec != "", err
	}
	return m.cfg.Schedule, false, nil
}

// ParseSchedule reads what SetSchedule takes: a cron line read in UTC,
// "off", or "default" (returned as "").
func ParseSchedule(spec string) (string, error) {
	switch spec {
	case "default":
		return "", nil
	case "off":
		return spec, nil
	}
	if _, err := cron.ParseStandard(spec); err != nil {
		return "", fmt.Errorf("%q is not a cron schedule (e.g. \"30 2 * * *\", \"@daily\", or off): %v", spec, err)
	}
	return spec, nil
}

// SetSchedule gives an installation its own backup schedule, as
// ParseSchedule returned it; "" returns it to the default one.
func (m *Manager) SetSchedule(ctx context.Context, installationID int64, spec string) error {
	return m.store.SetBackupSchedule(ctx, installationID, spec)
}

// Due returns the installations whose backups fell due in (from, to]:
// those with volumes, on their own schedule or the default one.
func (m *Manager) Due(ctx context.Context, from, to time.Time) ([]store.Installation, error) {
	insts, err := m.store.Installations(ctx, "")
	if err != nil {
		return nil, err
	}
	vols, err := m.store.Volumes(ctx, 0)
	if err != nil {
		return nil, err
	}
	withVolumes := map[int64]bool{}
	for _, v := range vols {
		withVolumes[v.InstallationID] = true
	}
	var out []store.Installation
	for _, inst := range insts {
		if !withVolumes[inst.ID] {
			continue
		}
		spec, err := m.store.BackupSchedule(ctx, inst.ID)
		if err != nil {
			continue
		}
		if spec == "" {
			spec = m.cfg.Schedule
		}
		if due(spec, from, to) {
			out = append(out, inst)
		}
	}
	return out, nil
}

// due reports whether a cron schedule fires in (from, to]. "" and "off" never do.
// DueIn reports whether spec ("" or "off": never) fires in (from, to].
func DueIn(spec string, from, to time.Time) bool { return due(spec, from, to) }

func due(spec string, from, to time.Time) bool {
	if spec == "" || spec == "off" {
		return false
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return false
	}
	next := s.Next(from.UTC())
	return !next.IsZero() && !next.After(to.UTC())
}
