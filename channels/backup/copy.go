package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/slipway-dev/slipway/channels/backup/atomicfile"
	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/store"
)

// CopyTo copies backup b's file, and what lies beside it (a system
// archive's .sha256, a dump's manifest), under dir at the same relative
// path, each whole or not at all, then reads the copy back: it returns the
// copy's SHA-256, which must be the one recorded, or removes the copy.
func (m *Manager) CopyTo(b store.Backup, dir string) (string, error) {
	src := m.Path(b)
	if src == "" {
		return "", fmt.Errorf("backup %d has no file to copy", b.ID)
	}
	dst := filepath.Join(dir, b.File)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	for _, suffix := range []string{sysarchive.SidecarSuffix, DatabaseManifestSuffix} {
		if err := copyFile(src+suffix, dst+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	if err := copyFile(src, dst); err != nil {
		return "", err
	}
	_, sum, err := fileSHA256(dst)
	if err != nil {
		return "", err
	}
	if sum != b.SHA256 {
		os.Remove(dst)
		return sum, fmt.Errorf("the copy of backup %d at %s reads back as SHA-256 %s, not %s: removed", b.ID, dst, sum, b.SHA256)
	}
	return sum, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
