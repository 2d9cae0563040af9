package database

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Restore replaces db's database in the live server with a dump's: the
// dump is checked against its manifest, restored into a new database
// beside the live one (everything owned by db's role, as apps made it),
// and only once that worked is the live one dropped (its connections ended)
// and the new one renamed into its place. A dump that does not restore
// leaves the live database as it was. The caller puts the attached apps
// into maintenance first: their connections are cut, and what they wrote
// since the dump is gone.
func (m *Manager) Restore(ctx context.Context, db Database, dump io.ReadSeeker, want Manifest) error {
	if err := db.Check(); err != nil {
		return err
	}
	if err := checkDump(dump, want); err != nil {
		return fmt.Errorf("restore %s: %w", db.Name, err)
	}
	start := time.Now()
	live, next := quoteIdent(db.DBName()), quoteIdent(db.DBName()+"_restoring")
	prepare := fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE);\nCREATE DATABASE %s OWNER %s;\n", next, next, quoteIdent(db.Role()))
	if _, err := m.psql(ctx, db.Instance(), "postgres", prepare); err != nil {
		return fmt.Errorf("restore %s: %w", db.Name, err)
	}
	// Everything restored belongs to db's own role, whichever server the dump
	// came from: a restore into a new database (--to-new) has another role.
	if err := m.pgRestore(ctx, db.Instance(), db.DBName()+"_restoring", dump, "--single-transaction", "--no-owner", "--no-acl", "--role="+db.Role()); err != nil {
		m.dropQuietly(ctx, db, next)
		return fmt.Errorf("restore %s: %w", db.Name, err)
	}
	swap := fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE);\nALTER DATABASE %s RENAME TO %s;\n", live, next, live)
	if _, err := m.psql(ctx, db.Instance(), "postgres", swap); err != nil {
		return fmt.Errorf("restore %s: swap in the restored database: %w", db.Name, err)
	}
	m.log.Info("Restored database", "database", db.Name, "bytes", want.Size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// dropQuietly drops a half-restored database; a failure costs only disk
// until the next restore drops it.
func (m *Manager) dropQuietly(ctx context.Context, db Database, quoted string) {
	if _, err := m.psql(context.WithoutCancel(ctx), db.Instance(), "postgres", "DROP DATABASE IF EXISTS "+quoted+" WITH (FORCE);"); err != nil {
		m.log.Warn("Drop a half-restored database", "database", db.Name, "err", err)
	}
}
