package certs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// june is "now" for the Dir tests, so expiry does not depend on the clock.
var june = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func testDir(t *testing.T) *Dir {
	t.Helper()
	d, err := OpenDir(filepath.Join(t.TempDir(), "certs"))
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return june }
	return d
}

func TestSaveWritesAPairTheProxyCanRead(t *testing.T) {
	t.Parallel()
	d := testDir(t)
	chain, key := testPair(t, []string{"a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))

	if err := d.Save("A.Example", chain, key); err != nil {
		t.Fatalf("Save: %v", err)
	}
	for _, f := range []string{"a.example.crt", "a.example.key"} {
		fi, err := os.Stat(filepath.Join(d.Path(), f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(d.Path()); fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory is %v, want 0700", fi.Mode().Perm())
	}
	info, err := d.Load("a.example")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if info.Name != "a.example" || !slices.Equal(info.Domains, []string{"a.example"}) || info.Issuer != "Test CA" {
		t.Errorf("Load = %+v", info)
	}
	if !info.NotAfter.Equal(june.AddDate(0, 2, 0)) {
		t.Errorf("NotAfter = %v", info.NotAfter)
	}
	entries, _ := os.ReadDir(d.Path())
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Errorf("a temporary file was left: %s", e.Name())
		}
	}
}

func TestSaveWritesAWildcardAsUnderscore(t *testing.T) {
	t.Parallel()
	d := testDir(t)
	chain, key := testPair(t, []string{"*.a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	if err := d.Save("*.a.example", chain, key); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "_.a.example.crt")); err != nil {
		t.Fatal(err)
	}
	// A wildcard covers one label, not the wildcard's own parent.
	if err := d.Save("b.a.example", chain, key); err != nil {
		t.Errorf("the wildcard does not cover b.a.example: %v", err)
	}
	if err := d.Save("a.example", chain, key); err == nil {
		t.Error("the wildcard was accepted for a.example")
	}
	infos, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "*.a.example" || infos[1].Name != "b.a.example" {
		t.Errorf("List = %+v", infos)
	}
}

func TestSaveRefuses(t *testing.T) {
	t.Parallel()
	good, goodKey := testPair(t, []string{"a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	_, otherKey := testPair(t, []string{"a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	expired, expiredKey := testPair(t, []string{"a.example"}, time.Date(2025, 10, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	leaf, _, _ := strings.Cut(string(good), "-----END CERTIFICATE-----\n")
	ca := strings.TrimPrefix(string(good), leaf+"-----END CERTIFICATE-----\n")
	reversed := []byte(ca + leaf + "-----END CERTIFICATE-----\n")

	for _, tc := range []struct {
		name       string
		domain     string
		chain, key []byte
		want       string
	}{
		{"a key of another certificate", "a.example", good, otherKey, "the key does not match the certificate"},
		{"another name", "b.example", good, goodKey, "the certificate is for a.example, not b.example"},
		{"an expired certificate", "a.example", expired, expiredKey, "the certificate expired on 2026-01-02"},
		{"the chain upside down", "a.example", reversed, goodKey, "the key does not match the certificate"},
		{"no certificate", "a.example", []byte("hello"), goodKey, "no PEM certificate found"},
		{"no key", "a.example", good, []byte("hello"), "no PEM private key found"},
		{"the key in the chain", "a.example", append(goodKey, good...), goodKey, "the certificate file holds a private key: give the key separately"},
		{"a path for a name", "../a.example", good, goodKey, `"../a.example" is not a domain name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDir(t)
			err := d.Save(tc.domain, tc.chain, tc.key)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Save = %v, want %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v is not ErrInvalid", err)
			}
			if entries, _ := os.ReadDir(d.Path()); len(entries) != 0 {
				t.Errorf("a refused pair left files: %v", entries)
			}
		})
	}
}

func TestSaveRefusesALeafThatIsNotFirst(t *testing.T) {
	t.Parallel()
	d := testDir(t)
	chainA, keyA := testPair(t, []string{"a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	chainB, _ := testPair(t, []string{"b.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	leafA, _, _ := strings.Cut(string(chainA), "-----END CERTIFICATE-----\n")
	_, caB, _ := strings.Cut(string(chainB), "-----END CERTIFICATE-----\n")
	mixed := []byte(leafA + "-----END CERTIFICATE-----\n" + caB)
	err := d.Save("a.example", mixed, keyA)
	if err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("Save = %v, want the chain refused", err)
	}
}

func TestListNeverShowsKeys(t *testing.T) {
	t.Parallel()
	d := testDir(t)
	var keys [][]byte
	for _, n := range []string{"b.example", "a.example"} {
		chain, key := testPair(t, []string{n}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
		if err := d.Save(n, chain, key); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	// Junk beside the pairs is not a certificate.
	os.WriteFile(filepath.Join(d.Path(), "notes.txt"), []byte("hi"), 0o600)
	os.WriteFile(filepath.Join(d.Path(), "c.example.crt.part"), []byte("half"), 0o600)

	infos, err := d.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(infos) != 2 || infos[0].Name != "a.example" || infos[1].Name != "b.example" {
		t.Fatalf("List = %+v", infos)
	}
	b, _ := json.Marshal(infos)
	text := string(b) + fmt.Sprintf("%+v %#v", infos, infos)
	for _, key := range keys {
		body := strings.Split(string(key), "\n")[1] // a line of the key's base64
		if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, body) {
			t.Fatalf("List shows key material: %s", text)
		}
	}
}

func TestListReportsABrokenPairBesideTheGoodOnes(t *testing.T) {
	t.Parallel()
	d := testDir(t)
	chain, key := testPair(t, []string{"a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	if err := d.Save("a.example", chain, key); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.Path(), "broken.example.crt"), []byte("not pem"), 0o600)
	infos, err := d.List()
	if len(infos) != 1 || infos[0].Name != "a.example" {
		t.Errorf("List = %+v", infos)
	}
	if err == nil || !strings.Contains(err.Error(), "broken.example.crt") {
		t.Errorf("List error = %v, want one naming broken.example.crt", err)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	d := testDir(t)
	chain, key := testPair(t, []string{"a.example"}, june.AddDate(0, -1, 0), june.AddDate(0, 2, 0))
	if err := d.Save("a.example", chain, key); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("a.example"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if entries, _ := os.ReadDir(d.Path()); len(entries) != 0 {
		t.Errorf("Remove left %v", entries)
	}
	if err := d.Remove("a.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove again = %v, want ErrNotFound", err)
	}
	if _, err := d.Load("a.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load = %v, want ErrNotFound", err)
	}
}
