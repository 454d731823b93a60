-- Expiry reminders' retry state, stored like the keeps' (010): a reminder Discord would not take
-- is tried again after a pause, and given up after a few tries. Kept in the database so a restart
-- or another process taking over neither resends it at once nor starts its count again.
-- `reminder_attempts`: failed sends so far; `reminder_retry_at`: not tried again before then.
ALTER TABLE jobs ADD COLUMN reminder_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN reminder_retry_at REAL;
