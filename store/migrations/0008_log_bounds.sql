-- An operation keeps the tail of a long log: what was dropped from its start is
-- counted here, so readers can say so.
ALTER TABLE operations ADD COLUMN log_dropped_lines INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operations ADD COLUMN log_dropped_bytes INTEGER NOT NULL DEFAULT 0;
