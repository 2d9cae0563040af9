package database

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
)

// verifyDB is the database a scratch server restores a dump into.
const verifyDB = "verify"

// Verify proves a dump: its bytes are those the manifest recorded
// (SHA-256, checked first), pg_restore restores it into a scratch server
// (an instance of the Postgres image, labelled scratch=database so a crash
// leaves it findable, deleted before Verify returns), and every table there
// holds the count and checksum of rows the manifest recorded. An error
// says which check failed and, for rows, exactly which table.
func (m *Manager) Verify(ctx context.Context, dump io.ReadSeeker, want Manifest) error {
	if err := checkDump(dump, want); err != nil {
		return err
	}
	start := time.Now()
	name := "db-verify-" + container.RandomSuffix()
	if err := m.rt.LaunchWithDevices(ctx, name, m.image, map[string]string{LabelScratch: "database", LabelDatabase: want.Database}, nil); err != nil {
		return fmt.Errorf("verify: scratch server: %w", err)
	}
	defer m.deleteScratch(ctx, name)
	if err := m.startServer(ctx, server{instance: name, socketDir: localDir, scratch: true}); err != nil {
		return fmt.Errorf("verify: scratch server: %w", err)
	}
	if _, err := m.psql(ctx, name, "postgres", "CREATE DATABASE "+verifyDB+";"); err != nil {
		return fmt.Errorf("verify: scratch server: %w", err)
	}
	// Owners and grants name roles of the live server; rows do not need
	// them.
	if err := m.pgRestore(ctx, name, verifyDB, dump, "--no-owner", "--no-acl"); err != nil {
		return err
	}
	s := m.openSession(ctx, name, verifyDB)
	defer s.end()
	out, err := s.query(rowSettings + tablesSQL)
	if err != nil {
		return fmt.Errorf("verify: read the restored tables: %w", err)
	}
	got, err := parseTables(out)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := compareTables(want.Tables, got); err != nil {
		return err
	}
	m.log.Info("Verified dump", "database", want.Database, "tables", len(got), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkDump reads the whole dump against the manifest's size and SHA-256,
// then rewinds it.
func checkDump(dump io.ReadSeeker, want Manifest) error {
	if _, err := dump.Seek(0, io.SeekStart); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(h, dump)
	if err != nil {
		return fmt.Errorf("read the dump: %w", err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != want.SHA256 || n != want.Size {
		return fmt.Errorf("%w: its SHA-256 is %.16s… (%d bytes), the backup recorded %.16s… (%d bytes)", ErrDamaged, sum, n, want.SHA256, want.Size)
	}
	_, err = dump.Seek(0, io.SeekStart)
	return err
}

// pgRestore feeds the dump to pg_restore in the instance, stopping at its
// first error, which it returns as ErrNotRestored with pg_restore's own line.
func (m *Manager) pgRestore(ctx context.Context, instance, db string, dump io.Reader, flags ...string) error {
	argv := append([]string{"pg_restore", "--exit-on-error", "-h", "127.0.0.1", "-U", "postgres", "-d", db}, flags...)
	var errs lockedBuffer
	code, err := m.rt.ExecStreams(ctx, instance, argv, nil, dump, io.Discard, &errs)
	if err != nil {
		return fmt.Errorf("pg_restore: %w", err)
	}
	if code != 0 {
		return fmt.Errorf("%w: %s", ErrNotRestored, why(errs.String(), code)) // the line names pg_restore
	}
	return nil
}

// deleteScratch deletes a scratch server even when ctx has ended.
func (m *Manager) deleteScratch(ctx context.Context, name string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := m.rt.Delete(dctx, name); err != nil {
		m.log.Warn("Could not delete a scratch database server", "instance", name, "err", err)
	}
}

// DeleteScratch deletes the scratch servers a Verify cut short (the daemon
// was killed) left behind: for the daemon's start.
func (m *Manager) DeleteScratch(ctx context.Context) error {
	list, err := m.rt.List(ctx)
	if err != nil {
		return err
	}
	for _, in := range list {
		if in.Labels[LabelScratch] == "database" {
			m.deleteScratch(ctx, in.Name)
		}
	}
	return nil
}
