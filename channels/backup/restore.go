package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/channels/revert"
	"github.com/slipway-dev/slipway/store"
)

// Restore restores volume backup b into an installation: the work of its
// restore operation. A safety backup of the current data is taken first;
// then the backup becomes a new volume, d redeploys the installation onto
// it (zero downtime), and the old volume is deleted once the operation ends.
func (m *Manager) Restore(ctx context.Context, l Log, b store.Backup, installationID int64, d Deployment) error {
	inst, err := m.store.InstallationByID(ctx, installationID)
	if err != nil {
		return fmt.Errorf("installation is gone: %w", err)
	}
	warnRestore(l, b, inst)
	files, err := m.checkRestorable(l, b)
	if err != nil {
		return err
	}
	if err := d.CheckVolume(inst, b.Volume); err != nil {
		return err
	}
	current, err := m.safetyBackup(ctx, l, inst, b.Volume)
	if err != nil {
		return err
	}
	r := &restoring{m: m, l: l, d: d, b: b, inst: inst, current: current,
		volume: fmt.Sprintf("%s_r%d", d.VolumeName(inst, b.Volume), l.ID())}
	err = r.importChecked(ctx, files)
	if err == nil {
		err = r.switchVolume(ctx)
	}
	if err != nil {
		r.undoAll()
	}
	return err
}

// restoring is one restore under way, from the safety backup on.
type restoring struct {
	m       *Manager
	l       Log
	d       Deployment
	b       store.Backup
	inst    store.Installation
	current *store.Volume // the volume it replaces, nil for none
	volume  string        // the volume it makes
	undo    revert.Reverter
}

// undoAll undoes what a failed restore changed.
func (r *restoring) undoAll() {
	if err := r.undo.Fail(); err != nil {
		r.l.Logf("       Could not undo the restore's changes: %s", err)
	} else if r.current != nil {
		r.l.Logf("       %s keeps volume %s as it was", r.inst.Resource(), r.current.IncusName)
	}
}

func warnRestore(l Log, b store.Backup, inst store.Installation) {
	from := ""
	if b.Resource() != inst.Resource() {
		from = " of " + b.Resource()
	}
	l.Logf("-----> restore of %s volume %s from backup %d%s, taken %s", inst.Resource(), b.Volume, b.ID, from, b.CreatedAt.Format(time.RFC3339))
	l.Logf("       Warning: restoring replaces the data: whatever was written to %s's volume %s since %s is lost from it", inst.Resource(), b.Volume, b.CreatedAt.Format(time.RFC3339))
	l.Logf("       (a safety backup of it is taken first). To keep recent writes, roll forward instead: repair the data in place with a new commit or a one-off `run`.")
}

// checkRestorable makes sure the backup is intact before anything changes,
// and returns the checksums of the files it holds.
func (m *Manager) checkRestorable(l Log, b store.Backup) (map[string]string, error) {
	path := filepath.Join(m.cfg.Dir, b.File)
	if b.File == "" {
		return nil, fmt.Errorf("backup %d has no file (its export failed); nothing was changed", b.ID)
	}
	if err := checkFileSum(path, b); err != nil {
		m.fail(b, fmt.Errorf("restore refused it: %w", err))
		return nil, fmt.Errorf("backup %d is damaged: %s; nothing was changed", b.ID, err)
	}
	if b.State != store.BackupVerified {
		return nil, fmt.Errorf("backup %d is not verified (%s); check it with: backup verify %s %d; nothing was changed", b.ID, dashIfEmpty(b.Reason, b.State), b.Resource(), b.ID)
	}
	if m.vols == nil {
		return nil, ErrNoVolumeSupport
	}
	info, err := m.readExport(path)
	if err != nil {
		return nil, fmt.Errorf("backup %d does not read: %s; nothing was changed", b.ID, err)
	}
	l.Logf("       Backup %d is intact: its file matches the recorded SHA-256 %s", b.ID, b.SHA256)
	return info.files, nil
}

// safetyBackup backs up the installation's volume as it is now, and
// returns it (nil when it has none yet).
func (m *Manager) safetyBackup(ctx context.Context, l Log, inst store.Installation, volume string) (*store.Volume, error) {
	vols, err := m.store.Volumes(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	var current *store.Volume
	for i := range vols {
		if vols[i].Name == volume {
			current = &vols[i]
		}
	}
	if current == nil {
		return nil, nil
	}
	l.Logf("-----> Safety backup of %s volume %s as it is now", inst.Resource(), volume)
	sb, err := m.backupVolume(ctx, l, inst, *current, store.OriginSafety)
	if err != nil {
		return nil, fmt.Errorf("safety backup %d failed (%s); nothing was changed", sb.ID, err)
	}
	l.Logf("       Safety backup %d holds the data as it was before this restore: restore it to undo this one", sb.ID)
	return current, nil
}

// importChecked imports the backup into the new volume and checks its
// files against the backup's.
func (r *restoring) importChecked(ctx context.Context, want map[string]string) error {
	m := r.m
	r.l.Logf("-----> Restoring backup %d into volume %s", r.b.ID, r.volume)
	step := time.Now()
	f, err := os.Open(filepath.Join(m.cfg.Dir, r.b.File))
	if err != nil {
		return err
	}
	err = m.vols.ImportVolume(ctx, r.volume, f)
	f.Close()
	r.undo.Add(func() error {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return m.vols.DeleteVolume(dctx, r.volume)
	})
	if err != nil {
		return m.stepError(ctx, "import backup", err)
	}
	got, err := m.vols.VolumeChecksums(ctx, r.volume, m.cfg.ScratchImage)
	if err != nil {
		return m.stepError(ctx, "checksum the restored volume", err)
	}
	if err := compareFiles(want, got); err != nil {
		return err
	}
	r.l.Logf("       Restored and checked: the checksums of all %s match the backup's (%s)", plural(len(want), "file"), time.Since(step).Round(time.Millisecond))
	return nil
}

// switchVolume makes the new volume the installation's and, when something
// is deployed, redeploys onto it; the old volume goes afterwards.
func (r *restoring) switchVolume(ctx context.Context) error {
	m, inst, vol := r.m, r.inst, r.b.Volume
	if err := m.store.BeginVolumeRestore(ctx, inst.ID, vol, r.volume, r.l.ID()); err != nil {
		return err
	}
	r.undo.Add(func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return m.store.AbortVolumeRestore(dctx, inst.ID, vol)
	})
	if inst.Commit == "" {
		if err := m.store.FinishVolumeRestore(ctx, inst.ID, vol); err != nil {
			return err
		}
		r.undo.Success()
		r.l.Logf("-----> Nothing is deployed on %s yet: its first deploy mounts the restored volume", inst.Resource())
		return nil
	}
	if err := r.d.Redeploy(ctx, inst); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.store.FinishVolumeRestore(dctx, inst.ID, vol); err != nil {
		m.log.Error("record restored volume", "installation", inst.Resource(), "err", err)
	}
	r.undo.Success()
	if r.current != nil {
		// After the old instance, which mounts it, is deleted (see Deployment.Afterwards).
		old := r.current.IncusName
		r.d.Afterwards(func() error { return m.deleteOldVolume(r.l, old) })
	}
	r.l.Logf("-----> %s serves the data of backup %d from volume %s", inst.Host, r.b.ID, r.volume)
	return nil
}

// deleteOldVolume deletes the volume a restore replaced.
func (m *Manager) deleteOldVolume(l Log, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.vols.DeleteVolume(ctx, name); err != nil {
		l.Logf("       Could not delete the old volume %s: %s", name, err)
		return fmt.Errorf("delete the old volume %s: %w", name, err)
	}
	l.Logf("       Old volume %s deleted; its data is in the safety backup", name)
	return nil
}
