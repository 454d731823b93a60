-- Expiry reminders' retry state (see 015_reminder_retries.sql).
ALTER TABLE jobs ADD COLUMN reminder_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN reminder_retry_at DOUBLE PRECISION;
