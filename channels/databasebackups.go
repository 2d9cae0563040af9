package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/channels/backup"
	"github.com/slipway-dev/slipway/channels/backup/atomicfile"
	"github.com/slipway-dev/slipway/channels/database"
	"github.com/slipway-dev/slipway/store"
)

// DatabaseDumps takes and proves database backups (database.Manager).
type DatabaseDumps interface {
	Dump(ctx context.Context, db database.Database, w io.Writer) (database.Manifest, error)
	Verify(ctx context.Context, dump io.ReadSeeker, want database.Manifest) error
	Restore(ctx context.Context, db database.Database, dump io.ReadSeeker, want database.Manifest) error
}

// manifestSuffix names the file beside a dump that holds its manifest.
const manifestSuffix = backup.DatabaseManifestSuffix

func (e *Engine) databaseDumps() (DatabaseDumps, error) {
	d, ok := e.cfg.Databases.(DatabaseDumps)
	if !ok {
		return nil, failf(ErrNotRunning, "this slipway backs up no databases")
	}
	return d, nil
}

// databaseWithDumps reads database name, where its backups can be made.
func (e *Engine) databaseWithDumps(ctx context.Context, name string) (DatabaseDumps, store.Database, error) {
	dumps, err := e.databaseDumps()
	if err != nil {
		return nil, store.Database{}, err
	}
	db, err := e.database(ctx, name)
	return dumps, db, err
}

// BackupDatabase starts a backup operation: a dump of the running server
// with every table's count and checksum, then verified by a restore into a
// scratch server.
func (e *Engine) BackupDatabase(ctx context.Context, name, user, origin string) (store.Operation, error) {
	dumps, db, err := e.databaseWithDumps(ctx, name)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpBackup, Environment: db.Environment, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		_, err := e.dumpDatabase(ctx, l, dumps, db, origin)
		return err
	})
}

// dumpDatabase writes a verified backup of db and records it.
func (e *Engine) dumpDatabase(ctx context.Context, l *opLog, dumps DatabaseDumps, db store.Database, origin string) (store.Backup, error) {
	b, err := e.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindDatabase, Environment: db.Environment,
		Volume: db.Name, Source: database.Database{Name: db.Name}.Instance(), Origin: origin, OperationID: l.ID()})
	if err != nil {
		return b, err
	}
	rel := filepath.Join("databases", db.Name, fmt.Sprintf("%s-%s-%d.dump", db.Name, b.CreatedAt.Format("20060102T150405Z"), b.ID))
	path := filepath.Join(e.backups.Dir(), rel)
	l.Logf("-----> Dumping database %s (pg_dump -Fc of one snapshot, every table counted and checksummed in it)", db.Name)
	m, err := e.writeDump(ctx, dumps, db.Name, path)
	if err != nil {
		e.store.SetBackupState(context.WithoutCancel(ctx), b.ID, store.BackupFailed, err.Error())
		return b, err
	}
	if err := e.store.SetBackupFile(ctx, b.ID, rel, m.Size, m.SHA256, len(m.Tables)); err != nil {
		return b, err
	}
	l.Logf("       %d bytes, %d tables, SHA-256 %s", m.Size, len(m.Tables), m.SHA256)
	return b, e.verifyDump(ctx, l, dumps, b.ID, path, m)
}

// writeDump writes the dump and its manifest beside it, each whole or not
// at all.
func (e *Engine) writeDump(ctx context.Context, dumps DatabaseDumps, name, path string) (database.Manifest, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return database.Manifest{}, err
	}
	var m database.Manifest
	err := atomicfile.Write(path, 0o600, func(w io.Writer) error {
		var err error
		m, err = dumps.Dump(ctx, database.Database{Name: name}, w)
		return err
	})
	if err != nil {
		return m, err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	return m, atomicfile.Write(path+manifestSuffix, 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// verifyDump restores the dump into a scratch server and records the
// outcome; the backup counts as verified only when every table matches.
func (e *Engine) verifyDump(ctx context.Context, l *opLog, dumps DatabaseDumps, id int64, path string, m database.Manifest) error {
	l.Logf("-----> Verifying: restoring it into a scratch Postgres, counting and checksumming every table")
	start := time.Now()
	f, err := os.Open(path)
	if err == nil {
		defer f.Close()
		err = dumps.Verify(ctx, f, m)
	}
	if err != nil {
		e.store.SetBackupState(context.WithoutCancel(ctx), id, store.BackupFailed, err.Error())
		return fmt.Errorf("backup %d not verified: %w", id, err)
	}
	if err := e.store.SetBackupState(ctx, id, store.BackupVerified, ""); err != nil {
		return err
	}
	l.Logf("       Backup %d verified: %d tables match (%s)", id, len(m.Tables), time.Since(start).Round(time.Millisecond))
	return nil
}

// DatabaseBackups lists a database's backups, newest first.
func (e *Engine) DatabaseBackups(ctx context.Context, name string) ([]store.Backup, error) {
	if _, err := e.database(ctx, name); err != nil {
		return nil, err
	}
	return e.store.Backups(ctx, store.BackupFilter{Kind: store.BackupKindDatabase, Volume: name})
}

// databaseBackup reads backup id of database name with its manifest.
func (e *Engine) databaseBackup(ctx context.Context, name, id string) (store.Backup, string, database.Manifest, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	b, berr := e.store.BackupByID(ctx, n)
	if err != nil || berr != nil || b.Kind != store.BackupKindDatabase || b.Volume != name {
		return b, "", database.Manifest{}, failf(ErrUnknownBackup, "database %s has no backup %s (db backups %s lists them)", name, id, name)
	}
	path := filepath.Join(e.backups.Dir(), b.File)
	var m database.Manifest
	data, err := os.ReadFile(path + manifestSuffix)
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil {
		return b, path, m, failf(ErrUnknownBackup, "backup %d of %s has no readable manifest beside its dump: %v", b.ID, name, err)
	}
	return b, path, m, nil
}

// VerifyDatabaseBackup proves a database backup again.
func (e *Engine) VerifyDatabaseBackup(ctx context.Context, name, id, user string) (store.Operation, error) {
	dumps, db, err := e.databaseWithDumps(ctx, name)
	if err != nil {
		return store.Operation{}, err
	}
	b, path, m, err := e.databaseBackup(ctx, name, id)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpBackup, Environment: db.Environment, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.verifyDump(ctx, l, dumps, b.ID, path, m)
	})
}

// RestoreDatabase puts a backup's data back into the live database: a
// safety backup first, the attached installations in maintenance for the
// swap, and the log says what is lost. With toNew, it goes into a new
// database of that name in the same environment instead, and the old one
// is left as it is.
func (e *Engine) RestoreDatabase(ctx context.Context, name, id, toNew, user string) (store.Operation, error) {
	dumps, db, err := e.databaseWithDumps(ctx, name)
	if err != nil {
		return store.Operation{}, err
	}
	b, path, m, err := e.databaseBackup(ctx, name, id)
	if err != nil {
		return store.Operation{}, err
	}
	if toNew != "" {
		return e.restoreToNew(ctx, dumps, db, b, path, m, toNew, user)
	}
	op := store.Operation{Type: store.OpRestore, Environment: db.Environment, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		l.Logf("-----> Restoring database %s from backup %d, taken %s: what was written since is lost (the safety backup keeps it)",
			name, b.ID, b.CreatedAt.UTC().Format(time.RFC3339))
		safety, err := e.dumpDatabase(ctx, l, dumps, db, store.OriginSafety)
		if err != nil {
			return fmt.Errorf("the safety backup failed, nothing was restored: %w", err)
		}
		l.Logf("       Safety backup %d taken", safety.ID)
		hosts, err := e.databaseMaintenance(ctx, l, name, true)
		defer e.databaseMaintenanceOff(l, hosts)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := dumps.Restore(ctx, database.Database{Name: name}, f, m); err != nil {
			return fmt.Errorf("restore of backup %d refused, the data is as it was: %w", b.ID, err)
		}
		l.Logf("-----> Database %s holds backup %d's data: %d tables", name, b.ID, len(m.Tables))
		return nil
	})
}

// databaseMaintenance turns the maintenance page on for the names of the
// installations attached to database name, and returns them.
func (e *Engine) databaseMaintenance(ctx context.Context, l *opLog, name string, on bool) ([]string, error) {
	attached, err := e.store.Attachments(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, a := range attached {
		inst, err := e.store.InstallationByID(ctx, a.InstallationID)
		if err != nil || inst.Maintenance != nil {
			continue // gone, or in maintenance already: left as it is
		}
		names, err := e.hostsOf(ctx, inst)
		if err != nil {
			return hosts, err
		}
		for _, h := range names {
			if err := e.router.Maintenance(ctx, h, true, "Restoring a database: back in a moment."); err != nil {
				return hosts, err
			}
			hosts = append(hosts, h)
		}
		l.Logf("       %s in maintenance for the swap", inst.Resource())
	}
	return hosts, nil
}

func (e *Engine) databaseMaintenanceOff(l *opLog, hosts []string) {
	for _, h := range hosts {
		if err := e.router.Maintenance(context.Background(), h, false, ""); err != nil {
			l.Logf("       Could not end maintenance of %s: %v", h, err)
		}
	}
	if len(hosts) > 0 {
		l.Logf("       Maintenance over")
	}
}

// BackUpDueDatabases starts a backup of every running database whose
// schedule (its own, or the default) fires in (from, to], each followed by
// a purge of its backups past retention; the cron job calls it each minute.
func (e *Engine) BackUpDueDatabases(ctx context.Context, from, to time.Time, defaultSpec string) []store.Operation {
	if _, err := e.databaseDumps(); err != nil {
		return nil
	}
	dbs, err := e.store.Databases(ctx)
	if err != nil {
		e.log.Error("Scheduled database backups", "err", err)
		return nil
	}
	var ops []store.Operation
	for _, db := range dbs {
		spec := db.Schedule
		if spec == "" {
			spec = defaultSpec
		}
		if db.State != store.DatabaseRunning || !backup.DueIn(spec, from, to) {
			continue
		}
		op, err := e.BackupDatabase(ctx, db.Name, "slipway", store.OriginScheduled)
		if err != nil {
			e.log.Error("Scheduled database backup", "database", db.Name, "err", err)
			continue
		}
		ops = append(ops, op)
		if op, err := e.PurgeDatabase(ctx, db.Name, "slipway"); err == nil {
			ops = append(ops, op)
		}
	}
	return ops
}

// PurgeDatabase starts a purge of a database's backups past retention.
func (e *Engine) PurgeDatabase(ctx context.Context, name, user string) (store.Operation, error) {
	db, err := e.database(ctx, name)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpPurge, Environment: db.Environment, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		return e.backups.PurgeDatabase(ctx, l, name)
	})
}

// SetDatabaseSchedule sets when a database is backed up: a cron spec,
// "off", or "default".
func (e *Engine) SetDatabaseSchedule(ctx context.Context, name, spec string) (string, error) {
	if _, err := e.database(ctx, name); err != nil {
		return "", err
	}
	parsed, err := backup.ParseSchedule(spec)
	if err != nil {
		return "", failf(ErrInvalidName, "%v", err)
	}
	return parsed, e.store.SetDatabaseSchedule(ctx, name, parsed)
}

// restoreToNew provisions database toNew beside db and restores backup b
// into it.
func (e *Engine) restoreToNew(ctx context.Context, dumps DatabaseDumps, db store.Database, b store.Backup, path string, m database.Manifest, toNew, user string) (store.Operation, error) {
	servers, err := e.databaseServers()
	if err != nil {
		return store.Operation{}, err
	}
	version, err := e.recordNewDatabase(ctx, toNew, db.Environment, db.Version)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpRestore, Environment: db.Environment, Database: toNew, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		l.Logf("-----> Restoring backup %d of %s (taken %s) into a new database %s; %s is left as it is",
			b.ID, db.Name, b.CreatedAt.UTC().Format(time.RFC3339), toNew, db.Name)
		if err := e.provision(ctx, l, servers, toNew, db.Environment, version); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := dumps.Restore(ctx, database.Database{Name: toNew}, f, m); err != nil {
			return fmt.Errorf("restore of backup %d into %s refused: %w; %s stays empty (db deprovision %s)", b.ID, toNew, err, toNew, toNew)
		}
		l.Logf("-----> Database %s holds backup %d's data: %d tables; attach it: db attach %s APP/%s", toNew, b.ID, len(m.Tables), toNew, db.Environment)
		return nil
	})
}
