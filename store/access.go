package store

import (
	"context"
	"database/sql"
	"time"
)

// Roles a user can hold in an environment.
const (
	RoleViewer   = "viewer"
	RoleDeployer = "deployer"
	RoleAdmin    = "admin"
	RoleBackup   = "backup"
)

// Grant is one user's role in one environment.
type Grant struct {
	User        string
	Environment string
	Role        string
	CreatedAt   time.Time
}

// SetGrant gives a user a role in an environment, replacing any other role there.
func (s *Store) SetGrant(ctx context.Context, user, env, role string) error {
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO grants (user_id, environment_id, role, created_at)
		SELECT u.id, e.id, ?, ? FROM users u, environments e WHERE u.name = ? AND u.removed_at IS NULL AND e.name = ?
		ON CONFLICT (user_id, environment_id) DO UPDATE SET role = excluded.role`,
		role, s.stamp(), user, env)
	if err != nil {
		return wrapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteGrant takes a user's role in an environment away.
func (s *Store) DeleteGrant(ctx context.Context, user, env string) error {
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM grants WHERE user_id = (SELECT id FROM users WHERE name = ? AND removed_at IS NULL)
		AND environment_id = (SELECT id FROM environments WHERE name = ?)`, user, env)
	if err != nil {
		return wrapError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Role returns a user's role in an environment, or "" when it has none.
func (s *Store) Role(ctx context.Context, userID int64, env string) (string, error) {
	var role string
	err := s.db.QueryRowContext(ctx, `
		SELECT g.role FROM grants g JOIN environments e ON e.id = g.environment_id
		WHERE g.user_id = ? AND e.name = ?`, userID, env).Scan(&role)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return role, err
}

// Grants lists roles, for one environment or all when env is "".
func (s *Store) Grants(ctx context.Context, env string) ([]Grant, error) {
	q := `SELECT u.name, e.name, g.role, g.created_at FROM grants g
		JOIN users u ON u.id = g.user_id JOIN environments e ON e.id = g.environment_id
		WHERE u.removed_at IS NULL`
	var args []any
	if env != "" {
		q += ` AND e.name = ?`
		args = append(args, env)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY e.name, u.name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		var g Grant
		var created sql.NullString
		if err := rows.Scan(&g.User, &g.Environment, &g.Role, &created); err != nil {
			return nil, err
		}
		g.CreatedAt = parseTime(created)
		out = append(out, g)
	}
	return out, rows.Err()
}

// Users lists active users.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, admin, created_at FROM users WHERE removed_at IS NULL ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var created sql.NullString
		if err := rows.Scan(&u.ID, &u.Name, &u.Admin, &created); err != nil {
			return nil, err
		}
		u.CreatedAt = parseTime(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// RemoveUser deactivates a user: keys, grants and sessions go, the name stays
// on its past operations.
func (s *Store) RemoveUser(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ? AND removed_at IS NULL`, name).Scan(&id); err != nil {
			return wrapError(err)
		}
		for _, q := range []string{
			`DELETE FROM keys WHERE user_id = ?`,
			`DELETE FROM grants WHERE user_id = ?`,
			`DELETE FROM web_sessions WHERE user_id = ?`,
			`DELETE FROM login_tokens WHERE user_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		// The name is freed for a new user; the old row keeps it in history.
		_, err := tx.ExecContext(ctx, `UPDATE users SET removed_at = ?, name = name || '#' || id WHERE id = ?`, s.stamp(), id)
		return err
	})
}

// Keys lists a user's keys, or everyone's when user is "".
func (s *Store) Keys(ctx context.Context, user string) ([]Key, error) {
	q := `SELECT k.id, u.name, k.fingerprint, k.public_key, k.created_at FROM keys k JOIN users u ON u.id = k.user_id WHERE u.removed_at IS NULL`
	var args []any
	if user != "" {
		q += ` AND u.name = ?`
		args = append(args, user)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY u.name, k.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		var created sql.NullString
		if err := rows.Scan(&k.ID, &k.User, &k.Fingerprint, &k.PublicKey, &created); err != nil {
			return nil, err
		}
		k.CreatedAt = parseTime(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RemoveKey deletes a key by fingerprint.
func (s *Store) RemoveKey(ctx context.Context, fingerprint string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM keys WHERE fingerprint = ?`, fingerprint)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
