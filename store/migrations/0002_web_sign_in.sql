-- One-time sign-in links printed by `ssh ... login`, and the web sessions they
-- open. Only SHA-256 hashes of the secrets are stored.
CREATE TABLE login_tokens (
	token_hash TEXT PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	expires_at TEXT NOT NULL,
	used_at    TEXT
);

CREATE TABLE web_sessions (
	session_hash TEXT PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	csrf_token   TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	expires_at   TEXT NOT NULL
);
