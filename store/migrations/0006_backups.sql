-- The Incus custom volumes that hold an installation's persistent data, by the
-- manifest's volume name. New instances attach the volume named here; a
-- restore points the name at a new volume made from a backup.
CREATE TABLE volumes (
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	name            TEXT NOT NULL, -- as in slipway.yml
	incus_name      TEXT NOT NULL UNIQUE,
	created_at      TEXT NOT NULL,
	-- While a restore runs: the volume in use before it (so a daemon that
	-- stopped half-way can go back to it) and the restore's operation.
	previous          TEXT NOT NULL DEFAULT '',
	restore_operation INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (installation_id, name)
) WITHOUT ROWID;

-- Backups of volumes and of this store. The names are kept so the record
-- outlives a deprovisioned installation; file is relative to the backup directory.
CREATE TABLE backups (
	id              INTEGER PRIMARY KEY,
	kind            TEXT NOT NULL CHECK (kind IN ('volume', 'store')),
	installation_id INTEGER REFERENCES installations(id) ON DELETE SET NULL,
	app             TEXT NOT NULL DEFAULT '',
	environment     TEXT NOT NULL DEFAULT '',
	volume          TEXT NOT NULL DEFAULT '', -- the manifest's volume name
	source          TEXT NOT NULL DEFAULT '', -- the Incus volume it was taken from
	file            TEXT NOT NULL DEFAULT '',
	size            INTEGER NOT NULL DEFAULT 0,
	sha256          TEXT NOT NULL DEFAULT '',
	files           INTEGER NOT NULL DEFAULT 0, -- regular files in it
	state           TEXT NOT NULL CHECK (state IN ('running', 'verified', 'failed')),
	reason          TEXT NOT NULL DEFAULT '', -- why verification failed
	origin          TEXT NOT NULL DEFAULT 'manual', -- manual, scheduled, safety (before a restore)
	operation_id    INTEGER REFERENCES operations(id) ON DELETE SET NULL,
	created_at      TEXT NOT NULL,
	verified_at     TEXT
);
CREATE INDEX backups_installation ON backups (installation_id, created_at);
CREATE INDEX backups_kind ON backups (kind, created_at);

-- Per-installation backup schedules (cron, UTC) replacing the daemon's default.
CREATE TABLE backup_schedules (
	installation_id INTEGER PRIMARY KEY REFERENCES installations(id) ON DELETE CASCADE,
	schedule        TEXT NOT NULL,
	updated_at      TEXT NOT NULL
);
