package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/store"
)

// Verify checks a backup again: its file must still match its recorded
// SHA-256 and restore to the same files. It is the work of a verify
// operation; a backup that fails is recorded so.
func (m *Manager) Verify(ctx context.Context, l Log, b store.Backup) error {
	l.Logf("-----> Verifying backup %d of %s (taken %s)", b.ID, describe(b), b.CreatedAt.Format(time.RFC3339))
	if err := m.verify(ctx, b); err != nil {
		return m.fail(b, fmt.Errorf("verification failed: %w", err))
	}
	if err := m.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
		return err
	}
	l.Logf("       Verified: the file matches its SHA-256 and a test restore matches its contents")
	return nil
}

func (m *Manager) verify(ctx context.Context, b store.Backup) error {
	if b.File == "" {
		return errors.New("it has no file (its export failed)")
	}
	path := filepath.Join(m.cfg.Dir, b.File)
	if err := checkFileSum(path, b); err != nil {
		return err
	}
	switch b.Kind {
	case store.BackupKindStore:
		_, err := m.checkStoreBackup(ctx, path)
		return err
	case store.BackupKindSystem:
		_, err := sysarchive.Verify(ctx, path, b.SHA256, filepath.Dir(path))
		return m.cancelled(ctx, "test restore", err)
	}
	if m.vols == nil {
		return ErrNoVolumeSupport
	}
	info, err := m.readExport(path)
	if err != nil {
		return fmt.Errorf("the file does not read: %w", err)
	}
	return m.cancelled(ctx, "test restore", m.testRestore(ctx, b, path, info.files))
}

// checkFileSum checks a backup's file against its recorded size and SHA-256.
func checkFileSum(path string, b store.Backup) error {
	size, sum, err := fileSHA256(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("its file %s is missing", b.File)
	}
	if err != nil {
		return err
	}
	if sum != b.SHA256 || size != b.Size {
		return fmt.Errorf("its file no longer matches the SHA-256 recorded when it was taken (the file was changed or damaged)")
	}
	return nil
}

// export is what one reading of a volume backup's file yields: the size and
// SHA-256 of the file, and the SHA-256 of every file in the volume.
type export struct {
	size   int64
	sha256 string
	files  map[string]string // path in the volume -> SHA-256
}

// readExport reads a volume backup once. The runtime reads the tarball's
// layout; a damaged file fails there.
func (m *Manager) readExport(path string) (export, error) {
	f, err := os.Open(path)
	if err != nil {
		return export{}, err
	}
	defer f.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(f, h)}
	files, err := m.vols.ReadExport(counted)
	if err != nil {
		return export{}, err
	}
	// Whatever follows what the runtime read still counts.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return export{}, err
	}
	return export{size: counted.n, sha256: hex.EncodeToString(h.Sum(nil)), files: files}, nil
}

// testRestore imports the tarball into a scratch volume and compares the
// checksums of its files with those read from the tarball.
func (m *Manager) testRestore(ctx context.Context, b store.Backup, path string, want map[string]string) error {
	if m.vols == nil {
		return ErrNoVolumeSupport
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	scratch := fmt.Sprintf("%s%d_%s", scratchPrefix, b.ID, randomSuffix())
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.vols.DeleteVolume(dctx, scratch); err != nil {
			m.log.Warn("Could not delete scratch volume", "volume", scratch, "err", err)
		}
	}()
	if err := m.vols.ImportVolume(ctx, scratch, f); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	got, err := m.vols.VolumeChecksums(ctx, scratch, m.cfg.ScratchImage)
	if err != nil {
		return fmt.Errorf("checksum the restored copy: %w", err)
	}
	return compareFiles(want, got)
}
