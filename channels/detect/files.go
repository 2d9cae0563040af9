package detect

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir is Files over a directory on this machine: an example app, a checkout.
type Dir string

// ReadFile returns the content of path under the directory.
func (d Dir) ReadFile(path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), filepath.FromSlash(path)))
}

// Exists reports whether path names a file or a directory under it.
func (d Dir) Exists(path string) bool {
	_, err := os.Lstat(filepath.Join(string(d), filepath.FromSlash(path)))
	return err == nil
}

// MapFiles is Files held in memory, path -> content; a directory exists when
// a file is under it. For tests.
type MapFiles map[string]string

// ReadFile returns the content of path.
func (m MapFiles) ReadFile(path string) ([]byte, error) {
	s, ok := m[path]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

// Exists reports whether path is a file or a directory of files.
func (m MapFiles) Exists(path string) bool {
	path = strings.Trim(path, "/")
	if _, ok := m[path]; ok {
		return true
	}
	for p := range m {
		if strings.HasPrefix(p, path+"/") {
			return true
		}
	}
	return false
}

var _, _ Files = Dir(""), MapFiles(nil)
