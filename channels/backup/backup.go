// Package backup takes, checks, restores and retires the backups of
// installations' persistent volumes and of slipway's own store.
//
// A backup exports a volume to a gzip tarball in the backup directory and
// records its size and SHA-256; then it is test-restored into a scratch
// volume whose files' checksums must match those in the tarball, and only
// then is it "verified". The store is backed up with VACUUM INTO and checked
// with SQLite's integrity_check. Retention keeps the newest backup of each
// of the last KeepDaily days and KeepWeekly ISO weeks.
//
// The operation engine (package channels) runs this work inside its
// operations. As Incus's internal/server/backup does with its daemon, this
// package knows the engine and the runtime only through the small interfaces
// of interfaces.go, and imports neither: channels imports backup.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/channels/backup/sysarchive"
	"github.com/slipway-dev/slipway/store"
)

// Config is the backup configuration.
type Config struct {
	Dir          string // backup files (the engine's default: <data>/backups)
	KeepDaily    int    // newest backup of each of the last N days with one
	KeepWeekly   int    // newest backup of each of the last M weeks with one
	Schedule     string // default cron schedule (UTC) of installations with volumes; "" or "off": none
	ScratchImage string // image of the instance that checksums a test restore (the engine's default: its DefaultImage)
	// A system backup archives what System names in DataDir.
	DataDir string
	System  sysarchive.Layout
}

// retention is KeepDaily and KeepWeekly, 7 and 4 when neither is set.
func (c Config) retention() (daily, weekly int) {
	if c.KeepDaily == 0 && c.KeepWeekly == 0 {
		return 7, 4
	}
	return c.KeepDaily, c.KeepWeekly
}

// ErrNoVolumeSupport means the runtime cannot make volumes.
var ErrNoVolumeSupport = errors.New("this runtime has no persistent volumes")

// LabelScratch marks the runtime's short-lived checksum instances (the Incus
// runtime's container.ScratchLabel).
const LabelScratch = "scratch"

// scratchPrefix starts the names of test-restore volumes; no installation
// volume starts so, since app names cannot hold an underscore.
const scratchPrefix = "scratch_"

// Deps is what the backup work runs on.
type Deps struct {
	Store     *store.Store
	Volumes   Volumes   // nil: the runtime has no volumes
	Instances Instances // the runtime's instances, for recovery
	Logger    *slog.Logger
	// Cancelled is what the error of a step a cancel stopped wraps: the
	// engine's ErrCancelled.
	Cancelled error
	// OperationLabel is the instance label naming the operation that made
	// the instance (the engine's LabelOperation).
	OperationLabel string
}

// Manager does the work of the engine's backup, restore and purge
// operations, and of its recovery after a crash.
type Manager struct {
	cfg     Config
	store   *store.Store
	vols    Volumes
	rt      Instances
	log     *slog.Logger
	cancel  error
	opLabel string
}

// New returns a Manager of the backups in cfg.Dir.
func New(cfg Config, d Deps) *Manager {
	if d.Cancelled == nil {
		d.Cancelled = errors.New("cancelled")
	}
	return &Manager{cfg: cfg, store: d.Store, vols: d.Volumes, rt: d.Instances, log: d.Logger,
		cancel: d.Cancelled, opLabel: d.OperationLabel}
}

// Dir is the backup directory.
func (m *Manager) Dir() string { return m.cfg.Dir }

// Path is where a backup's file is ("" when it has none).
func (m *Manager) Path(b store.Backup) string {
	if b.File == "" {
		return ""
	}
	return filepath.Join(m.cfg.Dir, b.File)
}

// fail records why a backup failed and returns err.
func (m *Manager) fail(b store.Backup, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := m.store.SetBackupState(ctx, b.ID, store.BackupFailed, err.Error()); serr != nil {
		m.log.Error("record failed backup", "backup", b.ID, "err", serr)
	}
	return err
}

// stepError words a runtime failure for the log, naming a cancel as such.
func (m *Manager) stepError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, m.cancel)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// cancelled names a cancel as such, and leaves other errors as they are.
func (m *Manager) cancelled(ctx context.Context, what string, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, m.cancel)
	}
	return err
}
