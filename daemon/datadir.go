package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ownDataDir makes slipway's files readable by it alone: the data directory
// 0700 and what it holds 0600 (0700 for directories and programs). The store,
// its secret key, the SSH host key, the repositories and the backups are all
// in there, and on a shared host no other local user may read them.
// Directories that existed before are tightened; files slipway makes from now
// on get those modes from the umask.
func ownDataDir(dirs ...string) error {
	syscall.Umask(0o077)
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := tighten(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("%s: %w", dir, err)
			}
		}
	}
	return nil
}

// tighten takes group and other permissions off path. A directory's own
// files are reached through it, so it is not walked.
func tighten(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode()&fs.ModeSymlink != 0) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Chmod(path, fi.Mode().Perm()&0o700)
}
