-- Databases: a Postgres server per row, in its own Incus instance and
-- volume (named after it), belonging to one environment. The apps' password
-- is sealed like a secret. An attachment puts a server's URL into an
-- installation's environment under a variable name.
CREATE TABLE databases (
	id             INTEGER PRIMARY KEY,
	name           TEXT NOT NULL UNIQUE,
	environment_id INTEGER NOT NULL REFERENCES environments(id),
	type           TEXT NOT NULL DEFAULT 'postgres' CHECK (type IN ('postgres')),
	version        TEXT NOT NULL,
	state          TEXT NOT NULL CHECK (state IN ('provisioning', 'running', 'failed', 'deprovisioned')),
	db_user        TEXT NOT NULL DEFAULT '',
	db_password    TEXT NOT NULL DEFAULT '',
	db_name        TEXT NOT NULL DEFAULT '',
	created_at     TEXT NOT NULL
);
CREATE TABLE database_attachments (
	database_id     INTEGER NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	variable        TEXT NOT NULL,
	PRIMARY KEY (installation_id, variable)
);
ALTER TABLE operations ADD COLUMN database TEXT NOT NULL DEFAULT '';
