// Package atomicfile writes a file whole or not at all: through a temporary
// file beside it, synced, then renamed into place. Backups and archives are
// written this way, so a crash never leaves half of one under its name.
package atomicfile

import (
	"io"
	"os"
)

// Write writes path with perm from what fill writes. When fill or the sync
// fails, path is left as it was and the temporary file is removed.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
