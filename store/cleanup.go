package store

import (
	"context"
	"database/sql"
	"time"
)

// Cleanup states of an operation: what it left for after its end.
const (
	CleanupPending = "pending"
	CleanupDone    = "done"
	CleanupFailed  = "failed: " // followed by the reason
)

// SetOperationCleanup records how the work after an operation's end went.
func (s *Store) SetOperationCleanup(ctx context.Context, id int64, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET cleanup = ? WHERE id = ?`, state, id)
	return wrapError(err)
}

// Leftover is an old instance that could not be deleted yet.
type Leftover struct {
	Instance    string
	OperationID int64
	Reason      string
	Since       time.Time
}

// AddLeftover records an instance to delete later.
func (s *Store) AddLeftover(ctx context.Context, instance string, opID int64, reason string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO leftover_instances (instance, operation_id, reason, since) VALUES (?, ?, ?, ?)
		ON CONFLICT (instance) DO UPDATE SET reason = excluded.reason`, instance, opID, reason, s.stamp())
	return wrapError(err)
}

// Leftovers lists the instances still to delete, oldest first.
func (s *Store) Leftovers(ctx context.Context) ([]Leftover, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT instance, coalesce(operation_id, 0), reason, since FROM leftover_instances ORDER BY since`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Leftover
	for rows.Next() {
		var l Leftover
		var since sql.NullString
		if err := rows.Scan(&l.Instance, &l.OperationID, &l.Reason, &since); err != nil {
			return nil, err
		}
		l.Since = parseTime(since)
		out = append(out, l)
	}
	return out, rows.Err()
}

// ForgetLeftover records that an instance is gone.
func (s *Store) ForgetLeftover(ctx context.Context, instance string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM leftover_instances WHERE instance = ?`, instance)
	return wrapError(err)
}

// InterruptCleanups marks the clean-ups still pending when the daemon stopped.
func (s *Store) InterruptCleanups(ctx context.Context, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET cleanup = ? WHERE cleanup = ?`, CleanupFailed+reason, CleanupPending)
	return wrapError(err)
}
