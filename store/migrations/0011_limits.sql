-- Resource limits of an installation's instances (Incus limits.cpu and
-- limits.memory); 0 means no limit.
ALTER TABLE installations ADD COLUMN limit_cpu INTEGER NOT NULL DEFAULT 0;
ALTER TABLE installations ADD COLUMN limit_memory INTEGER NOT NULL DEFAULT 0;
