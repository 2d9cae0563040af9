package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Operation statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Operation is one recorded change.
type Operation struct {
	ID             int64
	Type           OpType
	Status         string
	App            string
	Environment    string
	InstallationID int64  // 0 when not about an installation or the installation is gone
	Database       string // the database it is about, if any
	User           string
	Commit         string
	Channel        string
	Reason         string // why it failed or was cancelled
	Cleanup        string // the work after its end: "", CleanupPending, CleanupDone or CleanupFailed+reason
	QueuedAt       time.Time
	StartedAt      time.Time
	FinishedAt     time.Time
}

// Resource names what the operation is about: APP/ENV, APP or ENV.
func (o Operation) Resource() string {
	switch {
	case o.Database != "":
		return "database " + o.Database
	case o.App != "" && o.Environment != "":
		return o.App + "/" + o.Environment
	case o.App != "":
		return o.App
	default:
		return o.Environment
	}
}

// Done reports whether the operation has ended.
func (o Operation) Done() bool {
	return o.Status == StatusSucceeded || o.Status == StatusFailed || o.Status == StatusCancelled
}

// CreateOperation records a queued operation and returns it with its ID.
func (s *Store) CreateOperation(ctx context.Context, op Operation) (Operation, error) {
	op.Status = StatusQueued
	op.QueuedAt = s.now().UTC()
	var inst any
	if op.InstallationID != 0 {
		inst = op.InstallationID
	}
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO operations (type, status, app, environment, installation_id, database, user, commit_sha, channel, queued_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		op.Type, op.Status, op.App, op.Environment, inst, op.Database, op.User, op.Commit, op.Channel, formatTime(op.QueuedAt))
	if err != nil {
		return Operation{}, wrapError(err)
	}
	op.ID, _ = res.LastInsertId()
	return op, nil
}

// StartOperation marks an operation running.
func (s *Store) StartOperation(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET status = ?, started_at = ? WHERE id = ?`, StatusRunning, s.stamp(), id)
	return wrapError(err)
}

// SetOperationCommit records the commit an operation resolved to.
func (s *Store) SetOperationCommit(ctx context.Context, id int64, commit string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET commit_sha = ? WHERE id = ?`, commit, id)
	return wrapError(err)
}

// FinishOperation records an operation's final status and, when it did not succeed, why.
func (s *Store) FinishOperation(ctx context.Context, id int64, status, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET status = ?, reason = ?, finished_at = ? WHERE id = ?`, status, reason, s.stamp(), id)
	return wrapError(err)
}

// InterruptOperations fails every operation left queued or running by a previous
// process and returns them.
func (s *Store) InterruptOperations(ctx context.Context, reason string) ([]Operation, error) {
	ops, err := s.Operations(ctx, OperationFilter{Statuses: []string{StatusQueued, StatusRunning}})
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if err := s.FinishOperation(ctx, op.ID, StatusFailed, reason); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// Operation returns one operation.
func (s *Store) Operation(ctx context.Context, id int64) (Operation, error) {
	return scanOperation(s.db.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE id = ?`, id))
}

// OperationFilter narrows Operations; zero fields match everything.
type OperationFilter struct {
	App            string
	Environment    string
	Environments   []string // when not nil, only these environments (access control)
	InstallationID int64
	Type           string
	User           string
	Statuses       []string
	Since          time.Time
	Until          time.Time
	Limit          int
	BeforeID       int64 // paging: only operations older than this ID
}

const operationColumns = `id, type, status, app, environment, coalesce(installation_id, 0), database, user, commit_sha, channel, reason, cleanup, queued_at, started_at, finished_at`

// Operations lists operations newest first.
func (s *Store) Operations(ctx context.Context, f OperationFilter) ([]Operation, error) {
	var where []string
	var args []any
	add := func(cond string, arg ...any) {
		where = append(where, cond)
		args = append(args, arg...)
	}
	if f.App != "" {
		add("app = ?", f.App)
	}
	if f.Environment != "" {
		add("environment = ?", f.Environment)
	}
	if f.Environments != nil {
		if len(f.Environments) == 0 {
			return nil, nil
		}
		ph := strings.TrimSuffix(strings.Repeat("?,", len(f.Environments)), ",")
		var a []any
		for _, e := range f.Environments {
			a = append(a, e)
		}
		add("environment IN ("+ph+")", a...)
	}
	if f.InstallationID != 0 {
		add("installation_id = ?", f.InstallationID)
	}
	if f.Type != "" {
		add("type = ?", f.Type)
	}
	if f.User != "" {
		add("user = ?", f.User)
	}
	if len(f.Statuses) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?,", len(f.Statuses)), ",")
		var a []any
		for _, st := range f.Statuses {
			a = append(a, st)
		}
		add("status IN ("+ph+")", a...)
	}
	if !f.Since.IsZero() {
		add("queued_at >= ?", formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("queued_at < ?", formatTime(f.Until))
	}
	if f.BeforeID != 0 {
		add("id < ?", f.BeforeID)
	}
	q := `SELECT ` + operationColumns + ` FROM operations`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Operation
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, rows.Err()
}

func scanOperation(row scanner) (Operation, error) {
	var op Operation
	var queued, started, finished sql.NullString
	err := row.Scan(&op.ID, &op.Type, &op.Status, &op.App, &op.Environment, &op.InstallationID, &op.Database, &op.User,
		&op.Commit, &op.Channel, &op.Reason, &op.Cleanup, &queued, &started, &finished)
	if err != nil {
		return Operation{}, wrapError(err)
	}
	op.QueuedAt, op.StartedAt, op.FinishedAt = parseTime(queued), parseTime(started), parseTime(finished)
	return op, nil
}

// LogLine is one line of an operation's log.
type LogLine struct {
	Seq  int64
	At   time.Time
	Text string
}

// AppendLogs stores lines of an operation's log, in order, in one transaction.
func (s *Store) AppendLogs(ctx context.Context, opID int64, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM operation_logs WHERE operation_id = ?`, opID).Scan(&last); err != nil {
			return wrapError(err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO operation_logs (operation_id, seq, at, line) VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		at := s.stamp()
		for i, line := range lines {
			if _, err := stmt.ExecContext(ctx, opID, last+int64(i)+1, at, line); err != nil {
				return wrapError(err)
			}
		}
		return nil
	})
}

// TrimLog drops the oldest lines of an operation's log until the rest holds at
// most keep bytes, and counts what it dropped on the operation.
func (s *Store) TrimLog(ctx context.Context, opID, keep int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var first sql.NullInt64 // the oldest line that stays
		err := tx.QueryRowContext(ctx, `
			SELECT min(seq) FROM (
				SELECT seq, sum(length(CAST(line AS BLOB))) OVER (ORDER BY seq DESC) AS tail
				FROM operation_logs WHERE operation_id = ?)
			WHERE tail <= ?`, opID, keep).Scan(&first)
		if err != nil {
			return err
		}
		if !first.Valid { // even the newest line is longer than keep
			first.Int64 = 1 << 62
		}
		var lines, size int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(length(CAST(line AS BLOB))), 0) FROM operation_logs WHERE operation_id = ? AND seq < ?`,
			opID, first.Int64).Scan(&lines, &size); err != nil || lines == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM operation_logs WHERE operation_id = ? AND seq < ?`, opID, first.Int64); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE operations SET log_dropped_lines = log_dropped_lines + ?, log_dropped_bytes = log_dropped_bytes + ? WHERE id = ?`,
			lines, size, opID)
		return err
	})
}

// Checkpoint copies the WAL into the database and empties it, after large
// writes, so the WAL does not stay at its largest size.
func (s *Store) Checkpoint(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// Logs returns up to limit (0: all) of an operation's log lines after sequence
// number after. Read from the start of a log whose oldest lines were dropped,
// it begins with a line (Seq 0) that says how much.
func (s *Store) Logs(ctx context.Context, opID, after int64, limit int) ([]LogLine, error) {
	if limit <= 0 {
		limit = -1
	}
	var out []LogLine
	if after <= 0 {
		var err error
		if out, err = s.droppedNotice(ctx, opID); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, at, line FROM operation_logs WHERE operation_id = ? AND seq > ? ORDER BY seq LIMIT ?`, opID, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanLogLines(rows, out)
}

// LogTail returns the last n lines of an operation's log before sequence
// number before (0: the end), oldest first, and whether older lines remain.
func (s *Store) LogTail(ctx context.Context, opID, before int64, n int) ([]LogLine, bool, error) {
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := s.db.QueryContext(ctx, `SELECT seq, at, line FROM (
			SELECT seq, at, line FROM operation_logs WHERE operation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?)
		ORDER BY seq`, opID, before, n+1)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	lines, err := scanLogLines(rows, nil)
	if err != nil {
		return nil, false, err
	}
	if len(lines) > n {
		return lines[1:], true, nil
	}
	notice, err := s.droppedNotice(ctx, opID)
	return append(notice, lines...), false, err
}

// droppedNotice is the line (Seq 0) that says how much of the start of a long
// log was dropped, or nothing.
func (s *Store) droppedNotice(ctx context.Context, opID int64) ([]LogLine, error) {
	var lines, size int64
	err := s.db.QueryRowContext(ctx, `SELECT log_dropped_lines, log_dropped_bytes FROM operations WHERE id = ?`, opID).Scan(&lines, &size)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if lines == 0 {
		return nil, nil
	}
	text := fmt.Sprintf("… the first %d lines (%.1f MB) of this log were dropped to keep it within its size limit", lines, float64(size)/(1<<20))
	return []LogLine{{Text: text}}, nil
}

func scanLogLines(rows *sql.Rows, out []LogLine) ([]LogLine, error) {
	for rows.Next() {
		var l LogLine
		var at sql.NullString
		if err := rows.Scan(&l.Seq, &at, &l.Text); err != nil {
			return nil, err
		}
		l.At = parseTime(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// OperationCount is how many operations of a type ended with a status.
type OperationCount struct {
	Type, Status string
	Count        int64
}

// CountOperations counts all operations by type and status.
func (s *Store) CountOperations(ctx context.Context) ([]OperationCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT type, status, count(*) FROM operations GROUP BY type, status ORDER BY type, status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OperationCount
	for rows.Next() {
		var c OperationCount
		if err := rows.Scan(&c.Type, &c.Status, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
