package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/store"
)

// BackUpSystem writes one archive of everything slipway needs to come back
// on a new host (store, keys, repositories; see sysarchive), with its SHA-256
// recorded and in a .sha256 file beside it, then verifies it by restoring it
// into a scratch directory: the work of a system backup operation.
func (m *Manager) BackUpSystem(ctx context.Context, l Log, origin string) error {
	l.Logf("-----> %s backup of slipway itself to %s", origin, m.cfg.Dir)
	b, err := m.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindSystem, Origin: origin, OperationID: l.ID()})
	if err != nil {
		return fmt.Errorf("record backup: %w", err)
	}
	rel := filepath.Join("system", fmt.Sprintf("slipway-system-%s-%d.tar.gz", b.CreatedAt.Format("20060102T150405Z"), b.ID))
	path := filepath.Join(m.cfg.Dir, rel)
	step := time.Now()
	sum, err := sysarchive.Write(ctx, path, m.cfg.DataDir, m.cfg.System, m.store.BackupTo)
	if err != nil {
		return m.fail(b, m.cancelled(ctx, "write the archive", err))
	}
	if err := sysarchive.WriteSidecar(path, sum.SHA256); err != nil {
		return m.fail(b, err)
	}
	if err := m.store.SetBackupFile(ctx, b.ID, rel, sum.Size, sum.SHA256, len(sum.Repos)); err != nil {
		return m.fail(b, err)
	}
	b.File, b.Size, b.SHA256 = rel, sum.Size, sum.SHA256
	l.Logf("       Backup %d of slipway: %s, sha256 %s, in %s (%s)", b.ID, humanSize(sum.Size), sum.SHA256, rel, time.Since(step).Round(time.Millisecond))
	l.Logf("       It holds the store, the keys %s and %s: keep it as secret as the host", strings.Join(sum.Keys, ", "), plural(len(sum.Repos), "repository"))
	return m.verifySystem(ctx, l, b)
}

// verifySystem restores a system archive into a scratch directory and
// records the result.
func (m *Manager) verifySystem(ctx context.Context, l Log, b store.Backup) error {
	c, err := sysarchive.Verify(ctx, m.Path(b), b.SHA256, filepath.Dir(m.Path(b)))
	if err != nil {
		return m.fail(b, fmt.Errorf("verification failed: %w", m.cancelled(ctx, "test restore", err)))
	}
	if err := m.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
		return err
	}
	l.Logf("       Verified: the archive matches its SHA-256; restored into a scratch directory, the store passes integrity_check (schema version %d) and %s pass git fsck",
		c.SchemaVersion, plural(len(c.Repos), "repository"))
	return nil
}

// PurgeSystem removes system backups past retention.
func (m *Manager) PurgeSystem(ctx context.Context, l Log) error {
	return m.purge(ctx, l, store.BackupFilter{Kind: store.BackupKindSystem}, "slipway itself")
}
