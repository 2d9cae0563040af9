-- Off-site copies of backups: where each verified backup was copied, and
-- the SHA-256 read back there.
CREATE TABLE backup_copies (
	backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
	target    TEXT NOT NULL,
	sha256    TEXT NOT NULL,
	copied_at TEXT NOT NULL,
	PRIMARY KEY (backup_id, target)
);
