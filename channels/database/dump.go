package database

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"time"
)

// snapshotRe is what pg_export_snapshot returns ("00000003-0000001B-1").
var snapshotRe = regexp.MustCompile(`^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$`)

// Dump writes a pg_dump -Fc of db's running server to w and returns its
// manifest. It holds a REPEATABLE READ transaction open in a psql session,
// exports its snapshot, reads every table's count and checksum in it, and
// has pg_dump (run inside the instance, its output streamed out) dump that
// same snapshot: the manifest describes exactly the rows in the dump, while
// the apps go on writing.
func (m *Manager) Dump(ctx context.Context, db Database, w io.Writer) (Manifest, error) {
	if err := db.Check(); err != nil {
		return Manifest{}, err
	}
	start := time.Now()
	s := m.openSession(ctx, db.Instance(), db.DBName())
	defer s.end()
	snapshot, tables, err := snapshotTables(s)
	if err != nil {
		return Manifest{}, fmt.Errorf("dump %s: %w", db.Name, err)
	}
	man := Manifest{Database: db.Name, Created: time.Now().UTC(), Tables: tables}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	var errs lockedBuffer
	argv := []string{"pg_dump", "-Fc", "--snapshot=" + snapshot, "-h", "127.0.0.1", "-U", "postgres", "-d", db.DBName()}
	code, err := m.rt.ExecStreams(ctx, db.Instance(), argv, nil, nil, cw, &errs)
	if err == nil && code != 0 {
		err = fmt.Errorf("%w: pg_dump: %s", ErrServer, why(errs.String(), code))
	}
	if err == nil && cw.err != nil {
		err = cw.err // w refused it: the caller's disk, say
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("dump %s: %w", db.Name, err)
	}
	// The snapshot only had to outlive pg_dump's start; ending the
	// transaction after it is the simple way to be sure.
	if err := s.close("COMMIT;"); err != nil {
		return Manifest{}, fmt.Errorf("dump %s: %w", db.Name, err)
	}
	man.Size, man.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	m.log.Info("Dumped database", "database", db.Name, "bytes", man.Size, "tables", len(tables), "took", time.Since(start).Round(time.Millisecond))
	return man, nil
}

// snapshotTables opens the transaction, exports its snapshot and reads the
// tables in it.
func snapshotTables(s *session) (string, []Table, error) {
	out, err := s.query(rowSettings + "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSELECT pg_export_snapshot();")
	if err != nil {
		return "", nil, err
	}
	if len(out) != 1 || !snapshotRe.MatchString(out[0]) {
		return "", nil, fmt.Errorf("%w: unexpected snapshot %q", ErrServer, out)
	}
	rows, err := s.query(tablesSQL)
	if err != nil {
		return "", nil, err
	}
	tables, err := parseTables(rows)
	return out[0], tables, err
}

// countingWriter counts what reaches w and keeps w's first error. After
// one it drops the rest instead of failing: a stream Incus cannot write
// would leave pg_dump blocked on a full pipe, its exec never ending, while
// a drained one ends and Dump reports the error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return len(p), nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return len(p), nil
}
