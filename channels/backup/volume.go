package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// BackUpInstallation backs up every volume of an installation: the work of
// its backup operation. origin is store.OriginManual or store.OriginScheduled.
func (m *Manager) BackUpInstallation(ctx context.Context, l Log, installationID int64, origin string) error {
	inst, err := m.store.InstallationByID(ctx, installationID)
	if err != nil {
		return fmt.Errorf("installation is gone: %w", err)
	}
	vols, err := m.store.Volumes(ctx, inst.ID)
	if err != nil {
		return err
	}
	l.Logf("-----> %s backup of %s: %d volume(s) to %s", origin, inst.Resource(), len(vols), m.cfg.Dir)
	var failed []string
	for _, v := range vols {
		if b, err := m.backupVolume(ctx, l, inst, v, origin); err != nil {
			failed = append(failed, fmt.Sprintf("backup %d of volume %s: %s", b.ID, v.Name, err))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// backupVolume exports one volume, records the file and verifies it by a
// test restore. The backup is recorded (failed, with the reason) even when
// the export or the verification fails.
func (m *Manager) backupVolume(ctx context.Context, l Log, inst store.Installation, v store.Volume, origin string) (store.Backup, error) {
	b, err := m.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindVolume, InstallationID: inst.ID, App: inst.App,
		Environment: inst.Environment, Volume: v.Name, Source: v.IncusName, Origin: origin, OperationID: l.ID()})
	if err != nil {
		return b, fmt.Errorf("record backup: %w", err)
	}
	path, files, err := m.export(ctx, l, &b, v)
	if err != nil {
		return b, m.fail(b, err)
	}
	step := time.Now()
	if err := m.testRestore(ctx, b, path, files); err != nil {
		return b, m.fail(b, fmt.Errorf("verification failed: %w", m.cancelled(ctx, "test restore", err)))
	}
	if err := m.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
		return b, err
	}
	b.State = store.BackupVerified
	l.Logf("       Verified: restored into a scratch volume, the checksums of all %s match the backup's (%s)", plural(b.Files, "file"), time.Since(step).Round(time.Millisecond))
	return b, nil
}

// export writes volume backup b's file and records its name, size,
// checksum and file count, in the store and in b. It returns the file's
// path and the checksums of the files it holds.
func (m *Manager) export(ctx context.Context, l Log, b *store.Backup, v store.Volume) (string, map[string]string, error) {
	if m.vols == nil {
		return "", nil, ErrNoVolumeSupport
	}
	rel := filepath.Join(b.App, b.Environment, fmt.Sprintf("%s-%s-%d.tar.gz", v.Name, b.CreatedAt.Format("20060102T150405Z"), b.ID))
	path := filepath.Join(m.cfg.Dir, rel)
	step := time.Now()
	err := writeFile(path, func(w io.Writer) error {
		_, err := m.vols.ExportVolume(ctx, v.IncusName, w)
		return err
	})
	if err != nil {
		return "", nil, m.stepError(ctx, "export volume "+v.IncusName, err)
	}
	info, err := m.readExport(path)
	if err != nil {
		return "", nil, fmt.Errorf("the exported file does not read back: %w", err)
	}
	if err := m.store.SetBackupFile(ctx, b.ID, rel, info.size, info.sha256, len(info.files)); err != nil {
		return "", nil, err
	}
	b.File, b.Size, b.SHA256, b.Files = rel, info.size, info.sha256, len(info.files)
	l.Logf("       Backup %d of volume %s (%s): %s, %s, sha256 %s, in %s (%s)", b.ID, v.Name, v.IncusName,
		plural(b.Files, "file"), humanSize(b.Size), b.SHA256, rel, time.Since(step).Round(time.Millisecond))
	return path, info.files, nil
}
