-- Backups of databases: kind 'database', the database's name in volume and
-- its environment in environment. The table is made again to widen the
-- CHECK, as 0012 did.
CREATE TABLE backups_new (
	id              INTEGER PRIMARY KEY,
	kind            TEXT NOT NULL CHECK (kind IN ('volume', 'store', 'system', 'database')),
	installation_id INTEGER REFERENCES installations(id) ON DELETE SET NULL,
	app             TEXT NOT NULL DEFAULT '',
	environment     TEXT NOT NULL DEFAULT '',
	volume          TEXT NOT NULL DEFAULT '',
	source          TEXT NOT NULL DEFAULT '',
	file            TEXT NOT NULL DEFAULT '',
	size            INTEGER NOT NULL DEFAULT 0,
	sha256          TEXT NOT NULL DEFAULT '',
	files           INTEGER NOT NULL DEFAULT 0,
	state           TEXT NOT NULL CHECK (state IN ('running', 'verified', 'failed')),
	reason          TEXT NOT NULL DEFAULT '',
	origin          TEXT NOT NULL DEFAULT 'manual',
	operation_id    INTEGER REFERENCES operations(id) ON DELETE SET NULL,
	created_at      TEXT NOT NULL,
	verified_at     TEXT
);
INSERT INTO backups_new SELECT id, kind, installation_id, app, environment, volume, source, file, size, sha256,
	files, state, reason, origin, operation_id, created_at, verified_at FROM backups;
DROP TABLE backups;
ALTER TABLE backups_new RENAME TO backups;
CREATE INDEX backups_installation ON backups (installation_id, created_at);
CREATE INDEX backups_kind ON backups (kind, created_at);
