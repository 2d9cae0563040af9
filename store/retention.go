package store

import (
	"context"
	"time"
)

// PurgeDeprovisionedLogs deletes the log lines of operations that finished
// before cutoff on installations deleted since. Logs of installations that
// still exist are kept; the operation rows themselves are kept forever.
func (s *Store) PurgeDeprovisionedLogs(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM operation_logs WHERE operation_id IN (
			SELECT id FROM operations
			WHERE installation_id IS NULL AND app != '' AND environment != ''
			AND finished_at IS NOT NULL AND finished_at < ?)`, formatTime(cutoff))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PurgeSignIns deletes used or expired sign-in links and expired web sessions.
func (s *Store) PurgeSignIns(ctx context.Context) error {
	now := s.stamp()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM login_tokens WHERE used_at IS NOT NULL OR expires_at < ?`, now); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < ?`, now)
	return err
}
