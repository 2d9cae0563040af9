-- HTTPS: the names an installation answers on besides its own host, how it
-- serves them over TLS, and where each certificate stands. A domain belongs to
-- one installation; its certificate files live in the data directory (certs/),
-- this table keeps what the files cannot: where the certificate comes from and
-- how its renewals went.
CREATE TABLE domains (
	domain          TEXT PRIMARY KEY,
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	created_at      TEXT NOT NULL
);
CREATE INDEX domains_installation ON domains (installation_id);
ALTER TABLE installations ADD COLUMN https TEXT NOT NULL DEFAULT 'off' CHECK (https IN ('off', 'on', 'redirect'));
ALTER TABLE installations ADD COLUMN hsts INTEGER NOT NULL DEFAULT 0;
CREATE TABLE certificates (
	domain       TEXT PRIMARY KEY,
	source       TEXT NOT NULL CHECK (source IN ('acme', 'own')),
	failures     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	next_attempt TEXT,
	updated_at   TEXT NOT NULL
);
