-- Stopped instances of commits an installation served before, kept so that
-- switching back to one skips the build (the fast rollback).
CREATE TABLE kept_instances (
	instance        TEXT PRIMARY KEY,
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	commit_sha      TEXT NOT NULL,
	env_hash        TEXT NOT NULL, -- the build's environment: a kept build is reused only with the same one
	kept_at         TEXT NOT NULL
);
CREATE INDEX kept_instances_installation ON kept_instances (installation_id, kept_at);

-- The environment the serving instance was built with, kept with it when it is replaced.
ALTER TABLE installations ADD COLUMN env_hash TEXT NOT NULL DEFAULT '';
