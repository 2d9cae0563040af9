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

// CreateLoginToken stores a one-time sign-in token for a user, valid for ttl,
// asked for with the key of keyFingerprint ("": none). Removing that key
// spends the token and ends the session it opens.
func (s *Store) CreateLoginToken(ctx context.Context, userID int64, keyFingerprint, token string, ttl time.Duration) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO login_tokens (token_hash, user_id, key_id, expires_at)
		VALUES (?, ?, (SELECT id FROM keys WHERE fingerprint = ? AND user_id = ?), ?)`,
		hashSecret(token), userID, keyFingerprint, userID, formatTime(s.now().Add(ttl)))
	return wrapError(err)
}

// UseLoginToken spends a sign-in token and returns its user and the ID of the
// key it was asked for with (0: none). A token works once.
func (s *Store) UseLoginToken(ctx context.Context, token string) (User, int64, error) {
	var userID int64
	var keyID sql.NullInt64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var expires sql.NullString
		var used sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT user_id, key_id, expires_at, used_at FROM login_tokens WHERE token_hash = ?`, hashSecret(token)).
			Scan(&userID, &keyID, &expires, &used)
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
		return User{}, 0, ErrExpired
	}
	if err != nil {
		return User{}, 0, err
	}
	u, err := s.userByID(ctx, userID)
	return u, keyID.Int64, err
}

// WebSession is a signed-in browser.
type WebSession struct {
	User      User
	CSRFToken string
	ExpiresAt time.Time
}

// CreateWebSession opens a session for a user, signed in with key keyID (0:
// none; the session then ends only with the user or its expiry), and returns
// its secret ID.
func (s *Store) CreateWebSession(ctx context.Context, userID, keyID int64, ttl time.Duration) (id string, sess WebSession, err error) {
	id = NewSecret()
	csrf := NewSecret()
	expires := s.now().Add(ttl)
	key := sql.NullInt64{Int64: keyID, Valid: keyID != 0}
	_, err = s.db.ExecContext(ctx, `INSERT INTO web_sessions (session_hash, user_id, key_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		hashSecret(id), userID, key, csrf, s.stamp(), formatTime(expires))
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
