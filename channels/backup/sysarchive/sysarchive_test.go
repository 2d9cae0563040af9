package sysarchive

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

var layout = Layout{Store: "slipway.db", Repos: "repos", Keys: []string{store.KeyFileName, "ssh_host_ed25519_key", "certs/"}}

// keyFilesOf are the key files dataDir writes, the certs/ directory's too.
var keyFilesOf = []string{store.KeyFileName, "ssh_host_ed25519_key", "certs/a.example.crt", "certs/a.example.key", "certs/acme/account.key"}

// dataDir makes a data directory as a daemon leaves it: a store with a
// sealed secret, its key, a host key, a repository with two commits and one
// never pushed to.
func dataDir(t *testing.T) (string, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, layout.Store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	os.MkdirAll(filepath.Join(dir, "certs", "acme"), 0o700)
	for _, f := range keyFilesOf[1:] {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bare := filepath.Join(dir, "repos", "shop.git")
	if err := repo.Init(bare); err != nil {
		t.Fatal(err)
	}
	if err := repo.Init(filepath.Join(dir, "repos", "empty.git")); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	gitIn(t, work, "init", "-q", "-b", "main")
	for _, msg := range []string{"one", "two"} {
		os.WriteFile(filepath.Join(work, "f"), []byte(msg), 0o644)
		gitIn(t, work, "add", "f")
		gitIn(t, work, "commit", "-q", "-m", msg)
	}
	gitIn(t, work, "tag", "v1", "HEAD~1")
	gitIn(t, work, "push", "-q", bare, "main", "v1")
	return dir, st
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@x.invalid", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@x.invalid", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func writeArchiveOf(t *testing.T, dir string, st *store.Store) (string, Summary) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "system.tar.gz")
	sum, err := Write(context.Background(), path, dir, layout, st.BackupTo)
	if err != nil {
		t.Fatal(err)
	}
	return path, sum
}

func TestWriteVerifyRestore(t *testing.T) {
	src, st := dataDir(t)
	archive, sum := writeArchiveOf(t, src, st)
	if strings.Join(sum.Repos, ",") != "empty,shop" || len(sum.Keys) != len(keyFilesOf) {
		t.Fatalf("summary: %+v", sum)
	}
	c, err := Verify(context.Background(), archive, sum.SHA256, t.TempDir())
	if err != nil || c.SchemaVersion == 0 {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if err := WriteSidecar(archive, sum.SHA256); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "data")
	r, err := Restore(context.Background(), archive, dst, layout)
	if err != nil {
		t.Fatal(err)
	}
	if !r.SumChecked || strings.Join(r.Repos, ",") != "empty,shop" {
		t.Fatalf("report: %+v", r)
	}
	for _, k := range keyFilesOf {
		want, _ := os.ReadFile(filepath.Join(src, k))
		got, err := os.ReadFile(filepath.Join(dst, k))
		if err != nil || string(got) != string(want) {
			t.Errorf("key %s: %q %v", k, got, err)
		}
		if fi, _ := os.Stat(filepath.Join(dst, k)); fi.Mode().Perm() != 0o600 {
			t.Errorf("key %s mode %v", k, fi.Mode())
		}
	}
	refs := func(dir string) string { return gitIn(t, dir, "for-each-ref", "--format=%(refname) %(objectname)") }
	if got, want := refs(filepath.Join(dst, "repos", "shop.git")), refs(filepath.Join(src, "repos", "shop.git")); got != want || want == "" {
		t.Errorf("refs: got\n%s want\n%s", got, want)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "repos", "shop.git")); fi.Mode().Perm() != 0o700 {
		t.Errorf("repository mode %v", fi.Mode())
	}
	if _, err := repo.Open(filepath.Join(dst, "repos", "empty.git")); err != nil {
		t.Errorf("empty repository: %v", err)
	}
	// The restored store opens with the restored key.
	restored, err := store.Open(filepath.Join(dst, layout.Store))
	if err != nil {
		t.Fatal(err)
	}
	restored.Close()

	if _, err := Restore(context.Background(), archive, dst, layout); !errors.Is(err, ErrHasStore) {
		t.Fatalf("restore into a data dir with a store: %v", err)
	}
}

func TestDamagedArchiveIsRefused(t *testing.T) {
	src, st := dataDir(t)
	archive, sum := writeArchiveOf(t, src, st)
	data, _ := os.ReadFile(archive)
	data[len(data)/2] ^= 0xff
	os.WriteFile(archive, data, 0o600)
	if _, err := Verify(context.Background(), archive, sum.SHA256, t.TempDir()); !errors.Is(err, ErrChecksum) {
		t.Fatalf("verify of a changed archive: %v", err)
	}
	WriteSidecar(archive, sum.SHA256)
	dst := filepath.Join(t.TempDir(), "data")
	_, err := Restore(context.Background(), archive, dst, layout)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "nothing was restored") {
		t.Fatalf("restore of a changed archive: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, layout.Store)); err == nil {
		t.Fatal("a store was restored from a damaged archive")
	}
	// Without a sidecar the manifest's checksums still catch it.
	os.Remove(archive + SidecarSuffix)
	if _, err := Restore(context.Background(), archive, dst, layout); err == nil {
		t.Fatal("restore of a damaged archive without a sidecar succeeded")
	}
}

// TestPushesDuringWrite: a repository pushed to while the archive is written
// comes back as one of the states it went through, and the push is not held up.
func TestPushesDuringWrite(t *testing.T) {
	src, st := dataDir(t)
	bare := filepath.Join(src, "repos", "shop.git")
	work := t.TempDir()
	gitIn(t, work, "clone", "-q", bare, ".")
	heads := map[string]bool{strings.TrimSpace(gitIn(t, bare, "rev-parse", "main")): true}
	done := make(chan struct{})
	pushed := make(chan []string)
	go func() {
		var list []string
		for i := 0; ; i++ {
			select {
			case <-done:
				pushed <- list
				return
			default:
			}
			os.WriteFile(filepath.Join(work, "f"), []byte(strings.Repeat("x", i)), 0o644)
			// Not gitIn: t.Fatal belongs to the test's goroutine.
			out, err := exec.Command("sh", "-c", "cd "+work+" && git -c user.name=T -c user.email=t@x.invalid commit -qam c && git push -q origin main && git rev-parse HEAD").Output()
			if err == nil {
				list = append(list, strings.TrimSpace(string(out)))
			}
		}
	}()
	archive, sum := writeArchiveOf(t, src, st)
	close(done)
	for _, h := range <-pushed {
		heads[h] = true
	}
	dst := filepath.Join(t.TempDir(), "data")
	WriteSidecar(archive, sum.SHA256)
	if _, err := Restore(context.Background(), archive, dst, layout); err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(gitIn(t, filepath.Join(dst, "repos", "shop.git"), "rev-parse", "main"))
	if !heads[got] {
		t.Fatalf("restored main %s is none of the %d pushed states", got, len(heads))
	}
}
