-- A database's own backup schedule: '' is the default (--database-backup-schedule),
-- 'off' none, else a cron spec (UTC).
ALTER TABLE databases ADD COLUMN backup_schedule TEXT NOT NULL DEFAULT '';
