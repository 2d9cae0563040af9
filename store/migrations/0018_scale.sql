-- Several instances per installation. instances holds every instance an
-- installation serves from (installations.instance stays its first web
-- instance, which logs, run and backups use); formation the process counts
-- set with scale (a type not listed runs once); surge how many new instances
-- a rolling deploy starts at a time (0: all at once).
CREATE TABLE instances (
	name            TEXT PRIMARY KEY,
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	process         TEXT NOT NULL,
	started_at      TEXT NOT NULL
);
CREATE INDEX instances_by_installation ON instances (installation_id);

CREATE TABLE formation (
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	process         TEXT NOT NULL,
	count           INTEGER NOT NULL CHECK (count >= 0),
	PRIMARY KEY (installation_id, process)
);

ALTER TABLE installations ADD COLUMN surge INTEGER NOT NULL DEFAULT 0 CHECK (surge >= 0);
-- The health path of the served commit, for the proxy's own checks.
ALTER TABLE installations ADD COLUMN health TEXT NOT NULL DEFAULT '';

INSERT INTO instances (name, installation_id, process, started_at)
	SELECT instance, id, 'web', created_at FROM installations WHERE instance != '';
