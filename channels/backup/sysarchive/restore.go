package sysarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

// SidecarSuffix names the file beside an archive holding its SHA-256, in
// sha256sum's format, so `sha256sum -c` checks it too.
const SidecarSuffix = ".sha256"

// WriteSidecar writes ARCHIVE.sha256.
func WriteSidecar(archive, sum string) error {
	return os.WriteFile(archive+SidecarSuffix, []byte(sum+"  "+filepath.Base(archive)+"\n"), 0o600)
}

// Report is what a restore did.
type Report struct {
	DataDir         string
	Created         string // when the archive was written, UTC
	SumChecked      bool   // the archive matched its .sha256 sidecar
	SchemaVersion   int
	Keys            []string
	Repos           []string
	Installations   []string // APP/ENV@COMMIT of each, as the store has them
	ImagesForgotten int64    // rollback images of the old host the store listed
}

// Restore extracts archive into dataDir, which must not hold a store yet:
// the store, the keys (0600) and the repositories (0700), all checked as
// Verify checks them before anything is moved into place. The store forgets
// its rollback images, which are the old host's Incus's.
func Restore(ctx context.Context, archive, dataDir string, l Layout) (Report, error) {
	r := Report{DataDir: dataDir}
	if _, err := os.Stat(filepath.Join(dataDir, l.Store)); err == nil {
		return r, fmt.Errorf("%s %w (%s): restore into a new, empty data directory", dataDir, ErrHasStore, l.Store)
	}
	var err error
	if r.SumChecked, err = checkSidecar(archive); err != nil {
		return r, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return r, err
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return r, err
	}
	staging, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(staging)
	m, err := unpack(archive, staging)
	if err != nil {
		return r, err
	}
	c, err := check(ctx, staging, m)
	if err != nil {
		return r, err
	}
	r.Created, r.SchemaVersion, r.Keys, r.Repos = m.Created.Format("2006-01-02 15:04:05 UTC"), c.SchemaVersion, c.Keys, c.Repos
	if err := moveInto(staging, dataDir, m, l); err != nil {
		return r, err
	}
	return r, r.readStore(ctx, filepath.Join(dataDir, l.Store))
}

// checkSidecar checks the archive against ARCHIVE.sha256 when there is one.
func checkSidecar(archive string) (bool, error) {
	data, err := os.ReadFile(archive + SidecarSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(archive); err != nil {
			return false, fmt.Errorf("cannot read the archive: %w", err)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return false, fmt.Errorf("%s%s holds no SHA-256", archive, SidecarSuffix)
	}
	if err := checkSum(archive, fields[0]); err != nil {
		return false, fmt.Errorf("%w (in %s%s): it is damaged or not the archive that was written; nothing was restored", err, filepath.Base(archive), SidecarSuffix)
	}
	return true, nil
}

// moveInto renames the checked store, keys and repositories from staging into
// dataDir, making repositories readable by their owner alone as the daemon's
// data directory is.
func moveInto(staging, dataDir string, m manifest, l Layout) error {
	files := append([]string{m.Store}, m.Keys...)
	dest := append([]string{l.Store}, m.Keys...)
	for i, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dataDir, dest[i])), 0o700); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(staging, f), filepath.Join(dataDir, dest[i])); err != nil {
			return err
		}
	}
	repos := filepath.Join(dataDir, l.Repos)
	if err := os.MkdirAll(repos, 0o700); err != nil {
		return err
	}
	for _, app := range sortedKeys(m.Repos) {
		target := filepath.Join(repos, app+".git")
		if _, err := os.Stat(target); err == nil {
			return fmt.Errorf("%s already exists: restore into a new, empty data directory", target)
		}
		if err := os.Rename(filepath.Join(staging, m.ReposDir, app+".git"), target); err != nil {
			return err
		}
		if err := ownerOnly(target); err != nil {
			return err
		}
	}
	return nil
}

// ownerOnly takes group and other permissions off everything under dir.
func ownerOnly(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()&0o700)
	})
}

// readStore opens the restored store (which migrates it to this slipway's
// schema and proves the sealing key opens it), lists its installations,
// ends what ran when the copy was taken and forgets the old host's rollback
// images.
func (r *Report) readStore(ctx context.Context, path string) error {
	st, err := store.Open(path)
	if err != nil {
		return fmt.Errorf("open the restored store: %w", err)
	}
	defer st.Close()
	insts, err := st.Installations(ctx, "")
	if err != nil {
		return err
	}
	for _, in := range insts {
		line := in.Resource()
		if in.Commit != "" {
			line += " at " + in.Commit[:min(12, len(in.Commit))]
		}
		r.Installations = append(r.Installations, line)
	}
	// The copy was taken while the system backup's own operation ran (and
	// maybe others): they ran on the old host and will not end here.
	const why = "running when the system backup was taken; restored from it on a new host"
	if _, err := st.InterruptOperations(ctx, why); err != nil {
		return err
	}
	if _, err := st.InterruptBackups(ctx, why); err != nil {
		return err
	}
	r.ImagesForgotten, err = st.ForgetAllKeptImages(ctx)
	return err
}

// Write says in a few lines what was restored and what was not.
func (r Report) Write(w io.Writer) {
	fmt.Fprintf(w, "Restored into %s the system backup written %s:\n", r.DataDir, r.Created)
	if r.SumChecked {
		fmt.Fprintln(w, "  archive: matches its .sha256; every file in it matches its manifest")
	} else {
		fmt.Fprintln(w, "  archive: no .sha256 beside it, so only each file in it was checked against its manifest")
	}
	fmt.Fprintf(w, "  store: integrity_check ok, schema version %d, %d installations: %s\n", r.SchemaVersion, len(r.Installations), orNone(r.Installations))
	fmt.Fprintf(w, "  keys (0600): %s\n", orNone(r.Keys))
	fmt.Fprintf(w, "  repositories (git fsck ok): %s\n", orNone(r.Repos))
	fmt.Fprintln(w, "Not restored:")
	fmt.Fprintln(w, "  volumes: after the first start, import each from its own backup as APP_ENV_NAME (incus storage volume import), then restart APP/ENV")
	fmt.Fprintf(w, "  Incus instances and images (%d rollback images forgotten): the first start redeploys each installation's commit from its repository\n", r.ImagesForgotten)
	fmt.Fprintln(w, "  app logs, and the backup files of the old host")
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
