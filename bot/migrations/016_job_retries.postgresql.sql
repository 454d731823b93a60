-- The job runner's schedule (see 016_job_retries.sql).
ALTER TABLE jobs ADD COLUMN next_step_at DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN api_failures INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET next_step_at = 0
WHERE state IN ('reserved', 'submitting', 'submitted', 'following') OR delivery = 'pending';
