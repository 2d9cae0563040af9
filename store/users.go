package store

import (
	"context"
	"database/sql"
	"time"
)

// User is a person (or robot) that signs in with SSH keys.
type User struct {
	ID        int64
	Name      string
	Admin     bool
	CreatedAt time.Time
}

// Key is one registered SSH public key.
type Key struct {
	ID          int64
	User        string
	Fingerprint string
	PublicKey   string
	CreatedAt   time.Time
}

// CreateUser adds a user.
func (s *Store) CreateUser(ctx context.Context, name string, admin bool) (User, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO users (name, admin, created_at) VALUES (?, ?, ?)`, name, admin, s.stamp())
	if err != nil {
		return User{}, wrapError(err)
	}
	id, _ := res.LastInsertId()
	return s.userByID(ctx, id)
}

func (s *Store) userByID(ctx context.Context, id int64) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT id, name, admin, created_at FROM users WHERE id = ? AND removed_at IS NULL`, id))
}

// UserByName returns an active user.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT id, name, admin, created_at FROM users WHERE name = ? AND removed_at IS NULL`, name))
}

// UserByFingerprint returns the active user owning the key with this fingerprint.
func (s *Store) UserByFingerprint(ctx context.Context, fingerprint string) (User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `
		SELECT u.id, u.name, u.admin, u.created_at FROM users u JOIN keys k ON k.user_id = u.id
		WHERE k.fingerprint = ? AND u.removed_at IS NULL`, fingerprint))
}

// CountUsers counts active users; zero means the first start.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE removed_at IS NULL`).Scan(&n)
	return n, err
}

// AddKey registers a public key for a user.
func (s *Store) AddKey(ctx context.Context, userID int64, fingerprint, publicKey string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO keys (user_id, fingerprint, public_key, created_at) VALUES (?, ?, ?, ?)`,
		userID, fingerprint, publicKey, s.stamp())
	return wrapError(err)
}

func scanUser(row *sql.Row) (User, error) {
	var u User
	var created sql.NullString
	if err := row.Scan(&u.ID, &u.Name, &u.Admin, &created); err != nil {
		return User{}, wrapError(err)
	}
	u.CreatedAt = parseTime(created)
	return u, nil
}
