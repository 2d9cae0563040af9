package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"
)

// ErrExpired means a sign-in link or session is used up or too old.
var ErrExpired = errors.New("expired or already used")

// NewSecret returns a random URL-safe secret.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateLoginToken stores a one-time sign-in token for a user, valid for ttl.
func (s *Store) CreateLoginToken(ctx context.Context, userID int64, token string, ttl time.Duration) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO login_tokens (token_hash, user_id, expires_at) VALUES (?, ?, ?)`,
		hashSecret(token), userID, formatTime(s.now().Add(ttl)))
	return wrapError(err)
}

// UseLoginToken spends a sign-in token and returns its user. A token works once.
func (s *Store) UseLoginToken(ctx context.Context, token string) (User, error) {
	var userID int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var expires sql.NullString
		var used sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT user_id, expires_at, used_at FROM login_tokens WHERE token_hash = ?`, hashSecret(token)).
			Scan(&userID, &expires, &used)
		if err != nil {
			return wrapError(err)
		}
		if used.Valid || s.now().After(parseTime(expires)) {
			return ErrExpired
		}
		_, err = tx.ExecContext(ctx, `UPDATE login_tokens SET used_at = ? WHERE token_hash = ?`, s.stamp(), hashSecret(token))
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrExpired
	}
	if err != nil {
		return User{}, err
	}
	return s.userByID(ctx, userID)
}

// WebSession is a signed-in browser.
type WebSession struct {
	User      User
	CSRFToken string
	ExpiresAt time.Time
}

// CreateWebSession opens a session for a user and returns its secret ID.
func (s *Store) CreateWebSession(ctx context.Context, userID int64, ttl time.Duration) (id string, sess WebSession, err error) {
	id = NewSecret()
	csrf := NewSecret()
	expires := s.now().Add(ttl)
	_, err = s.db.ExecContext(ctx, `INSERT INTO web_sessions (session_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hashSecret(id), userID, csrf, s.stamp(), formatTime(expires))
	if err != nil {
		return "", WebSession{}, wrapError(err)
	}
	user, err := s.userByID(ctx, userID)
	return id, WebSession{User: user, CSRFToken: csrf, ExpiresAt: expires.UTC()}, err
}

// WebSessionByID returns a live session.
func (s *Store) WebSessionByID(ctx context.Context, id string) (WebSession, error) {
	var userID int64
	var ws WebSession
	var expires sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT user_id, csrf_token, expires_at FROM web_sessions WHERE session_hash = ?`, hashSecret(id)).
		Scan(&userID, &ws.CSRFToken, &expires)
	if err != nil {
		return WebSession{}, wrapError(err)
	}
	ws.ExpiresAt = parseTime(expires)
	if s.now().After(ws.ExpiresAt) {
		return WebSession{}, ErrExpired
	}
	ws.User, err = s.userByID(ctx, userID)
	return ws, err
}

// DeleteWebSession signs a browser out.
func (s *Store) DeleteWebSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE session_hash = ?`, hashSecret(id))
	return err
}
