package backup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/store"
)

// PurgeVolumes removes an installation's volume backups past retention: the
// work of its purge operation.
func (m *Manager) PurgeVolumes(ctx context.Context, l Log, inst store.Installation) error {
	return m.purge(ctx, l, store.BackupFilter{Kind: store.BackupKindVolume, App: inst.App, Environment: inst.Environment}, inst.Resource())
}

// PurgeStore removes the store's backups past retention.
func (m *Manager) PurgeStore(ctx context.Context, l Log) error {
	return m.purge(ctx, l, store.BackupFilter{Kind: store.BackupKindStore}, "the store")
}

// PurgeDatabase removes a database's backups past retention.
func (m *Manager) PurgeDatabase(ctx context.Context, l Log, name string) error {
	return m.purge(ctx, l, store.BackupFilter{Kind: store.BackupKindDatabase, Volume: name}, "database "+name)
}

// DatabaseManifestSuffix names the file beside a database dump that holds
// its manifest: every table's count and checksum at dump time.
const DatabaseManifestSuffix = ".manifest.json"

func (m *Manager) purge(ctx context.Context, l Log, f store.BackupFilter, what string) error {
	daily, weekly := m.cfg.retention()
	l.Logf("-----> Purging backups of %s: keeping the newest verified one of each of the last %d days and %d weeks", what, daily, weekly)
	all, err := m.store.Backups(ctx, f)
	if err != nil {
		return err
	}
	kept, removed := 0, 0
	for _, series := range bySeries(all) {
		keep, drop := Retain(series, daily, weekly)
		kept += len(keep)
		for _, b := range drop {
			ok, err := m.remove(ctx, l, b)
			if err != nil {
				return err
			}
			if ok {
				removed++
			}
		}
	}
	l.Logf("       Kept %s, removed %d", plural(kept, "backup"), removed)
	return nil
}

// bySeries groups backups by volume (the store's are one series), in the
// order each series first appears.
func bySeries(all []store.Backup) [][]store.Backup {
	index := map[string]int{}
	var out [][]store.Backup
	for _, b := range all {
		i, ok := index[b.Volume]
		if !ok {
			i = len(out)
			index[b.Volume] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], b)
	}
	return out
}

// remove deletes a backup's file and record. A file that will not go is
// logged and the backup kept (false); a store failure is an error.
func (m *Manager) remove(ctx context.Context, l Log, b store.Backup) (bool, error) {
	if b.File != "" {
		if err := os.Remove(filepath.Join(m.cfg.Dir, b.File)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.Logf("       Could not remove %s: %s", b.File, err)
			return false, nil
		}
		os.Remove(filepath.Join(m.cfg.Dir, b.File) + sysarchive.SidecarSuffix) // a system backup's .sha256
		os.Remove(filepath.Join(m.cfg.Dir, b.File) + DatabaseManifestSuffix)   // a database dump's manifest
	}
	if err := m.store.DeleteBackup(ctx, b.ID); err != nil {
		return false, err
	}
	l.Logf("       Removed backup %d of %s (taken %s, %s)", b.ID, describe(b), b.CreatedAt.Format(time.RFC3339), b.State)
	return true, nil
}
