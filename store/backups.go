package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Backup kinds.
const (
	BackupKindVolume   = "volume"   // an installation's persistent volume
	BackupKindStore    = "store"    // this SQLite store
	BackupKindSystem   = "system"   // store, keys and repositories in one archive
	BackupKindDatabase = "database" // a Postgres dump (Volume holds the database's name)
)

// Backup states. A backup is "verified" once a test restore of its file
// matched what was backed up, "failed" when that did not happen (the reason
// says why), and "running" while it is being taken.
const (
	BackupRunning  = "running"
	BackupVerified = "verified"
	BackupFailed   = "failed"
)

// Backup origins.
const (
	OriginManual    = "manual"
	OriginScheduled = "scheduled"
	OriginSafety    = "safety" // taken by a restore before it replaces the data
)

// Volume is the Incus custom volume holding one of an installation's
// manifest volumes.
type Volume struct {
	InstallationID int64
	Name           string // as in slipway.yml
	IncusName      string
	CreatedAt      time.Time
	// While a restore points the name at a new volume: the one in use
	// before, and the restore's operation.
	Previous         string
	RestoreOperation int64
}

// Backup is one backup file with its checksum and the result of its test restore.
type Backup struct {
	ID             int64
	Kind           string
	InstallationID int64 // 0 for the store, or once the installation is gone
	App            string
	Environment    string
	Volume         string // manifest volume name
	Source         string // Incus volume it was taken from
	File           string // relative to the backup directory
	Size           int64
	SHA256         string
	Files          int
	State          string
	Reason         string
	Origin         string
	OperationID    int64
	CreatedAt      time.Time
	VerifiedAt     time.Time
}

// Resource names what was backed up: APP/ENV, "store" or "system".
func (b Backup) Resource() string {
	if b.Kind == BackupKindStore || b.Kind == BackupKindSystem {
		return b.Kind
	}
	if b.Kind == BackupKindDatabase {
		return "database " + b.Volume
	}
	return b.App + "/" + b.Environment
}

// Volumes lists an installation's volumes by name, or every installation's (0).
func (s *Store) Volumes(ctx context.Context, installationID int64) ([]Volume, error) {
	q := `SELECT installation_id, name, incus_name, created_at, previous, restore_operation FROM volumes`
	var args []any
	if installationID != 0 {
		q += ` WHERE installation_id = ?`
		args = append(args, installationID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY installation_id, name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Volume
	for rows.Next() {
		var v Volume
		var created sql.NullString
		if err := rows.Scan(&v.InstallationID, &v.Name, &v.IncusName, &created, &v.Previous, &v.RestoreOperation); err != nil {
			return nil, err
		}
		v.CreatedAt = parseTime(created)
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetVolume records (or repoints) which Incus volume holds an installation's volume name.
func (s *Store) SetVolume(ctx context.Context, installationID int64, name, incusName string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO volumes (installation_id, name, incus_name, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (installation_id, name) DO UPDATE SET incus_name = excluded.incus_name, created_at = excluded.created_at`,
		installationID, name, incusName, s.stamp())
	return wrapError(err)
}

// BeginVolumeRestore points an installation's volume name at a restored
// volume, remembering the one in use before until FinishVolumeRestore or
// AbortVolumeRestore.
func (s *Store) BeginVolumeRestore(ctx context.Context, installationID int64, name, incusName string, opID int64) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO volumes (installation_id, name, incus_name, created_at, previous, restore_operation) VALUES (?, ?, ?, ?, '', ?)
		ON CONFLICT (installation_id, name) DO UPDATE SET previous = incus_name, incus_name = excluded.incus_name,
			created_at = excluded.created_at, restore_operation = excluded.restore_operation`,
		installationID, name, incusName, s.stamp(), opID)
	return wrapError(err)
}

// FinishVolumeRestore keeps the restored volume.
func (s *Store) FinishVolumeRestore(ctx context.Context, installationID int64, name string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE volumes SET previous = '', restore_operation = 0 WHERE installation_id = ? AND name = ?`, installationID, name)
	return wrapError(err)
}

// AbortVolumeRestore points the name back at the volume in use before the
// restore (or at none, when there was none).
func (s *Store) AbortVolumeRestore(ctx context.Context, installationID int64, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM volumes WHERE installation_id = ? AND name = ? AND restore_operation != 0 AND previous = ''`, installationID, name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE volumes SET incus_name = previous, previous = '', restore_operation = 0
			WHERE installation_id = ? AND name = ? AND restore_operation != 0`, installationID, name)
		return err
	})
}

// CreateBackup records a backup being taken and returns it with its ID and time.
func (s *Store) CreateBackup(ctx context.Context, b Backup) (Backup, error) {
	b.State = BackupRunning
	b.CreatedAt = s.now().UTC()
	if b.Origin == "" {
		b.Origin = OriginManual
	}
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO backups (kind, installation_id, app, environment, volume, source, state, origin, operation_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Kind, nullID(b.InstallationID), b.App, b.Environment, b.Volume, b.Source, b.State, b.Origin, nullID(b.OperationID), formatTime(b.CreatedAt))
	if err != nil {
		return Backup{}, wrapError(err)
	}
	b.ID, _ = res.LastInsertId()
	return b, nil
}

// SetBackupFile records the written file, its size, SHA-256 and file count.
func (s *Store) SetBackupFile(ctx context.Context, id int64, file string, size int64, sha string, files int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE backups SET file = ?, size = ?, sha256 = ?, files = ? WHERE id = ?`, file, size, sha, files, id)
	return wrapError(err)
}

// SetBackupState records the outcome of a backup's verification.
func (s *Store) SetBackupState(ctx context.Context, id int64, state, reason string) error {
	var verified any
	if state == BackupVerified {
		verified = s.stamp()
	}
	_, err := s.db.ExecContext(ctx, `UPDATE backups SET state = ?, reason = ?, verified_at = coalesce(?, verified_at) WHERE id = ?`, state, reason, verified, id)
	return wrapError(err)
}

// BackupByID returns one backup.
func (s *Store) BackupByID(ctx context.Context, id int64) (Backup, error) {
	return scanBackup(s.db.QueryRowContext(ctx, `SELECT `+backupColumns+` FROM backups WHERE id = ?`, id))
}

// BackupFilter selects backups; empty fields match everything.
type BackupFilter struct {
	Kind        string
	App         string
	Environment string
	Volume      string
}

// Backups lists backups, newest first.
func (s *Store) Backups(ctx context.Context, f BackupFilter) ([]Backup, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, val string }{{"kind", f.Kind}, {"app", f.App}, {"environment", f.Environment}, {"volume", f.Volume}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	q := `SELECT ` + backupColumns + ` FROM backups`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at DESC, id DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Backup
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBackup forgets a backup (its file is the caller's to remove).
func (s *Store) DeleteBackup(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM backups WHERE id = ?`, id)
	return wrapError(err)
}

// InterruptBackups marks backups left running (the daemon stopped while it
// took them) as failed and returns them.
func (s *Store) InterruptBackups(ctx context.Context, reason string) ([]Backup, error) {
	list, err := s.Backups(ctx, BackupFilter{})
	if err != nil {
		return nil, err
	}
	var out []Backup
	for _, b := range list {
		if b.State != BackupRunning {
			continue
		}
		if err := s.SetBackupState(ctx, b.ID, BackupFailed, reason); err != nil {
			return out, err
		}
		b.State, b.Reason = BackupFailed, reason
		out = append(out, b)
	}
	return out, nil
}

// BackupStats counts backups by state and returns when the newest verified
// one was verified (zero when none was).
func (s *Store) BackupStats(ctx context.Context) (map[string]int, time.Time, error) {
	counts := map[string]int{BackupVerified: 0, BackupFailed: 0}
	rows, err := s.db.QueryContext(ctx, `SELECT state, count(*) FROM backups GROUP BY state`)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, time.Time{}, err
		}
		counts[state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, err
	}
	var last sql.NullString
	if err := s.db.QueryRowContext(ctx, `SELECT max(verified_at) FROM backups WHERE state = ?`, BackupVerified).Scan(&last); err != nil {
		return nil, time.Time{}, err
	}
	return counts, parseTime(last), nil
}

// BackupSchedule returns an installation's own backup schedule, "" when it
// follows the daemon's default.
func (s *Store) BackupSchedule(ctx context.Context, installationID int64) (string, error) {
	var spec string
	err := s.db.QueryRowContext(ctx, `SELECT schedule FROM backup_schedules WHERE installation_id = ?`, installationID).Scan(&spec)
	if err = wrapError(err); errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return spec, err
}

// SetBackupSchedule sets an installation's own schedule; "" returns it to the default.
func (s *Store) SetBackupSchedule(ctx context.Context, installationID int64, spec string) error {
	if spec == "" {
		_, err := s.db.ExecContext(ctx, `DELETE FROM backup_schedules WHERE installation_id = ?`, installationID)
		return wrapError(err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO backup_schedules (installation_id, schedule, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (installation_id) DO UPDATE SET schedule = excluded.schedule, updated_at = excluded.updated_at`,
		installationID, spec, s.stamp())
	return wrapError(err)
}

// BackupTo writes a consistent copy of the live database to path (which must
// not exist) with VACUUM INTO: it reads one snapshot inside a transaction,
// so writers carry on and the copy has no WAL to go with it.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("copy the store to %s: %w", path, err)
	}
	return nil
}

// CheckDatabase opens a copy of the store read-only and checks it: SQLite's
// integrity_check must answer "ok". It returns the copy's schema version.
func CheckDatabase(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return 0, fmt.Errorf("integrity check: %w", err)
	}
	if result != "ok" {
		return 0, fmt.Errorf("integrity check: %s", result)
	}
	var version sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(version.Int64), nil
}

// SchemaVersion is the newest migration applied to this store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var version sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version)
	return int(version.Int64), err
}

const backupColumns = `id, kind, coalesce(installation_id, 0), app, environment, volume, source, file, size, sha256, files, state, reason, origin, coalesce(operation_id, 0), created_at, verified_at`

func scanBackup(row scanner) (Backup, error) {
	var b Backup
	var created, verified sql.NullString
	err := row.Scan(&b.ID, &b.Kind, &b.InstallationID, &b.App, &b.Environment, &b.Volume, &b.Source, &b.File, &b.Size,
		&b.SHA256, &b.Files, &b.State, &b.Reason, &b.Origin, &b.OperationID, &created, &verified)
	if err != nil {
		return Backup{}, wrapError(err)
	}
	b.CreatedAt, b.VerifiedAt = parseTime(created), parseTime(verified)
	return b, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// RecordCopy records that backup id was copied to target and read back
// there with sha.
func (s *Store) RecordCopy(ctx context.Context, id int64, target, sha string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO backup_copies (backup_id, target, sha256, copied_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (backup_id, target) DO UPDATE SET sha256 = excluded.sha256, copied_at = excluded.copied_at`, id, target, sha, s.stamp())
	return wrapError(err)
}

// Uncopied lists the verified backups not yet copied to target, oldest first.
func (s *Store) Uncopied(ctx context.Context, target string) ([]Backup, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+backupColumns+` FROM backups WHERE state = ? AND file != ''
		AND id NOT IN (SELECT backup_id FROM backup_copies WHERE target = ?) ORDER BY created_at, id`, BackupVerified, target)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Backup
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Copies returns the targets backup id was copied to.
func (s *Store) Copies(ctx context.Context, id int64) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target FROM backup_copies WHERE backup_id = ? ORDER BY target`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
