package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestCopyToReadsTheCopyBack(t *testing.T) {
	dir := t.TempDir()
	m := &Manager{cfg: Config{Dir: dir}}
	src := filepath.Join(dir, "databases", "db", "db-1.dump")
	os.MkdirAll(filepath.Dir(src), 0o700)
	os.WriteFile(src, []byte("the dump\n"), 0o600)
	os.WriteFile(src+DatabaseManifestSuffix, []byte("{}\n"), 0o600)
	_, sum, _ := fileSHA256(src)
	b := store.Backup{ID: 1, File: "databases/db/db-1.dump", SHA256: sum}
	to := t.TempDir()
	if got, err := m.CopyTo(b, to); err != nil || got != sum {
		t.Fatalf("copy: %s %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(to, b.File+DatabaseManifestSuffix)); err != nil {
		t.Errorf("the manifest was not copied: %v", err)
	}
	// A file that is not what was recorded is refused, and no copy is left.
	os.WriteFile(src, []byte("the dump, changed\n"), 0o600)
	if _, err := m.CopyTo(b, t.TempDir()); err == nil || !strings.Contains(err.Error(), "reads back as SHA-256") {
		t.Errorf("a changed file copied: %v", err)
	}
}
