-- Users and their SSH keys. Users are never hard-deleted: operations keep their names.
CREATE TABLE users (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	admin      INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	removed_at TEXT
);

CREATE TABLE keys (
	id          INTEGER PRIMARY KEY,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	fingerprint TEXT NOT NULL UNIQUE,
	public_key  TEXT NOT NULL,
	created_at  TEXT NOT NULL
);

CREATE TABLE apps (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
);

CREATE TABLE environments (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL
);

-- One running copy of an app in one environment. channel_kind/channel_ref is what it
-- follows; commit/instance is what it serves now.
CREATE TABLE installations (
	id             INTEGER PRIMARY KEY,
	app_id         INTEGER NOT NULL REFERENCES apps(id),
	environment_id INTEGER NOT NULL REFERENCES environments(id),
	host           TEXT NOT NULL UNIQUE,
	channel_kind   TEXT NOT NULL CHECK (channel_kind IN ('branch', 'commit')),
	channel_ref    TEXT NOT NULL,
	commit_sha     TEXT NOT NULL DEFAULT '',
	instance       TEXT NOT NULL DEFAULT '',
	state          TEXT NOT NULL DEFAULT 'new',
	created_at     TEXT NOT NULL,
	UNIQUE (app_id, environment_id)
);

-- Operations keep the names of what they touched, so the record outlives the resource.
CREATE TABLE operations (
	id              INTEGER PRIMARY KEY,
	type            TEXT NOT NULL,
	status          TEXT NOT NULL,
	app             TEXT NOT NULL DEFAULT '',
	environment     TEXT NOT NULL DEFAULT '',
	installation_id INTEGER REFERENCES installations(id) ON DELETE SET NULL,
	user            TEXT NOT NULL,
	commit_sha      TEXT NOT NULL DEFAULT '',
	channel         TEXT NOT NULL DEFAULT '',
	reason          TEXT NOT NULL DEFAULT '',
	queued_at       TEXT NOT NULL,
	started_at      TEXT,
	finished_at     TEXT
);
CREATE INDEX operations_installation ON operations (installation_id, id);
CREATE INDEX operations_status ON operations (status);

CREATE TABLE operation_logs (
	operation_id INTEGER NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
	seq          INTEGER NOT NULL,
	at           TEXT NOT NULL,
	line         TEXT NOT NULL,
	PRIMARY KEY (operation_id, seq)
) WITHOUT ROWID;
