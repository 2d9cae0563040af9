package sysarchive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/backup/atomicfile"
)

// CopyStore writes a consistent copy of the live store to path.
type CopyStore func(ctx context.Context, path string) error

// Write archives the data directory dataDir to path, through a temporary file
// renamed into place once complete and synced, so the archive is whole or
// absent. The store copy and the bundles are made in a scratch directory
// beside path first. Pushes go on meanwhile: a bundle holds each ref as it
// was when git read it, with every object it needs.
func Write(ctx context.Context, path, dataDir string, l Layout, copyStore CopyStore) (Summary, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return Summary{}, err
	}
	scratch, err := os.MkdirTemp(filepath.Dir(path), ".system-")
	if err != nil {
		return Summary{}, err
	}
	defer os.RemoveAll(scratch)
	m := manifest{Format: format, Created: time.Now().UTC(), Store: l.Store, ReposDir: l.Repos, Repos: map[string]string{}, Files: map[string]string{}}
	sources := map[string]string{} // member -> file to archive
	if err := copyStore(ctx, filepath.Join(scratch, "store.db")); err != nil {
		return Summary{}, fmt.Errorf("copy the store: %w", err)
	}
	sources[l.Store] = filepath.Join(scratch, "store.db")
	keys, err := keyFiles(dataDir, l.Keys)
	if err != nil {
		return Summary{}, err
	}
	for _, k := range keys {
		m.Keys = append(m.Keys, k)
		sources[k] = filepath.Join(dataDir, k)
	}
	if err := bundleRepos(ctx, filepath.Join(dataDir, l.Repos), scratch, l.Repos, &m, sources); err != nil {
		return Summary{}, err
	}
	size, sum, err := writeArchive(path, m, sources)
	if err != nil {
		return Summary{}, err
	}
	return Summary{Size: size, SHA256: sum, Keys: m.Keys, Repos: sortedKeys(m.Repos)}, nil
}

// keyFiles returns the key files of layout that are there: a file as it is
// (the host key is made at the first start of the SSH server, so it may be
// missing), and for an entry ending in "/" every file under that directory
// (the certificates and the ACME account key).
func keyFiles(dataDir string, entries []string) ([]string, error) {
	var out []string
	for _, k := range entries {
		if !strings.HasSuffix(k, "/") {
			if _, err := os.Stat(filepath.Join(dataDir, k)); err == nil {
				out = append(out, k)
			}
			continue
		}
		err := filepath.WalkDir(filepath.Join(dataDir, k), func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(dataDir, path)
			out = append(out, rel)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bundleRepos makes a bundle of every repository under reposDir in scratch.
func bundleRepos(ctx context.Context, reposDir, scratch, reposMember string, m *manifest, sources map[string]string) error {
	entries, err := os.ReadDir(reposDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasSuffix(e.Name(), ".git") {
			continue
		}
		app := strings.TrimSuffix(e.Name(), ".git")
		bundle := filepath.Join(scratch, e.Name()+bundleSuffix)
		made, err := makeBundle(ctx, filepath.Join(reposDir, e.Name()), bundle)
		if err != nil {
			return fmt.Errorf("bundle the repository of %s: %w", app, err)
		}
		m.Repos[app] = ""
		if made {
			member := reposMember + "/" + e.Name() + bundleSuffix
			m.Repos[app] = member
			sources[member] = bundle
		}
	}
	return nil
}

// makeBundle writes a bundle of every ref of repo; a repository with no refs
// (an app never pushed to) has none to write, and git refuses an empty one.
func makeBundle(ctx context.Context, repo, bundle string) (bool, error) {
	refs, err := git(ctx, repo, "for-each-ref", "--format=%(refname)")
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(refs) == "" {
		return false, nil
	}
	_, err = git(ctx, repo, "bundle", "create", "--quiet", bundle, "--all")
	return err == nil, err
}

// writeArchive writes the members in sources and then the manifest, and
// returns the archive's size and SHA-256.
func writeArchive(path string, m manifest, sources map[string]string) (int64, string, error) {
	h := sha256.New()
	var counter *countingWriter
	err := atomicfile.Write(path, 0o600, func(f io.Writer) error {
		counter = &countingWriter{w: io.MultiWriter(f, h)}
		return writeMembers(counter, m, sources)
	})
	if err != nil {
		return 0, "", err
	}
	return counter.n, hex.EncodeToString(h.Sum(nil)), nil
}

func writeMembers(w io.Writer, m manifest, sources map[string]string) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, member := range sortedKeys(sources) {
		sum, err := addFile(tw, member, sources[member])
		if err != nil {
			return fmt.Errorf("archive %s: %w", member, err)
		}
		m.Files[member] = sum
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(body)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(body); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// addFile adds one file as member and returns its SHA-256.
func addFile(tw *tar.Writer, member, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if err := tw.WriteHeader(&tar.Header{Name: member, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tw, h), f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
