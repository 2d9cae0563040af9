package backup

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/channels/runtime"
)

// Recover finishes what a stopped daemon left of backups and restores:
// backups it was taking are marked failed, scratch instances and volumes
// are deleted, and a restore that had not swapped traffic yet goes back to
// the volume in use before it.
func (m *Manager) Recover(ctx context.Context) error {
	backups, err := m.store.InterruptBackups(ctx, "interrupted: slipway stopped while it ran")
	if err != nil {
		return err
	}
	for _, b := range backups {
		m.log.Warn("Backup interrupted", "backup", b.ID, "resource", b.Resource())
	}
	m.removePartialFiles()
	if m.vols == nil {
		return nil
	}
	serving, err := m.deleteScratchInstances(ctx)
	if err != nil {
		return err
	}
	if err := m.settleRestores(ctx, serving); err != nil {
		return err
	}
	return m.deleteScratchVolumes(ctx)
}

// removePartialFiles removes the files of writes and checks that did not end.
func (m *Manager) removePartialFiles() {
	filepath.WalkDir(m.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".part") || strings.Contains(filepath.Base(path), ".verify-")) {
			os.Remove(path)
		}
		// A system backup's scratch directories (.system-*, .verify-system-*).
		if err == nil && d.IsDir() && (strings.HasPrefix(d.Name(), ".system-") || strings.HasPrefix(d.Name(), ".verify-system-")) {
			os.RemoveAll(path)
			return filepath.SkipDir
		}
		return nil
	})
}

// deleteScratchInstances deletes the checksum instances left, and returns
// every instance by name.
func (m *Manager) deleteScratchInstances(ctx context.Context) (map[string]runtime.Instance, error) {
	instances, err := m.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	serving := map[string]runtime.Instance{}
	for _, in := range instances {
		if _, ok := in.Labels[LabelScratch]; ok {
			m.log.Info("Deleting scratch instance", "instance", in.Name)
			if err := m.rt.Delete(ctx, in.Name); err != nil {
				m.log.Warn("Delete scratch instance", "instance", in.Name, "err", err)
			}
		}
		serving[in.Name] = in
	}
	return serving, nil
}

// settleRestores keeps the volume of each interrupted restore that swapped
// traffic, and undoes the others.
func (m *Manager) settleRestores(ctx context.Context, serving map[string]runtime.Instance) error {
	vols, err := m.store.Volumes(ctx, 0)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if v.RestoreOperation == 0 {
			continue
		}
		inst, err := m.store.InstallationByID(ctx, v.InstallationID)
		if err != nil {
			continue
		}
		// The restore swapped traffic when the instance serving now is the
		// one it built.
		if in, ok := serving[inst.Instance]; ok && in.Labels[m.opLabel] == strconv.FormatInt(v.RestoreOperation, 10) {
			m.log.Info("Keeping restored volume", "installation", inst.Resource(), "volume", v.IncusName)
			m.store.FinishVolumeRestore(ctx, v.InstallationID, v.Name)
			continue
		}
		m.log.Info("Undoing interrupted restore", "installation", inst.Resource(), "volume", v.IncusName, "back to", v.Previous)
		if err := m.store.AbortVolumeRestore(ctx, v.InstallationID, v.Name); err != nil {
			return err
		}
		if err := m.vols.DeleteVolume(ctx, v.IncusName); err != nil {
			m.log.Warn("Delete volume of interrupted restore", "volume", v.IncusName, "err", err)
		}
	}
	return nil
}

// deleteScratchVolumes deletes the test-restore volumes left.
func (m *Manager) deleteScratchVolumes(ctx context.Context) error {
	names, err := m.vols.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasPrefix(name, scratchPrefix) {
			m.log.Info("Deleting scratch volume", "volume", name)
			if err := m.vols.DeleteVolume(ctx, name); err != nil {
				m.log.Warn("Delete scratch volume", "volume", name, "err", err)
			}
		}
	}
	return nil
}
