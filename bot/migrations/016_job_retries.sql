-- The job runner's schedule, stored like the keeps' (010) and the reminders' (015): when the runner
-- next looks at a job, and how many of its API calls failed in a row. Kept in the database so a
-- restart or another process taking the job over neither retries it early nor starts its count
-- again (a submit that keeps failing is still given up after the same number of tries).
-- `next_step_at`: not stepped before then, in seconds since the epoch; NULL: a new job its process
-- has not handed to the runner yet (its member is being shown "queued"), due as soon as claimed.
-- `api_failures`: submit or poll calls failed in a row (0 once one succeeds).
ALTER TABLE jobs ADD COLUMN next_step_at REAL;
ALTER TABLE jobs ADD COLUMN api_failures INTEGER NOT NULL DEFAULT 0;
-- The work in hand at the upgrade is due now (it was scheduled in memory).
UPDATE jobs SET next_step_at = 0
WHERE state IN ('reserved', 'submitting', 'submitted', 'following') OR delivery = 'pending';
