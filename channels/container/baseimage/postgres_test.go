package baseimage

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestPostgresRecipeHasItsOwnKeyAndCacheName(t *testing.T) {
	pg := NewPostgresRecipe(DefaultMirror)
	std := NewDebianRecipe(DefaultMirror, nil)
	if pg.Key() == std.Key() {
		t.Fatalf("postgres and debian recipes share key %s", pg.Key())
	}
	if got := filepath.Base(pg.CachePath("/c")); !strings.HasPrefix(got, "postgres-bookworm-") {
		t.Errorf("postgres cache file %s", got)
	}
	if got := filepath.Base(std.CachePath("/c")); !strings.HasPrefix(got, "debian-bookworm-") {
		t.Errorf("debian cache file %s", got)
	}
	if !strings.Contains(pg.description(), "postgres") || !strings.Contains(strings.Join(pg.mmdebstrapArgs("/r"), " "), "--include=postgresql-15") {
		t.Errorf("description %q, args %v", pg.description(), pg.mmdebstrapArgs("/r"))
	}
}

// The standard image's key is what it was before recipes had names, so a
// host's cached slipway/debian is still used. (It changes with
// DebianPackages: postgresql-client and python3-psycopg2 made it 3ba43f….)
func TestDebianKeyUnchangedByNamedRecipes(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the recorded key is amd64's")
	}
	if got := NewDebianRecipe(DefaultMirror, nil).Key(); got != "3ba43fe5020587043f0b607c" {
		t.Errorf("standard Debian key %s, was 3ba43fe5020587043f0b607c", got)
	}
}

func TestRootfsFixesRemovesTheRecipesPaths(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "var/lib/postgresql/15/main")
	outside := filepath.Join(filepath.Dir(dir), "outside")
	for _, d := range []string{main, filepath.Join(dir, "etc"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := rootfsFixes(dir, []string{"var/lib/postgresql/15/main", "../../outside"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(main); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", main, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "var/lib/postgresql/15")); err != nil {
		t.Errorf("its parent went too: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a path outside the rootfs was removed: %v", err)
	}
	if err := removeInside(dir, "/"); err == nil {
		t.Error("removing the whole rootfs was allowed")
	}
}
