package channels

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/store"
)

// volumeFake adds in-memory volumes to the fake runtime. Its tarballs have
// the layout of Incus's custom volume backups (backup/index.yaml, files
// under backup/volume/), so the Incus runtime's own tarball reader
// (container.ReadExport) is exercised.
type volumeFake struct {
	*fakeRuntime
	mu       sync.Mutex
	vols     map[string]map[string]string // volume -> path -> content
	attached map[string]map[string]string // instance -> volume -> mount path
	// dropOnImport loses one file when a volume is imported, as a broken
	// restore path would.
	dropOnImport bool
}

func newVolumeFake() *volumeFake {
	return &volumeFake{fakeRuntime: newFakeRuntime(), vols: map[string]map[string]string{}, attached: map[string]map[string]string{}}
}

func (f *volumeFake) CreateVolume(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.vols[name] == nil {
		f.vols[name] = map[string]string{}
	}
	return nil
}

func (f *volumeFake) DeleteVolume(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for inst, vols := range f.attached {
		if _, ok := vols[name]; ok {
			return fmt.Errorf("volume %s is in use by %s", name, inst)
		}
	}
	delete(f.vols, name)
	return nil
}

func (f *volumeFake) Volumes(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.vols {
		out = append(out, name)
	}
	sort.Strings(out)
	return out, nil
}

func (f *volumeFake) AttachVolumes(ctx context.Context, instance string, volumes map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attached[instance] == nil {
		f.attached[instance] = map[string]string{}
	}
	for vol, path := range volumes {
		if f.vols[vol] == nil {
			return fmt.Errorf("no volume %s", vol)
		}
		f.attached[instance][vol] = path
	}
	return nil
}

func (f *volumeFake) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	delete(f.attached, name)
	f.mu.Unlock()
	return f.fakeRuntime.Delete(ctx, name)
}

func (f *volumeFake) ExportVolume(ctx context.Context, volume string, w io.Writer) (int64, error) {
	f.mu.Lock()
	files, ok := f.vols[volume]
	f.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no volume %s", volume)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	index := "name: " + volume + "\ntype: custom\n"
	tw.WriteHeader(&tar.Header{Name: "backup/index.yaml", Mode: 0o644, Size: int64(len(index)), Typeflag: tar.TypeReg})
	tw.Write([]byte(index))
	tw.WriteHeader(&tar.Header{Name: "backup/volume", Mode: 0o711, Typeflag: tar.TypeDir})
	for _, path := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Name: "backup/volume/" + path, Mode: 0o644, Size: int64(len(files[path])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[path]))
	}
	tw.Close()
	zw.Close()
	n, err := w.Write(buf.Bytes())
	return int64(n), err
}

func (f *volumeFake) ImportVolume(ctx context.Context, volume string, r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if rel, ok := strings.CutPrefix(h.Name, "backup/volume/"); ok && h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[rel] = string(b)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.vols[volume]; ok {
		return fmt.Errorf("volume %s already exists", volume)
	}
	if f.dropOnImport {
		for _, k := range sortedKeys(files) {
			delete(files, k)
			break
		}
	}
	f.vols[volume] = files
	return nil
}

func (f *volumeFake) VolumeChecksums(ctx context.Context, volume, image string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	files, ok := f.vols[volume]
	if !ok {
		return nil, fmt.Errorf("no volume %s", volume)
	}
	out := map[string]string{}
	for path, content := range files {
		out[path] = sha(content)
	}
	return out, nil
}

// ReadExport is the Incus runtime's: the tarballs have its layout.
func (f *volumeFake) ReadExport(r io.Reader) (map[string]string, error) {
	return container.ReadExport(r)
}

func (f *volumeFake) write(volume, path, content string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[volume][path] = content
}

func (f *volumeFake) read(volume, path string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vols[volume][path]
}

func (f *volumeFake) volumeOf(instance string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for vol, path := range f.attached[instance] {
		out[vol] = path
	}
	return out
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// newBackupEngine is newTestEngine over the fake runtime with volumes.
func newBackupEngine(t *testing.T, apps ...string) (*testEngine, *volumeFake) {
	t.Helper()
	te := newTestEngine(t)
	vf := newVolumeFake()
	dir := t.TempDir()
	px, routes := newRoutes(t, vf)
	e := NewEngine(Config{ReposDir: te.cfg.ReposDir, BaseDomain: "test", MaxParallel: 2, DrainTimeout: time.Second, KeepImages: 2,
		Backups: BackupConfig{Dir: filepath.Join(dir, "backups"), KeepDaily: 7, KeepWeekly: 4, Schedule: "30 2 * * *"}},
		te.store, vf, routes, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(e.Close)
	te.Engine.Close()
	te.Engine, te.rt, te.px = e, vf.fakeRuntime, px
	for _, app := range apps {
		if _, err := e.CreateApp(context.Background(), app); err != nil {
			t.Fatal(err)
		}
	}
	return te, vf
}

const volumeManifest = "web: serve\nbuild: build-step\nvolumes:\n  data: /var/lib/data\nhealth:\n  timeout: 2s\n"

func TestVolumesBackupVerifyRestore(t *testing.T) {
	te, vf := newBackupEngine(t, "shop")
	ctx := context.Background()
	inst := te.install("shop")
	if _, err := te.Backup(ctx, "shop", "prod", "alice", store.OriginManual); err == nil || !strings.Contains(err.Error(), "no volumes") {
		t.Fatalf("backup before any volume: %v", err)
	}
	op := te.wait(te.push("shop", te.commit("shop", volumeManifest, "one")))
	if op.Status != store.StatusSucceeded {
		t.Fatalf("deploy: %+v\n%s", op, te.log(op.ID))
	}
	const vol = "shop_prod_data"
	now, _ := te.store.InstallationByID(ctx, inst.ID)
	if got := vf.volumeOf(now.Instance); got[vol] != "/var/lib/data" {
		t.Fatalf("serving instance %s mounts %v", now.Instance, got)
	}
	vf.write(vol, "notes.txt", "written before the second deploy\n")

	// A second deploy mounts the same volume in the new instance.
	op = te.wait(te.push("shop", te.commit("shop", volumeManifest, "two")))
	next, _ := te.store.InstallationByID(ctx, inst.ID)
	if op.Status != store.StatusSucceeded || next.Instance == now.Instance || vf.volumeOf(next.Instance)[vol] != "/var/lib/data" {
		t.Fatalf("second deploy: %s, %s mounts %v\n%s", op.Status, next.Instance, vf.volumeOf(next.Instance), te.log(op.ID))
	}

	op, err := te.Backup(ctx, "shop", "prod", "alice", store.OriginManual)
	if err != nil {
		t.Fatal(err)
	}
	if op = te.wait(op); op.Status != store.StatusSucceeded {
		t.Fatalf("backup: %+v\n%s", op, te.log(op.ID))
	}
	list, _ := te.Backups(ctx, "shop", "prod")
	if len(list) != 1 || list[0].State != store.BackupVerified || list[0].Files != 1 || list[0].SHA256 == "" || list[0].OperationID != op.ID {
		t.Fatalf("backups: %+v", list)
	}
	first := list[0]
	if data, err := os.ReadFile(te.BackupPath(first)); err != nil || int64(len(data)) != first.Size || sha(string(data)) != first.SHA256 {
		t.Fatalf("backup file: %d %s %v, recorded %d %s", len(data), sha(string(data)), err, first.Size, first.SHA256)
	}

	vf.write(vol, "notes.txt", "written after the backup\n")
	vf.write(vol, "later.txt", "also later\n")
	op, err = te.Restore(ctx, "shop", "prod", first.ID, "", "", "alice")
	if err != nil {
		t.Fatal(err)
	}
	op = te.wait(op)
	logText := te.log(op.ID)
	if op.Status != store.StatusSucceeded {
		t.Fatalf("restore: %+v\n%s", op, logText)
	}
	for _, want := range []string{"Warning: restoring replaces the data", "roll forward", "Safety backup", "now serves commit"} {
		if !strings.Contains(logText, want) {
			t.Errorf("restore log lacks %q:\n%s", want, logText)
		}
	}
	restored := fmt.Sprintf("%s_r%d", vol, op.ID)
	after, _ := te.store.InstallationByID(ctx, inst.ID)
	if got := vf.volumeOf(after.Instance); got[restored] != "/var/lib/data" || len(got) != 1 {
		t.Fatalf("after restore %s mounts %v", after.Instance, got)
	}
	if got := vf.read(restored, "notes.txt"); got != "written before the second deploy\n" || vf.read(restored, "later.txt") != "" {
		t.Fatalf("restored data: %q", got)
	}
	if names, _ := vf.Volumes(ctx); strings.Join(names, " ") != restored {
		t.Fatalf("volumes after restore: %v (the old one should be gone, no scratch left)", names)
	}
	list, _ = te.Backups(ctx, "shop", "prod")
	if len(list) != 2 || list[0].Origin != store.OriginSafety || list[0].State != store.BackupVerified || list[0].Source != vol {
		t.Fatalf("backups after restore: %+v", list)
	}
	safety := list[0]

	// The safety backup holds what was there before: restore it to undo.
	op, _ = te.Restore(ctx, "shop", "prod", safety.ID, "", "", "alice")
	if op = te.wait(op); op.Status != store.StatusSucceeded {
		t.Fatalf("restore of the safety backup: %+v\n%s", op, te.log(op.ID))
	}
	undone := fmt.Sprintf("%s_r%d", vol, op.ID)
	if vf.read(undone, "notes.txt") != "written after the backup\n" || vf.read(undone, "later.txt") != "also later\n" {
		t.Fatalf("undo restored %v", vf.vols[undone])
	}

	// A damaged backup file fails verification and is refused by restore,
	// which changes nothing.
	path := te.BackupPath(first)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	os.WriteFile(path, data, 0o640)
	op, _ = te.VerifyBackup(ctx, first.ID, "alice")
	if op = te.wait(op); op.Status != store.StatusFailed || !strings.Contains(op.Reason, "verification failed: its file no longer matches the SHA-256") {
		t.Fatalf("verify of a damaged backup: %+v", op)
	}
	b, _ := te.store.BackupByID(ctx, first.ID)
	if b.State != store.BackupFailed || !strings.Contains(b.Reason, "SHA-256") {
		t.Fatalf("damaged backup recorded as %+v", b)
	}
	before, _ := te.store.InstallationByID(ctx, inst.ID)
	op, _ = te.Restore(ctx, "shop", "prod", first.ID, "", "", "alice")
	op = te.wait(op)
	if op.Status != store.StatusFailed || !strings.Contains(op.Reason, fmt.Sprintf("backup %d is damaged", first.ID)) || !strings.Contains(op.Reason, "nothing was changed") || strings.Contains(op.Reason, "\n") {
		t.Fatalf("restore of a damaged backup: %+v", op)
	}
	now, _ = te.store.InstallationByID(ctx, inst.ID)
	if now.Instance != before.Instance || vf.volumeOf(now.Instance)[undone] == "" {
		t.Fatalf("a refused restore changed the installation: %s -> %s", before.Instance, now.Instance)
	}

	// A restore that does not bring the files back fails verification.
	vf.dropOnImport = true
	op, _ = te.Backup(ctx, "shop", "prod", "alice", store.OriginManual)
	if op = te.wait(op); op.Status != store.StatusFailed || !strings.Contains(op.Reason, "verification failed: the restored copy differs from the backup: 1 missing") {
		t.Fatalf("backup with a broken restore: %+v\n%s", op, te.log(op.ID))
	}
	list, _ = te.Backups(ctx, "shop", "prod")
	if list[0].State != store.BackupFailed || !strings.Contains(list[0].Reason, "differs") {
		t.Fatalf("failed backup recorded as %+v", list[0])
	}
	if names, _ := vf.Volumes(ctx); len(names) != 1 {
		t.Fatalf("scratch volumes left: %v", names)
	}
}

func TestRestoreIntoAnotherInstallation(t *testing.T) {
	te, vf := newBackupEngine(t, "shop")
	ctx := context.Background()
	te.install("shop")
	if _, err := te.CreateEnvironment(ctx, "staging"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := te.Install(ctx, "shop", "staging", "main", "", "alice"); err != nil {
		t.Fatal(err)
	}
	c1 := te.commit("shop", volumeManifest, "one")
	ops, _, err := te.Pushed(ctx, "shop", "alice", []RefUpdate{{Name: "refs/heads/main", Old: zeroID, New: c1}}, nil)
	if err != nil || len(ops) != 2 {
		t.Fatalf("push: %v %v", ops, err)
	}
	for _, op := range ops {
		if op = te.wait(op); op.Status != store.StatusSucceeded {
			t.Fatalf("deploy: %+v\n%s", op, te.log(op.ID))
		}
	}
	vf.write("shop_prod_data", "customers.csv", "alice,bob\n")
	op, _ := te.Backup(ctx, "shop", "prod", "alice", store.OriginManual)
	te.wait(op)
	list, _ := te.Backups(ctx, "shop", "prod")
	op, err = te.Restore(ctx, "shop", "prod", list[0].ID, "shop", "staging", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if op = te.wait(op); op.Status != store.StatusSucceeded || op.Environment != "staging" {
		t.Fatalf("restore to staging: %+v\n%s", op, te.log(op.ID))
	}
	restored := fmt.Sprintf("shop_staging_data_r%d", op.ID)
	if vf.read(restored, "customers.csv") != "alice,bob\n" || vf.read("shop_prod_data", "customers.csv") != "alice,bob\n" {
		t.Fatalf("volumes after restore to staging: %v", vf.vols)
	}
	if _, err := te.Restore(ctx, "shop", "staging", list[0].ID, "", "", "alice"); err == nil {
		t.Fatal("restored prod's backup by naming staging as its source")
	}
}

func TestStoreBackupIsAValidDatabase(t *testing.T) {
	te, _ := newBackupEngine(t)
	ctx := context.Background()
	op, err := te.BackupStore(ctx, "alice", store.OriginManual)
	if err != nil {
		t.Fatal(err)
	}
	if op = te.wait(op); op.Status != store.StatusSucceeded {
		t.Fatalf("store backup: %+v\n%s", op, te.log(op.ID))
	}
	list, _ := te.StoreBackups(ctx)
	if len(list) != 1 || list[0].State != store.BackupVerified || list[0].Kind != store.BackupKindStore {
		t.Fatalf("store backups: %+v", list)
	}
	f, _ := os.Open(te.BackupPath(list[0]))
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	out, _ := os.Create(copyPath)
	io.Copy(out, zr)
	out.Close()
	version, err := store.CheckDatabase(ctx, copyPath)
	if err != nil || version < 6 {
		t.Fatalf("store copy: version %d, %v", version, err)
	}
	// The copy holds the environments the store had.
	copied, err := store.Open(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if envs, _ := copied.Environments(ctx); len(envs) != 1 || envs[0].Name != "prod" {
		t.Fatalf("environments in the copy: %+v", envs)
	}
}

func TestPurgeRemovesBackupsPastRetention(t *testing.T) {
	te, vf := newBackupEngine(t, "shop")
	ctx := context.Background()
	te.install("shop")
	te.wait(te.push("shop", te.commit("shop", volumeManifest, "one")))
	vf.write("shop_prod_data", "a", "1")
	// Ten daily backups, taken on ten days by the store's clock.
	start := time.Date(2026, 11, 10, 2, 30, 0, 0, time.UTC)
	var ids []int64
	for i := 0; i < 10; i++ {
		at := start.AddDate(0, 0, i)
		te.store.SetClock(func() time.Time { return at })
		op, err := te.Backup(ctx, "shop", "prod", "slipway", store.OriginScheduled)
		if err != nil {
			t.Fatal(err)
		}
		if op = te.wait(op); op.Status != store.StatusSucceeded {
			t.Fatalf("backup %d: %+v\n%s", i, op, te.log(op.ID))
		}
	}
	te.store.SetClock(time.Now)
	list, _ := te.Backups(ctx, "shop", "prod")
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	op, _ := te.Purge(ctx, "shop", "prod", "alice")
	if op = te.wait(op); op.Status != store.StatusSucceeded {
		t.Fatalf("purge: %+v\n%s", op, te.log(op.ID))
	}
	after, _ := te.Backups(ctx, "shop", "prod")
	var days []string
	for _, b := range after {
		days = append(days, b.CreatedAt.Format("01-02"))
		if _, err := os.Stat(te.BackupPath(b)); err != nil {
			t.Errorf("kept backup %d has no file: %v", b.ID, err)
		}
	}
	// Nov 9 and 16 are Mondays: the last 7 days (13th-19th) stay; the newest
	// of ISO weeks 47 (the 19th) and 46 (the 15th) are among them, and there
	// is no older week. So the 10th-12th go.
	if got := strings.Join(days, " "); got != "11-19 11-18 11-17 11-16 11-15 11-14 11-13" {
		t.Errorf("after purge: %s\n%s", got, te.log(op.ID))
	}
	for _, b := range list[7:] {
		if _, err := os.Stat(te.BackupPath(b)); !os.IsNotExist(err) {
			t.Errorf("purged backup %d's file is still there: %v", b.ID, err)
		}
	}
	if !strings.Contains(te.log(op.ID), "Kept 7 backups, removed 3") {
		t.Errorf("purge log:\n%s", te.log(op.ID))
	}
}

func TestScheduledBackupsFollowEachInstallationsSchedule(t *testing.T) {
	te, _ := newBackupEngine(t, "shop", "blog")
	ctx := context.Background()
	te.install("shop")
	te.install("blog")
	te.wait(te.push("shop", te.commit("shop", volumeManifest, "one")))
	if err := te.SetBackupSchedule(ctx, "blog", "prod", "not cron"); err == nil {
		t.Fatal("accepted a schedule that is not cron")
	}
	// blog has no volumes: never backed up, whatever its schedule.
	if err := te.SetBackupSchedule(ctx, "blog", "prod", "* * * * *"); err != nil {
		t.Fatal(err)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, time.UTC) }
	if ops := te.RunScheduledBackups(ctx, at(2, 28), at(2, 29)); len(ops) != 0 {
		t.Fatalf("due before the default 02:30: %+v", ops)
	}
	ops := te.RunScheduledBackups(ctx, at(2, 29), at(2, 30))
	if len(ops) != 2 || ops[0].Type != "backup" || ops[1].Type != "purge" || ops[0].Resource() != "shop/prod" {
		t.Fatalf("due at 02:30: %+v", ops)
	}
	for _, op := range ops {
		if op = te.wait(op); op.Status != store.StatusSucceeded {
			t.Fatalf("%s: %+v\n%s", op.Type, op, te.log(op.ID))
		}
	}
	if err := te.SetBackupSchedule(ctx, "shop", "prod", "0 */6 * * *"); err != nil {
		t.Fatal(err)
	}
	if ops := te.RunScheduledBackups(ctx, at(2, 29), at(2, 30)); len(ops) != 0 {
		t.Fatalf("own schedule ignored: %+v", ops)
	}
	if ops := te.RunScheduledBackups(ctx, at(5, 59), at(6, 0)); len(ops) != 2 {
		t.Fatalf("own schedule not run at 06:00: %+v", ops)
	}
	te.SetBackupSchedule(ctx, "shop", "prod", "off")
	if ops := te.RunScheduledBackups(ctx, at(0, 0), at(23, 59)); len(ops) != 0 {
		t.Fatalf("schedule off still runs: %+v", ops)
	}
	spec, own, _ := te.BackupSchedule(ctx, "shop", "prod")
	te.SetBackupSchedule(ctx, "shop", "prod", "default")
	spec2, own2, _ := te.BackupSchedule(ctx, "shop", "prod")
	if spec != "off" || !own || spec2 != "30 2 * * *" || own2 {
		t.Fatalf("schedules: %q %v, %q %v", spec, own, spec2, own2)
	}
}

func TestRecoverUndoesARestoreThatDidNotSwap(t *testing.T) {
	te, vf := newBackupEngine(t, "shop")
	ctx := context.Background()
	inst := te.install("shop")
	te.wait(te.push("shop", te.commit("shop", volumeManifest, "one")))
	// As if the daemon stopped mid-restore: the name points at the imported
	// volume, a scratch volume and a running backup are left.
	vf.CreateVolume(ctx, "shop_prod_data_r99")
	vf.CreateVolume(ctx, "scratch_5_abcd")
	te.store.BeginVolumeRestore(ctx, inst.ID, "data", "shop_prod_data_r99", 99)
	b, _ := te.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindVolume, App: "shop", Environment: "prod", Volume: "data"})
	if err := te.RecoverBackups(ctx); err != nil {
		t.Fatal(err)
	}
	vols, _ := te.store.Volumes(ctx, inst.ID)
	if len(vols) != 1 || vols[0].IncusName != "shop_prod_data" || vols[0].RestoreOperation != 0 {
		t.Fatalf("volumes after recovery: %+v", vols)
	}
	if names, _ := vf.Volumes(ctx); strings.Join(names, " ") != "shop_prod_data" {
		t.Fatalf("incus volumes after recovery: %v", names)
	}
	if got, _ := te.store.BackupByID(ctx, b.ID); got.State != store.BackupFailed || !strings.Contains(got.Reason, "interrupted") {
		t.Fatalf("interrupted backup: %+v", got)
	}
}

// TestRestoreReadsTheAppAsADeployDoes: an app whose web comes from its
// Procfile, not its slipway.yml, is restored too.
func TestRestoreReadsTheAppAsADeployDoes(t *testing.T) {
	te, _ := newBackupEngine(t, "shop")
	ctx := context.Background()
	te.install("shop")
	os.WriteFile(filepath.Join(te.work, "Procfile"), []byte("web: serve\n"), 0o644)
	const manifest = "build: build-step\nvolumes:\n  data: /var/lib/data\nhealth:\n  timeout: 2s\n"
	if op := te.wait(te.push("shop", te.commit("shop", manifest, "one"))); op.Status != store.StatusSucceeded {
		t.Fatalf("deploy: %+v\n%s", op, te.log(op.ID))
	}
	op := te.wait(mustOp(te.Backup(ctx, "shop", "prod", "alice", store.OriginManual)))
	list, _ := te.Backups(ctx, "shop", "prod")
	if op.Status != store.StatusSucceeded || len(list) != 1 {
		t.Fatalf("backup: %+v %+v", op, list)
	}
	op = te.wait(mustOp(te.Restore(ctx, "shop", "prod", list[0].ID, "", "", "alice")))
	if op.Status != store.StatusSucceeded {
		t.Fatalf("restore of an app with a Procfile: %+v\n%s", op, te.log(op.ID))
	}
}
