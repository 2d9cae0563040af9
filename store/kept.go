package store

import (
	"context"
	"database/sql"
	"time"
)

// KeptInstance is a stopped instance of a commit an installation served before.
type KeptInstance struct {
	Instance       string
	InstallationID int64
	Commit         string
	EnvHash        string // hash of the environment it was built with
	KeptAt         time.Time
}

// KeepInstance records a stopped instance as kept for rollbacks.
func (s *Store) KeepInstance(ctx context.Context, k KeptInstance) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO kept_instances (instance, installation_id, commit_sha, env_hash, kept_at) VALUES (?, ?, ?, ?, ?)`,
		k.Instance, k.InstallationID, k.Commit, k.EnvHash, s.stamp())
	return wrapError(err)
}

// ClaimKeptInstance takes the newest kept instance of commit built with the
// same environment out of the kept list and returns it; ErrNotFound when there
// is none.
func (s *Store) ClaimKeptInstance(ctx context.Context, installationID int64, commit, envHash string) (KeptInstance, error) {
	var k KeptInstance
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var kept sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT instance, installation_id, commit_sha, kept_at FROM kept_instances
			WHERE installation_id = ? AND commit_sha = ? AND env_hash = ? ORDER BY kept_at DESC LIMIT 1`, installationID, commit, envHash).
			Scan(&k.Instance, &k.InstallationID, &k.Commit, &kept)
		if err != nil {
			return wrapError(err)
		}
		k.KeptAt = parseTime(kept)
		_, err = tx.ExecContext(ctx, `DELETE FROM kept_instances WHERE instance = ?`, k.Instance)
		return err
	})
	return k, err
}

// KeptInstances lists kept instances, newest first, of one installation or of all (0).
func (s *Store) KeptInstances(ctx context.Context, installationID int64) ([]KeptInstance, error) {
	q := `SELECT instance, installation_id, commit_sha, kept_at FROM kept_instances`
	var args []any
	if installationID != 0 {
		q += ` WHERE installation_id = ?`
		args = append(args, installationID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY kept_at DESC, rowid DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeptInstance
	for rows.Next() {
		var k KeptInstance
		var kept sql.NullString
		if err := rows.Scan(&k.Instance, &k.InstallationID, &k.Commit, &kept); err != nil {
			return nil, err
		}
		k.KeptAt = parseTime(kept)
		out = append(out, k)
	}
	return out, rows.Err()
}

// ForgetKeptInstance drops an instance from the kept list.
func (s *Store) ForgetKeptInstance(ctx context.Context, instance string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM kept_instances WHERE instance = ?`, instance)
	return err
}
