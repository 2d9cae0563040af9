package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// certFile is what a certificate directory holds: NAME.crt and NAME.key,
// NAME without a path.
var certFile = regexp.MustCompile(`^[A-Za-z0-9_*.-]{1,255}\.(crt|key)$`)

// maxCertFiles bounds a copy of a certificate directory.
const maxCertFiles = 4096

// readCertDir reads the certificate pairs of dir.
func readCertDir(dir string) (map[string][]byte, error) {
	if dir == "" {
		return nil, errors.New("no certificate directory to copy")
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() && certFile.MatchString(e.Name()) && !strings.HasPrefix(e.Name(), ".") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			files[e.Name()] = b
		}
	}
	return files, nil
}

// PutCerts makes the table's certificate directory hold files (another
// member's whole directory: pairs not in it are removed) and loads it.
func (t *Table) PutCerts(ctx context.Context, files map[string][]byte) (int, error) {
	t.mu.Lock()
	dir := t.certDir
	t.mu.Unlock()
	if dir == "" {
		return 0, errors.New("this proxy has no certificate directory")
	}
	if len(files) > maxCertFiles {
		return 0, fmt.Errorf("%d certificate files: at most %d", len(files), maxCertFiles)
	}
	for name := range files {
		if !certFile.MatchString(name) || strings.HasPrefix(name, ".") {
			return 0, fmt.Errorf("%q is not a certificate file name", name)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	for name, b := range files {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return 0, err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return 0, err
		}
	}
	have, err := readCertDir(dir)
	if err != nil {
		return 0, err
	}
	for name := range have {
		if _, keep := files[name]; !keep {
			os.Remove(filepath.Join(dir, name))
		}
	}
	return t.LoadCerts(ctx)
}
