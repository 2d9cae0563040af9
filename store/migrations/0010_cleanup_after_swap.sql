-- After its swap an operation has ended; draining and deleting the old
-- instance and keeping the rollback image go on after it. cleanup says how
-- that went: '' (nothing to do), 'pending', 'done' or 'failed: REASON'.
ALTER TABLE operations ADD COLUMN cleanup TEXT NOT NULL DEFAULT '';

-- Old instances whose deletion failed; housekeeping tries again until it works.
CREATE TABLE leftover_instances (
	instance     TEXT PRIMARY KEY,
	operation_id INTEGER REFERENCES operations(id) ON DELETE SET NULL,
	reason       TEXT NOT NULL,
	since        TEXT NOT NULL
) WITHOUT ROWID;
