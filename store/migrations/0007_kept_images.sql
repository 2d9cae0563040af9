-- Rollbacks start from an Incus image of each commit an installation served
-- (published from the instance right after its build), not from stopped
-- instances: after a deploy exactly one instance of an installation is left.
DROP TABLE kept_instances;

CREATE TABLE kept_images (
	fingerprint     TEXT NOT NULL,
	installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	commit_sha      TEXT NOT NULL,
	env_hash        TEXT NOT NULL, -- the build's environment: an image is reused only with the same one
	kept_at         TEXT NOT NULL,
	PRIMARY KEY (installation_id, commit_sha, env_hash)
);
