-- Roles per environment. One role per user and environment.
CREATE TABLE grants (
	user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	environment_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
	role           TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'admin', 'backup')),
	created_at     TEXT NOT NULL,
	PRIMARY KEY (user_id, environment_id)
) WITHOUT ROWID;

-- Weekly activity reports, kept for the life of the environment.
CREATE TABLE reports (
	id           INTEGER PRIMARY KEY,
	environment  TEXT NOT NULL,
	week         TEXT NOT NULL,
	rows         INTEGER NOT NULL,
	csv          BLOB NOT NULL,
	operation_id INTEGER REFERENCES operations(id) ON DELETE SET NULL,
	created_at   TEXT NOT NULL,
	UNIQUE (environment, week)
);
