package channels

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// Persistent data and its backups.
//
// A manifest's volumes are Incus custom volumes, one per installation and
// name (APP_ENV_NAME: underscores, which app, environment and volume names
// cannot hold, so two installations never share one). Every new instance of
// the installation mounts the same volume, so data outlives deploys,
// switches and restarts. During a deploy the old and the new instance both
// mount it from the health check until the old one is drained and stopped
// after the swap: it is one filesystem, not a copy, so nothing either writes
// is lost, and the old instance only finishes requests it already had.
//
// A backup exports a volume to a gzip tarball in the backup directory and
// records its size and SHA-256; then it is test-restored into a scratch
// volume whose files' checksums must match those in the tarball, and only
// then is it "verified". The store is backed up with VACUUM INTO and checked
// with SQLite's integrity_check. Retention keeps the newest backup of each
// of the last KeepDaily days and KeepWeekly ISO weeks.

// BackupConfig is the engine's part of the backup configuration.
type BackupConfig struct {
	Dir          string // backup files; default <data>/backups
	KeepDaily    int    // newest backup of each of the last N days with one
	KeepWeekly   int    // newest backup of each of the last M weeks with one
	Schedule     string // default cron schedule (UTC) of installations with volumes; "" or "off": none
	ScratchImage string // image of the instance that checksums a test restore (default DefaultImage)
}

// VolumeRuntime is what volumes and backups need from the runtime besides
// Runtime. The Incus runtime has it; a runtime without it can still deploy
// apps that declare no volumes.
type VolumeRuntime interface {
	// CreateVolume makes an empty volume; an existing one is kept as it is.
	CreateVolume(ctx context.Context, name string) error
	// DeleteVolume deletes a volume; a missing one is not an error.
	DeleteVolume(ctx context.Context, name string) error
	// Volumes lists the volumes by name.
	Volumes(ctx context.Context) ([]string, error)
	// AttachVolumes mounts volumes (name -> path) into an instance, for good.
	AttachVolumes(ctx context.Context, instance string, volumes map[string]string) error
	// ExportVolume writes a gzip tarball of the volume (files under backup/volume/).
	ExportVolume(ctx context.Context, volume string, w io.Writer) (int64, error)
	// ImportVolume makes a new volume from such a tarball.
	ImportVolume(ctx context.Context, volume string, r io.Reader) error
	// VolumeChecksums returns the SHA-256 of each regular file by relative path.
	VolumeChecksums(ctx context.Context, volume, image string) (map[string]string, error)
}

// LabelScratch marks the runtime's short-lived checksum instances (the Incus
// runtime's container.ScratchLabel).
const LabelScratch = "scratch"

var (
	// ErrNoVolumes means the installation has no persistent volumes to back up.
	ErrNoVolumes = errors.New("no volumes")
	// ErrUnknownBackup means there is no such backup of that installation.
	ErrUnknownBackup = errors.New("unknown backup")
	// ErrNoVolumeSupport means the runtime cannot make volumes.
	ErrNoVolumeSupport = errors.New("this runtime has no persistent volumes")
)

// scratchPrefix starts the names of test-restore volumes; no installation
// volume starts so, since app names cannot hold an underscore.
const scratchPrefix = "scratch_"

func (e *Engine) volumeRuntime() (VolumeRuntime, error) {
	if vr, ok := e.rt.(VolumeRuntime); ok {
		return vr, nil
	}
	return nil, ErrNoVolumeSupport
}

func (e *Engine) backupDir() string {
	if e.cfg.Backups.Dir != "" {
		return e.cfg.Backups.Dir
	}
	return filepath.Join(filepath.Dir(e.cfg.ReposDir), "backups")
}

func (e *Engine) retention() (daily, weekly int) {
	if e.cfg.Backups.KeepDaily == 0 && e.cfg.Backups.KeepWeekly == 0 {
		return 7, 4
	}
	return e.cfg.Backups.KeepDaily, e.cfg.Backups.KeepWeekly
}

func (e *Engine) scratchImage() string {
	if e.cfg.Backups.ScratchImage != "" {
		return e.cfg.Backups.ScratchImage
	}
	return DefaultImage
}

// incusVolumeName is the Incus volume first made for an installation's volume.
func incusVolumeName(inst store.Installation, vol string) string {
	return inst.App + "_" + inst.Environment + "_" + vol
}

// attachVolumes mounts the installation's volumes that the manifest
// declares into a new instance, making those it does not have yet. It runs
// right after the launch, before the commit's tree goes in, so build and
// release steps (migrations) already see the data.
func (e *Engine) attachVolumes(ctx context.Context, l *opLog, inst store.Installation, name string, m *Manifest) error {
	if len(m.Volumes) == 0 {
		return nil
	}
	vr, err := e.volumeRuntime()
	if err != nil {
		return fmt.Errorf("%s declares volumes: %w", ManifestFile, err)
	}
	have, err := e.volumeMap(ctx, inst.ID)
	if err != nil {
		return err
	}
	step := time.Now()
	mounts := map[string]string{}
	var shown []string
	for _, vol := range sortedKeys(m.Volumes) {
		incusName, ok := have[vol]
		if !ok {
			incusName = incusVolumeName(inst, vol)
			if err := vr.CreateVolume(ctx, incusName); err != nil {
				return e.stepError(ctx, "create volume "+vol, err)
			}
			if err := e.store.SetVolume(ctx, inst.ID, vol, incusName); err != nil {
				return fmt.Errorf("record volume %s: %w", vol, err)
			}
			l.Logf("       Created volume %s (%s) for %s", vol, incusName, inst.Resource())
		}
		mounts[incusName] = m.Volumes[vol]
		shown = append(shown, vol+" at "+m.Volumes[vol])
	}
	if err := vr.AttachVolumes(ctx, name, mounts); err != nil {
		return e.stepError(ctx, "attach volumes", err)
	}
	l.Logf("       Volumes mounted: %s (%s)", strings.Join(shown, ", "), time.Since(step).Round(time.Millisecond))
	return nil
}

func (e *Engine) volumeMap(ctx context.Context, installationID int64) (map[string]string, error) {
	vols, err := e.store.Volumes(ctx, installationID)
	if err != nil {
		return nil, fmt.Errorf("read volumes: %w", err)
	}
	out := map[string]string{}
	for _, v := range vols {
		out[v.Name] = v.IncusName
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Backup queues a backup of every volume of an installation. origin is
// store.OriginManual or store.OriginScheduled.
func (e *Engine) Backup(ctx context.Context, app, env, user, origin string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	vols, err := e.store.Volumes(ctx, inst.ID)
	if err != nil {
		return store.Operation{}, err
	}
	if len(vols) == 0 {
		return store.Operation{}, fmt.Errorf("%s has %w to back up: declare them under volumes: in %s and deploy", inst.Resource(), ErrNoVolumes, ManifestFile)
	}
	op := store.Operation{Type: "backup", App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return fmt.Errorf("installation is gone: %w", err)
		}
		vols, err := e.store.Volumes(ctx, inst.ID)
		if err != nil {
			return err
		}
		l.Logf("-----> %s backup of %s: %d volume(s) to %s", origin, now.Resource(), len(vols), e.backupDir())
		var failed []string
		for _, v := range vols {
			if b, err := e.backupVolume(ctx, l, now, v, origin); err != nil {
				failed = append(failed, fmt.Sprintf("backup %d of volume %s: %s", b.ID, v.Name, err))
			}
		}
		if len(failed) > 0 {
			return errors.New(strings.Join(failed, "; "))
		}
		return nil
	})
}

// backupVolume exports one volume, records the file and verifies it by a
// test restore. The backup is recorded (failed, with the reason) even when
// the export or the verification fails.
func (e *Engine) backupVolume(ctx context.Context, l *opLog, inst store.Installation, v store.Volume, origin string) (store.Backup, error) {
	b, err := e.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindVolume, InstallationID: inst.ID, App: inst.App,
		Environment: inst.Environment, Volume: v.Name, Source: v.IncusName, Origin: origin, OperationID: l.id})
	if err != nil {
		return b, fmt.Errorf("record backup: %w", err)
	}
	vr, err := e.volumeRuntime()
	if err != nil {
		return b, e.failBackup(b, err)
	}
	rel := filepath.Join(inst.App, inst.Environment, fmt.Sprintf("%s-%s-%d.tar.gz", v.Name, b.CreatedAt.Format("20060102T150405Z"), b.ID))
	path := filepath.Join(e.backupDir(), rel)
	step := time.Now()
	err = writeFile(path, func(w io.Writer) error {
		_, err := vr.ExportVolume(ctx, v.IncusName, w)
		return err
	})
	if err != nil {
		return b, e.failBackup(b, e.stepError(ctx, "export volume "+v.IncusName, err))
	}
	info, err := inspectTarball(path)
	if err != nil {
		return b, e.failBackup(b, fmt.Errorf("the exported file does not read back: %w", err))
	}
	if err := e.store.SetBackupFile(ctx, b.ID, rel, info.size, info.sha256, len(info.files)); err != nil {
		return b, e.failBackup(b, err)
	}
	b.File, b.Size, b.SHA256, b.Files = rel, info.size, info.sha256, len(info.files)
	l.Logf("       Backup %d of volume %s (%s): %s, %s, sha256 %s, in %s (%s)", b.ID, v.Name, v.IncusName,
		plural(b.Files, "file"), humanSize(b.Size), b.SHA256, rel, time.Since(step).Round(time.Millisecond))
	step = time.Now()
	if err := e.testRestore(ctx, b, path, info); err != nil {
		return b, e.failBackup(b, fmt.Errorf("verification failed: %w", cancelled(ctx, "test restore", err)))
	}
	if err := e.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
		return b, err
	}
	b.State = store.BackupVerified
	l.Logf("       Verified: restored into a scratch volume, the checksums of all %s match the backup's (%s)", plural(b.Files, "file"), time.Since(step).Round(time.Millisecond))
	return b, nil
}

// failBackup records why a backup failed and returns err.
func (e *Engine) failBackup(b store.Backup, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := e.store.SetBackupState(ctx, b.ID, store.BackupFailed, err.Error()); serr != nil {
		e.log.Error("record failed backup", "backup", b.ID, "err", serr)
	}
	return err
}

// testRestore imports the tarball into a scratch volume and compares the
// checksums of its files with those read from the tarball.
func (e *Engine) testRestore(ctx context.Context, b store.Backup, path string, want tarballInfo) error {
	vr, err := e.volumeRuntime()
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	scratch := fmt.Sprintf("%s%d_%s", scratchPrefix, b.ID, randomSuffix())
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := vr.DeleteVolume(dctx, scratch); err != nil {
			e.log.Warn("Could not delete scratch volume", "volume", scratch, "err", err)
		}
	}()
	if err := vr.ImportVolume(ctx, scratch, f); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	got, err := vr.VolumeChecksums(ctx, scratch, e.scratchImage())
	if err != nil {
		return fmt.Errorf("checksum the restored copy: %w", err)
	}
	return compareFiles(want.files, got)
}

// compareFiles names what differs between the files a backup holds and
// those a restore of it produced.
func compareFiles(want, got map[string]string) error {
	var missing, changed, extra []string
	for path, sum := range want {
		switch g, ok := got[path]; {
		case !ok:
			missing = append(missing, path)
		case g != sum:
			changed = append(changed, path)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			extra = append(extra, path)
		}
	}
	if len(missing)+len(changed)+len(extra) == 0 {
		return nil
	}
	var parts []string
	for _, p := range []struct {
		what  string
		paths []string
	}{{"missing", missing}, {"changed", changed}, {"not in the backup", extra}} {
		if len(p.paths) == 0 {
			continue
		}
		sort.Strings(p.paths)
		shown := p.paths
		if len(shown) > 3 {
			shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(p.paths)-3))
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(p.paths), p.what, strings.Join(shown, ", ")))
	}
	return fmt.Errorf("the restored copy differs from the backup: %s", strings.Join(parts, "; "))
}

// BackupStore queues a backup of the daemon's own store.
func (e *Engine) BackupStore(ctx context.Context, user, origin string) (store.Operation, error) {
	op := store.Operation{Type: "backup", User: user, Channel: "store"}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		l.Logf("-----> %s backup of the slipway store to %s", origin, e.backupDir())
		_, err := e.backupStore(ctx, l, origin)
		return err
	})
}

func (e *Engine) backupStore(ctx context.Context, l *opLog, origin string) (store.Backup, error) {
	b, err := e.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindStore, Origin: origin, OperationID: l.id})
	if err != nil {
		return b, fmt.Errorf("record backup: %w", err)
	}
	rel := filepath.Join("store", fmt.Sprintf("slipway-%s-%d.db.gz", b.CreatedAt.Format("20060102T150405Z"), b.ID))
	path := filepath.Join(e.backupDir(), rel)
	step := time.Now()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return b, e.failBackup(b, err)
	}
	// VACUUM INTO writes a consistent copy while the daemon goes on writing;
	// a file copy of a live WAL database would not be one.
	raw := strings.TrimSuffix(path, ".gz") + ".part"
	os.Remove(raw)
	defer os.Remove(raw)
	if err := e.store.BackupTo(ctx, raw); err != nil {
		return b, e.failBackup(b, err)
	}
	err = writeFile(path, func(w io.Writer) error {
		in, err := os.Open(raw)
		if err != nil {
			return err
		}
		defer in.Close()
		zw := gzip.NewWriter(w)
		if _, err := io.Copy(zw, in); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return b, e.failBackup(b, fmt.Errorf("compress the store copy: %w", err))
	}
	size, sum, err := fileSHA256(path)
	if err != nil {
		return b, e.failBackup(b, err)
	}
	if err := e.store.SetBackupFile(ctx, b.ID, rel, size, sum, 0); err != nil {
		return b, e.failBackup(b, err)
	}
	b.File, b.Size, b.SHA256 = rel, size, sum
	l.Logf("       Backup %d of the store: %s, sha256 %s, in %s (%s)", b.ID, humanSize(size), sum, rel, time.Since(step).Round(time.Millisecond))
	version, err := e.checkStoreBackup(ctx, path)
	if err != nil {
		return b, e.failBackup(b, fmt.Errorf("verification failed: %w", err))
	}
	if err := e.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
		return b, err
	}
	b.State = store.BackupVerified
	l.Logf("       Verified: the copy opens as a SQLite database, integrity_check ok, schema version %d", version)
	return b, nil
}

// checkStoreBackup unpacks a store backup to a scratch file and checks it
// opens, passes integrity_check and has this store's schema version.
func (e *Engine) checkStoreBackup(ctx context.Context, path string) (int, error) {
	scratch := strings.TrimSuffix(path, ".db.gz") + ".verify-" + randomSuffix() + ".db"
	defer os.Remove(scratch)
	err := writeFile(scratch, func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, zr)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("unpack: %w", err)
	}
	version, err := store.CheckDatabase(ctx, scratch)
	if err != nil {
		return 0, err
	}
	if want, err := e.store.SchemaVersion(ctx); err == nil && version != want {
		return version, fmt.Errorf("the copy has schema version %d, the store %d", version, want)
	}
	return version, nil
}

// VerifyBackup queues a new verification of a backup: its file must still
// match its recorded SHA-256 and restore to the same files.
func (e *Engine) VerifyBackup(ctx context.Context, id int64, user string) (store.Operation, error) {
	b, err := e.store.BackupByID(ctx, id)
	if err != nil {
		return store.Operation{}, fmt.Errorf("%w %d", ErrUnknownBackup, id)
	}
	if b.State == store.BackupRunning {
		return store.Operation{}, fmt.Errorf("backup %d is still being taken", id)
	}
	op := store.Operation{Type: "backup", User: user, Channel: "store"}
	if b.Kind == store.BackupKindVolume {
		op = store.Operation{Type: "backup", App: b.App, Environment: b.Environment, User: user}
		if inst, err := e.store.InstallationByName(ctx, b.App, b.Environment); err == nil {
			op.InstallationID, op.Commit, op.Channel = inst.ID, inst.Commit, inst.Channel()
		}
	}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		l.Logf("-----> Verifying backup %d of %s (taken %s)", b.ID, describeBackup(b), b.CreatedAt.Format(time.RFC3339))
		if err := e.verifyBackup(ctx, b); err != nil {
			return e.failBackup(b, fmt.Errorf("verification failed: %w", err))
		}
		if err := e.store.SetBackupState(ctx, b.ID, store.BackupVerified, ""); err != nil {
			return err
		}
		l.Logf("       Verified: the file matches its SHA-256 and a test restore matches its contents")
		return nil
	})
}

func (e *Engine) verifyBackup(ctx context.Context, b store.Backup) error {
	if b.File == "" {
		return errors.New("it has no file (its export failed)")
	}
	path := filepath.Join(e.backupDir(), b.File)
	if err := checkFileSum(path, b); err != nil {
		return err
	}
	if b.Kind == store.BackupKindStore {
		_, err := e.checkStoreBackup(ctx, path)
		return err
	}
	info, err := inspectTarball(path)
	if err != nil {
		return fmt.Errorf("the file does not read: %w", err)
	}
	return cancelled(ctx, "test restore", e.testRestore(ctx, b, path, info))
}

// cancelled names a cancel as such, and leaves other errors as they are.
func cancelled(ctx context.Context, what string, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ErrCancelled)
	}
	return err
}

// checkFileSum checks a backup's file against its recorded size and SHA-256.
func checkFileSum(path string, b store.Backup) error {
	size, sum, err := fileSHA256(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("its file %s is missing", b.File)
	}
	if err != nil {
		return err
	}
	if sum != b.SHA256 || size != b.Size {
		return fmt.Errorf("its file no longer matches the SHA-256 recorded when it was taken (the file was changed or damaged)")
	}
	return nil
}

// Restore queues the restore of a volume backup of app/env into the same
// installation, or into toApp/toEnv when those are given. A safety backup of
// the current data is taken first; then the backup becomes a new volume,
// a new instance mounts it and takes the traffic (zero downtime), and the
// old volume is deleted.
func (e *Engine) Restore(ctx context.Context, app, env string, id int64, toApp, toEnv, user string) (store.Operation, error) {
	b, err := e.store.BackupByID(ctx, id)
	if err != nil || b.Kind != store.BackupKindVolume || b.App != app || b.Environment != env {
		return store.Operation{}, fmt.Errorf("%w %d of %s/%s (see: backup list %s/%s)", ErrUnknownBackup, id, app, env, app, env)
	}
	if toApp == "" {
		toApp, toEnv = app, env
	}
	inst, err := e.installation(ctx, toApp, toEnv)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: "restore", App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.restore(ctx, l, b, inst.ID)
	})
}

func (e *Engine) restore(ctx context.Context, l *opLog, b store.Backup, installationID int64) (err error) {
	inst, err := e.store.InstallationByID(ctx, installationID)
	if err != nil {
		return fmt.Errorf("installation is gone: %w", err)
	}
	from := ""
	if b.Resource() != inst.Resource() {
		from = " of " + b.Resource()
	}
	l.Logf("-----> restore of %s volume %s from backup %d%s, taken %s", inst.Resource(), b.Volume, b.ID, from, b.CreatedAt.Format(time.RFC3339))
	l.Logf("       Warning: restoring replaces the data: whatever was written to %s's volume %s since %s is lost from it", inst.Resource(), b.Volume, b.CreatedAt.Format(time.RFC3339))
	l.Logf("       (a safety backup of it is taken first). To keep recent writes, roll forward instead: repair the data in place with a new commit or a one-off `run`.")

	// Nothing changes until the backup is known to be intact.
	path := filepath.Join(e.backupDir(), b.File)
	if b.File == "" {
		return fmt.Errorf("backup %d has no file (its export failed); nothing was changed", b.ID)
	}
	if err := checkFileSum(path, b); err != nil {
		e.failBackup(b, fmt.Errorf("restore refused it: %w", err))
		return fmt.Errorf("backup %d is damaged: %s; nothing was changed", b.ID, err)
	}
	if b.State != store.BackupVerified {
		return fmt.Errorf("backup %d is not verified (%s); check it with: backup verify %s %d; nothing was changed", b.ID, dashIfEmpty(b.Reason, b.State), b.Resource(), b.ID)
	}
	info, err := inspectTarball(path)
	if err != nil {
		return fmt.Errorf("backup %d does not read: %s; nothing was changed", b.ID, err)
	}
	l.Logf("       Backup %d is intact: its file matches the recorded SHA-256 %s", b.ID, b.SHA256)
	var m *Manifest
	if inst.Commit != "" {
		if m, err = e.manifestAt(inst.App, inst.Commit); err != nil {
			return fmt.Errorf("read the manifest of %s: %w; nothing was changed", shortID(inst.Commit), err)
		}
		if _, ok := m.Volumes[b.Volume]; !ok {
			return fmt.Errorf("%s's %s (commit %s) declares no volume %q; nothing was changed", inst.Resource(), ManifestFile, shortID(inst.Commit), b.Volume)
		}
	}
	vr, err := e.volumeRuntime()
	if err != nil {
		return err
	}

	vols, err := e.store.Volumes(ctx, inst.ID)
	if err != nil {
		return err
	}
	var current *store.Volume
	for i := range vols {
		if vols[i].Name == b.Volume {
			current = &vols[i]
		}
	}
	if current != nil {
		l.Logf("-----> Safety backup of %s volume %s as it is now", inst.Resource(), b.Volume)
		sb, err := e.backupVolume(ctx, l, inst, *current, store.OriginSafety)
		if err != nil {
			return fmt.Errorf("safety backup %d failed (%s); nothing was changed", sb.ID, err)
		}
		l.Logf("       Safety backup %d holds the data as it was before this restore: restore it to undo this one", sb.ID)
	}

	var undo reverter
	defer func() {
		if err == nil {
			return
		}
		if rerr := undo.Fail(); rerr != nil {
			l.Logf("       Could not undo the restore's changes: %s", rerr)
		} else if current != nil {
			l.Logf("       %s keeps volume %s as it was", inst.Resource(), current.IncusName)
		}
	}()
	restored := fmt.Sprintf("%s_r%d", incusVolumeName(inst, b.Volume), l.id)
	l.Logf("-----> Restoring backup %d into volume %s", b.ID, restored)
	step := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = vr.ImportVolume(ctx, restored, f)
	f.Close()
	undo.Add(func() error {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return vr.DeleteVolume(dctx, restored)
	})
	if err != nil {
		return e.stepError(ctx, "import backup", err)
	}
	got, err := vr.VolumeChecksums(ctx, restored, e.scratchImage())
	if err != nil {
		return e.stepError(ctx, "checksum the restored volume", err)
	}
	if err := compareFiles(info.files, got); err != nil {
		return err
	}
	l.Logf("       Restored and checked: the checksums of all %s match the backup's (%s)", plural(len(info.files), "file"), time.Since(step).Round(time.Millisecond))

	if err := e.store.BeginVolumeRestore(ctx, inst.ID, b.Volume, restored, l.id); err != nil {
		return err
	}
	undo.Add(func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return e.store.AbortVolumeRestore(dctx, inst.ID, b.Volume)
	})
	if inst.Commit == "" {
		if err := e.store.FinishVolumeRestore(ctx, inst.ID, b.Volume); err != nil {
			return err
		}
		undo.Success()
		l.Logf("-----> Nothing is deployed on %s yet: its first deploy mounts the restored volume", inst.Resource())
		return nil
	}
	if err := e.replace(ctx, l, "restore", inst.ID, inst.Commit, l.id, nil); err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.store.FinishVolumeRestore(dctx, inst.ID, b.Volume); err != nil {
		e.log.Error("record restored volume", "installation", inst.Resource(), "err", err)
	}
	undo.Success()
	if current != nil {
		// After the old instance, which mounts it, is deleted (see replace).
		l.afterwards(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := vr.DeleteVolume(ctx, current.IncusName); err != nil {
				l.Logf("       Could not delete the old volume %s: %s", current.IncusName, err)
				return fmt.Errorf("delete the old volume %s: %w", current.IncusName, err)
			}
			l.Logf("       Old volume %s deleted; its data is in the safety backup", current.IncusName)
			return nil
		})
	}
	l.Logf("-----> %s serves the data of backup %d from volume %s", inst.Host, b.ID, restored)
	return nil
}

func (e *Engine) manifestAt(app, commit string) (*Manifest, error) {
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return nil, err
	}
	data, err := r.ReadFile(commit, ManifestFile)
	if err != nil {
		return nil, err
	}
	return ParseManifest(data)
}

// Purge queues the removal of an installation's backups past retention.
func (e *Engine) Purge(ctx context.Context, app, env, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: "purge", App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.purge(ctx, l, store.BackupFilter{Kind: store.BackupKindVolume, App: inst.App, Environment: inst.Environment}, inst.Resource())
	})
}

// PurgeStore queues the removal of store backups past retention.
func (e *Engine) PurgeStore(ctx context.Context, user string) (store.Operation, error) {
	op := store.Operation{Type: "purge", User: user, Channel: "store"}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.purge(ctx, l, store.BackupFilter{Kind: store.BackupKindStore}, "the store")
	})
}

func (e *Engine) purge(ctx context.Context, l *opLog, f store.BackupFilter, what string) error {
	daily, weekly := e.retention()
	l.Logf("-----> Purging backups of %s: keeping the newest verified one of each of the last %d days and %d weeks", what, daily, weekly)
	all, err := e.store.Backups(ctx, f)
	if err != nil {
		return err
	}
	series := map[string][]store.Backup{}
	var keys []string
	for _, b := range all {
		if _, ok := series[b.Volume]; !ok {
			keys = append(keys, b.Volume)
		}
		series[b.Volume] = append(series[b.Volume], b)
	}
	kept, removed := 0, 0
	for _, k := range keys {
		keep, drop := Retain(series[k], daily, weekly)
		kept += len(keep)
		for _, b := range drop {
			if b.File != "" {
				if err := os.Remove(filepath.Join(e.backupDir(), b.File)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					l.Logf("       Could not remove %s: %s", b.File, err)
					continue
				}
			}
			if err := e.store.DeleteBackup(ctx, b.ID); err != nil {
				return err
			}
			removed++
			l.Logf("       Removed backup %d of %s (taken %s, %s)", b.ID, describeBackup(b), b.CreatedAt.Format(time.RFC3339), b.State)
		}
	}
	l.Logf("       Kept %s, removed %d", plural(kept, "backup"), removed)
	return nil
}

// Retain splits one series of backups (one volume of one installation, or
// the store) into those to keep and those past retention: the newest
// verified backup of each of the last daily days that have one, and of each
// of the last weekly ISO weeks that have one, are kept. A failed backup is
// kept until a verified one newer than it exists, so the failure stays in
// view; one still running is always kept.
func Retain(backups []store.Backup, daily, weekly int) (keep, drop []store.Backup) {
	sorted := append([]store.Backup(nil), backups...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].CreatedAt.Equal(sorted[j].CreatedAt) {
			return sorted[i].CreatedAt.After(sorted[j].CreatedAt)
		}
		return sorted[i].ID > sorted[j].ID
	})
	keepIDs := map[int64]bool{}
	days, weeks := map[string]bool{}, map[string]bool{}
	var newestVerified time.Time
	for _, b := range sorted {
		if b.State != store.BackupVerified {
			continue
		}
		if newestVerified.IsZero() {
			newestVerified = b.CreatedAt
		}
		// Newest first, so the first backup seen of a day or week is its newest.
		if day := b.CreatedAt.UTC().Format("2006-01-02"); !days[day] {
			days[day] = true
			keepIDs[b.ID] = keepIDs[b.ID] || len(days) <= daily
		}
		if week := ISOWeek(b.CreatedAt); !weeks[week] {
			weeks[week] = true
			keepIDs[b.ID] = keepIDs[b.ID] || len(weeks) <= weekly
		}
	}
	for _, b := range sorted {
		switch {
		case b.State == store.BackupRunning, keepIDs[b.ID]:
			keep = append(keep, b)
		case b.State == store.BackupFailed && (newestVerified.IsZero() || b.CreatedAt.After(newestVerified)):
			keep = append(keep, b)
		default:
			drop = append(drop, b)
		}
	}
	return keep, drop
}

// Backups lists an installation's volume backups, newest first.
func (e *Engine) Backups(ctx context.Context, app, env string) ([]store.Backup, error) {
	if _, err := e.installation(ctx, app, env); err != nil {
		return nil, err
	}
	return e.store.Backups(ctx, store.BackupFilter{Kind: store.BackupKindVolume, App: app, Environment: env})
}

// StoreBackups lists the store's backups, newest first.
func (e *Engine) StoreBackups(ctx context.Context) ([]store.Backup, error) {
	return e.store.Backups(ctx, store.BackupFilter{Kind: store.BackupKindStore})
}

// BackupPath is where a backup's file is.
func (e *Engine) BackupPath(b store.Backup) string {
	if b.File == "" {
		return ""
	}
	return filepath.Join(e.backupDir(), b.File)
}

// BackupSchedule returns the cron schedule an installation's volumes are
// backed up on ("" for none) and whether it is the installation's own.
func (e *Engine) BackupSchedule(ctx context.Context, app, env string) (spec string, own bool, err error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return "", false, err
	}
	spec, err = e.store.BackupSchedule(ctx, inst.ID)
	if err != nil || spec != "" {
		return spec, spec != "", err
	}
	return e.cfg.Backups.Schedule, false, nil
}

// SetBackupSchedule gives an installation its own backup schedule (a cron
// line read in UTC, or "off"); "default" returns it to the daemon's.
func (e *Engine) SetBackupSchedule(ctx context.Context, app, env, spec string) error {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return err
	}
	switch spec {
	case "default":
		spec = ""
	case "off":
	default:
		if _, err := cron.ParseStandard(spec); err != nil {
			return fmt.Errorf("%w: %q is not a cron schedule (e.g. \"30 2 * * *\", \"@daily\", or off): %v", ErrInvalidName, spec, err)
		}
	}
	return e.store.SetBackupSchedule(ctx, inst.ID, spec)
}

// RunScheduledBackups queues the backups that fell due in (from, to]: every
// installation with volumes on its own schedule or the default one, each
// followed by a purge of what is past retention. The daemon's cron calls it
// every minute, so schedule changes apply without a restart.
func (e *Engine) RunScheduledBackups(ctx context.Context, from, to time.Time) []store.Operation {
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		e.log.Error("scheduled backups", "err", err)
		return nil
	}
	vols, err := e.store.Volumes(ctx, 0)
	if err != nil {
		e.log.Error("scheduled backups", "err", err)
		return nil
	}
	withVolumes := map[int64]bool{}
	for _, v := range vols {
		withVolumes[v.InstallationID] = true
	}
	var ops []store.Operation
	for _, inst := range insts {
		if !withVolumes[inst.ID] {
			continue
		}
		spec, err := e.store.BackupSchedule(ctx, inst.ID)
		if err != nil {
			continue
		}
		if spec == "" {
			spec = e.cfg.Backups.Schedule
		}
		if !due(spec, from, to) {
			continue
		}
		op, err := e.Backup(ctx, inst.App, inst.Environment, "slipway", store.OriginScheduled)
		if err != nil {
			e.log.Error("scheduled backup", "installation", inst.Resource(), "err", err)
			continue
		}
		ops = append(ops, op)
		if op, err := e.Purge(ctx, inst.App, inst.Environment, "slipway"); err == nil {
			ops = append(ops, op)
		}
	}
	return ops
}

// due reports whether a cron schedule fires in (from, to]. "" and "off" never do.
func due(spec string, from, to time.Time) bool {
	if spec == "" || spec == "off" {
		return false
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return false
	}
	next := s.Next(from.UTC())
	return !next.IsZero() && !next.After(to.UTC())
}

// RecoverBackups finishes what a stopped daemon left of backups and
// restores: backups it was taking are marked failed, scratch instances and
// volumes are deleted, and a restore that had not swapped traffic yet goes
// back to the volume in use before it. Call it after Recover.
func (e *Engine) RecoverBackups(ctx context.Context) error {
	backups, err := e.store.InterruptBackups(ctx, "interrupted: slipway stopped while it ran")
	if err != nil {
		return err
	}
	for _, b := range backups {
		e.log.Warn("Backup interrupted", "backup", b.ID, "resource", b.Resource())
	}
	filepath.WalkDir(e.backupDir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".part") || strings.Contains(filepath.Base(path), ".verify-")) {
			os.Remove(path)
		}
		return nil
	})
	vr, err := e.volumeRuntime()
	if err != nil {
		return nil
	}
	instances, err := e.rt.List(ctx)
	if err != nil {
		return err
	}
	serving := map[string]Instance{}
	for _, in := range instances {
		if _, ok := in.Labels[LabelScratch]; ok {
			e.log.Info("Deleting scratch instance", "instance", in.Name)
			if err := e.rt.Delete(ctx, in.Name); err != nil {
				e.log.Warn("Delete scratch instance", "instance", in.Name, "err", err)
			}
		}
		serving[in.Name] = in
	}
	vols, err := e.store.Volumes(ctx, 0)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if v.RestoreOperation == 0 {
			continue
		}
		inst, err := e.store.InstallationByID(ctx, v.InstallationID)
		if err != nil {
			continue
		}
		// The restore swapped traffic when the instance serving now is the
		// one it built.
		if in, ok := serving[inst.Instance]; ok && in.Labels[LabelOperation] == strconv.FormatInt(v.RestoreOperation, 10) {
			e.log.Info("Keeping restored volume", "installation", inst.Resource(), "volume", v.IncusName)
			e.store.FinishVolumeRestore(ctx, v.InstallationID, v.Name)
			continue
		}
		e.log.Info("Undoing interrupted restore", "installation", inst.Resource(), "volume", v.IncusName, "back to", v.Previous)
		if err := e.store.AbortVolumeRestore(ctx, v.InstallationID, v.Name); err != nil {
			return err
		}
		if err := vr.DeleteVolume(ctx, v.IncusName); err != nil {
			e.log.Warn("Delete volume of interrupted restore", "volume", v.IncusName, "err", err)
		}
	}
	names, err := vr.Volumes(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasPrefix(name, scratchPrefix) {
			e.log.Info("Deleting scratch volume", "volume", name)
			if err := vr.DeleteVolume(ctx, name); err != nil {
				e.log.Warn("Delete scratch volume", "volume", name, "err", err)
			}
		}
	}
	return nil
}

// tarballInfo is what inspectTarball reads from a volume backup.
type tarballInfo struct {
	size   int64
	sha256 string
	files  map[string]string // path in the volume -> SHA-256, regular files (and hard links)
}

const tarVolumeDir = "backup/volume/"

// inspectTarball reads a volume backup once: the SHA-256 and size of the
// file, and the SHA-256 of every file in the volume. A damaged file fails
// here (gzip checks its CRC, tar its headers).
func inspectTarball(path string) (tarballInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return tarballInfo{}, err
	}
	defer f.Close()
	h := sha256.New()
	counted := &countingReader{r: io.TeeReader(f, h)}
	zr, err := gzip.NewReader(counted)
	if err != nil {
		return tarballInfo{}, err
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return tarballInfo{}, err
		}
		rel, ok := strings.CutPrefix(hdr.Name, tarVolumeDir)
		if !ok || rel == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			fh := sha256.New()
			if _, err := io.Copy(fh, tr); err != nil {
				return tarballInfo{}, err
			}
			files[rel] = hex.EncodeToString(fh.Sum(nil))
		case tar.TypeLink:
			if sum, ok := files[strings.TrimPrefix(hdr.Linkname, tarVolumeDir)]; ok {
				files[rel] = sum
			}
		}
	}
	// The rest: tar padding, the gzip trailer (its CRC is checked on EOF).
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return tarballInfo{}, err
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return tarballInfo{}, err
	}
	return tarballInfo{size: counted.n, sha256: hex.EncodeToString(h.Sum(nil)), files: files}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func fileSHA256(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeFile writes path through a temporary file and renames it into place
// once it is complete and synced, so a backup file is whole or absent.
func writeFile(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func describeBackup(b store.Backup) string {
	if b.Kind == store.BackupKindStore {
		return "the store"
	}
	return b.App + "/" + b.Environment + " volume " + b.Volume
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func dashIfEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func randomSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
