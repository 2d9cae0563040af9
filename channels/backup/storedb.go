package backup

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// BackUpStore backs up the daemon's own store: the work of its backup
// operation.
func (m *Manager) BackUpStore(ctx context.Context, l Log, origin string) error {
	l.Logf("-----> %s backup of the slipway store to %s", origin, m.cfg.Dir)
	_, err := m.backupStore(ctx, l, origin)
	return err
}

func (m *Manager) backupStore(ctx context.Context, l Log, origin string) (store.Backup, error) {
	b, err := m.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindStore, Origin: origin, OperationID: l.ID()})
	if err != nil {
		return b, fmt.Errorf("record backup: %w", err)
	}
	rel := filepath.Join("store", fmt.Sprintf("slipway-%s-%d.db.gz", b.CreatedAt.Format("20060102T150405Z"), b.ID))
	path := filepath.Join(m.cfg.Dir, rel)
	step := time.Now()
	if err := m.copyStore(ctx, path); err != nil {
		return b, m.fail(b, err)
	}
	size, sum, err := fileSHA256(path)
	if err != nil {
		return b, m.fail(b, err)
	}
	if err := m.store.SetBackupFile(ctx, b.ID, rel, size, sum, 0); err != nil {
		return b, m.fail(b, err)
	}
	b.File, b.Size, b.SHA256 = rel, size, sum
	l.Logf("       Backup %d of the store: %s, sha256 %s, in %s (%s)", b.ID, humanSize(size), sum, rel, time.Since(step).Round(time.Millisecond))
	version, err := m.checkStoreBackup(ctx, path)
	if err != nil {
		return b, m.fail(b, fmt.Errorf("verification failed: %w", err))
	}
	if err := m.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
		return b, err
	}
	b.State = store.BackupVerified
	l.Logf("       Verified: the copy opens as a SQLite database, integrity_check ok, schema version %d", version)
	return b, nil
}

// copyStore writes a gzipped copy of the store to path.
func (m *Manager) copyStore(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	// VACUUM INTO writes a consistent copy while the daemon goes on writing;
	// a file copy of a live WAL database would not be one.
	raw := strings.TrimSuffix(path, ".gz") + ".part"
	os.Remove(raw)
	defer os.Remove(raw)
	if err := m.store.BackupTo(ctx, raw); err != nil {
		return err
	}
	err := writeFile(path, func(w io.Writer) error {
		in, err := os.Open(raw)
		if err != nil {
			return err
		}
		defer in.Close()
		zw := gzip.NewWriter(w)
		if _, err := io.Copy(zw, in); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return fmt.Errorf("compress the store copy: %w", err)
	}
	return nil
}

// checkStoreBackup unpacks a store backup to a scratch file and checks it
// opens, passes integrity_check and has this store's schema version.
func (m *Manager) checkStoreBackup(ctx context.Context, path string) (int, error) {
	scratch := strings.TrimSuffix(path, ".db.gz") + ".verify-" + randomSuffix() + ".db"
	defer os.Remove(scratch)
	err := writeFile(scratch, func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, zr)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("unpack: %w", err)
	}
	version, err := store.CheckDatabase(ctx, scratch)
	if err != nil {
		return 0, err
	}
	if want, err := m.store.SchemaVersion(ctx); err == nil && version != want {
		return version, fmt.Errorf("the copy has schema version %d, the store %d", version, want)
	}
	return version, nil
}
