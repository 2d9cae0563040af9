-- An installation's environment variables. Secret values are write-only: no
-- command, page, log or report shows them again.
CREATE TABLE config_vars (
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	key             TEXT NOT NULL,
	value           TEXT NOT NULL,
	secret          INTEGER NOT NULL DEFAULT 0,
	updated_at      TEXT NOT NULL,
	PRIMARY KEY (installation_id, key)
) WITHOUT ROWID;

-- Maintenance mode survives restarts: the proxy answers 503 with this message.
ALTER TABLE installations ADD COLUMN maintenance TEXT;
