package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// filesHold reports which of the store's files contain needle.
func filesHold(t *testing.T, path, needle string) []string {
	t.Helper()
	var found []string
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(needle)) {
			found = append(found, filepath.Base(p))
		}
	}
	return found
}

func installationForTest(t *testing.T, s *Store) Installation {
	t.Helper()
	ctx := context.Background()
	s.CreateApp(ctx, "shop")
	s.CreateEnvironment(ctx, "prod")
	inst, err := s.CreateInstallation(ctx, "shop", "prod", "shop.prod.test", ChannelBranch, "main")
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestSecretsAreSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slipway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inst := installationForTest(t, s)
	const secret, plain = "hunter2-very-secret-value", "visible-plain-value"
	for i := 0; i < 3; i++ { // written again: the WAL holds several versions
		if err := s.UpdateConfig(ctx, inst.ID, []ConfigVar{{Key: "TOKEN", Value: secret, Secret: true}, {Key: "MODE", Value: plain}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	vars, err := s.Config(ctx, inst.ID)
	if err != nil || len(vars) != 2 || vars[1].Key != "TOKEN" || vars[1].Value != secret {
		t.Fatalf("config read back: %+v %v", vars, err)
	}
	if found := filesHold(t, path, secret); len(found) > 0 {
		t.Fatalf("the secret is in clear in %v", found)
	}
	if found := filesHold(t, path, plain); len(found) == 0 {
		t.Fatalf("the plain value is nowhere: the check reads the wrong files")
	}
	s.Close()
	for _, name := range []string{"slipway.db", "slipway.db-wal", KeyFileName} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", name, fi.Mode().Perm())
		}
	}
	// The database without its key does not open, and makes no new key.
	os.Rename(filepath.Join(dir, KeyFileName), filepath.Join(dir, "elsewhere"))
	if _, err := Open(path); !errors.Is(err, ErrKeyMissing) {
		t.Fatalf("open without the key: %v", err)
	}
	os.Rename(filepath.Join(dir, "elsewhere"), filepath.Join(dir, KeyFileName))
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if vars, err := s.Config(ctx, inst.ID); err != nil || vars[1].Value != secret {
		t.Fatalf("after reopening: %+v %v", vars, err)
	}
}

func TestSecretsStoredInClearBeforeAreSealedOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	inst := installationForTest(t, s)
	const secret = "left-in-clear-by-an-old-version"
	// What a slipway before sealing wrote.
	if _, err := s.db.Exec(`INSERT INTO config_vars (installation_id, key, value, secret, updated_at) VALUES (?, 'OLD', ?, 1, '')`, inst.ID, secret); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if found := filesHold(t, path, secret); len(found) == 0 {
		t.Fatal("the clear secret was not written: the test proves nothing")
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if found := filesHold(t, path, secret); len(found) > 0 {
		t.Fatalf("still in clear in %v after opening", found)
	}
	vars, err := s.Config(context.Background(), inst.ID)
	if err != nil || len(vars) != 1 || vars[0].Value != secret {
		t.Fatalf("config: %+v %v", vars, err)
	}
}

func TestSealedValueMovedToAnotherVariableDoesNotOpen(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	inst := installationForTest(t, s)
	s.UpdateConfig(ctx, inst.ID, []ConfigVar{{Key: "A", Value: "the-value-of-a", Secret: true}}, nil)
	s.db.Exec(`INSERT INTO config_vars (installation_id, key, value, secret, updated_at) SELECT installation_id, 'B', value, 1, '' FROM config_vars WHERE key = 'A'`)
	if _, err := s.Config(ctx, inst.ID); err == nil || !strings.Contains(err.Error(), "secret B") {
		t.Fatalf("a sealed value copied to B opened: %v", err)
	}
}
