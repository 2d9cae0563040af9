package sysarchive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// Verify checks an archive as a restore would: its SHA-256 must be sum, and
// restored into a scratch directory under scratchParent its store must pass
// integrity_check and its bundles must make repositories that pass git fsck.
func Verify(ctx context.Context, archive, sum, scratchParent string) (Contents, error) {
	if err := checkSum(archive, sum); err != nil {
		return Contents{}, err
	}
	scratch, err := os.MkdirTemp(scratchParent, ".verify-system-")
	if err != nil {
		return Contents{}, err
	}
	defer os.RemoveAll(scratch)
	m, err := unpack(archive, scratch)
	if err != nil {
		return Contents{}, err
	}
	return check(ctx, scratch, m)
}

// checkSum compares the file's SHA-256 with sum.
func checkSum(file, sum string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("%s %w recorded when it was written (%.16s…, now %.16s…)", filepath.Base(file), ErrChecksum, sum, got)
	}
	return nil
}

// unpack extracts the archive into dir (files 0600, directories 0700) and
// checks every member against the manifest's SHA-256.
func unpack(archive, dir string) (manifest, error) {
	f, err := os.Open(archive)
	if err != nil {
		return manifest{}, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return manifest{}, fmt.Errorf("%w: not a gzipped tar: %v", ErrDamaged, err)
	}
	sums, m, err := extract(tar.NewReader(zr), dir)
	if err != nil {
		return manifest{}, err
	}
	if m.Format != format {
		return manifest{}, fmt.Errorf("%w: no manifest of format %d in it", ErrDamaged, format)
	}
	for member, want := range m.Files {
		if sums[member] != want {
			return manifest{}, fmt.Errorf("%w: %s is missing or does not match its SHA-256", ErrDamaged, member)
		}
	}
	if len(sums) != len(m.Files) {
		return manifest{}, fmt.Errorf("%w: it holds files its manifest does not list", ErrDamaged)
	}
	return m, nil
}

// extract writes every member under dir and returns their SHA-256 and the manifest.
func extract(tr *tar.Reader, dir string) (map[string]string, manifest, error) {
	sums := map[string]string{}
	var m manifest
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return sums, m, nil
		}
		if err != nil {
			return nil, m, fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		if hdr.Name == manifestName {
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
				return nil, m, fmt.Errorf("%w: manifest: %v", ErrDamaged, err)
			}
			continue
		}
		if !safeMember(hdr) {
			return nil, m, fmt.Errorf("%w: member %q is not a plain relative file", ErrDamaged, hdr.Name)
		}
		sum, err := writeMember(tr, filepath.Join(dir, filepath.FromSlash(hdr.Name)))
		if err != nil {
			return nil, m, fmt.Errorf("extract %s: %w", hdr.Name, err)
		}
		sums[hdr.Name] = sum
	}
}

// safeMember: a regular file below the directory, never above it, since an
// archive handed to restore-system may come from anywhere.
func safeMember(hdr *tar.Header) bool {
	clean := path.Clean(hdr.Name)
	return hdr.Typeflag == tar.TypeReg && clean == hdr.Name && !path.IsAbs(clean) && clean != ".." && !strings.HasPrefix(clean, "../")
}

func writeMember(r io.Reader, file string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(h.Sum(nil)), err
}

// check opens the unpacked store and turns each bundle into the repository
// it came from (dir/REPOS/APP.git), checked with git fsck: what a restore
// moves into place.
func check(ctx context.Context, dir string, m manifest) (Contents, error) {
	c := Contents{Created: m.Created, Keys: m.Keys, Repos: sortedKeys(m.Repos)}
	version, err := store.CheckDatabase(ctx, filepath.Join(dir, m.Store))
	if err != nil {
		return c, fmt.Errorf("%w: the store copy: %v", ErrDamaged, err)
	}
	c.SchemaVersion = version
	for _, app := range c.Repos {
		if err := unbundle(ctx, dir, m, app); err != nil {
			return c, fmt.Errorf("%w: the repository of %s: %v", ErrDamaged, app, err)
		}
	}
	return c, nil
}

// unbundle makes the bare repository of app, as the daemon makes one (main
// as default branch), fetches every ref of its bundle into it and checks it.
// An app with no bundle had no refs yet: its repository stays empty.
func unbundle(ctx context.Context, dir string, m manifest, app string) error {
	if app == "" || app != filepath.Base(app) || app == "." || app == ".." {
		return fmt.Errorf("%q is not an app name", app)
	}
	target := filepath.Join(dir, m.ReposDir, app+".git")
	if err := repo.Init(target); err != nil {
		return err
	}
	member := m.Repos[app]
	if member == "" {
		return nil
	}
	bundle := filepath.Join(dir, filepath.FromSlash(member))
	if _, err := git(ctx, target, "bundle", "verify", "--quiet", bundle); err != nil {
		return err
	}
	if _, err := git(ctx, target, "fetch", "--quiet", bundle, "refs/*:refs/*"); err != nil {
		return err
	}
	if _, err := git(ctx, target, "fsck", "--full", "--no-dangling", "--no-progress"); err != nil {
		return err
	}
	return os.Remove(bundle)
}
