-- `jobs_unfinished` was written before the `following` state existed: it must name every state in
-- `UNFINISHED_STATES` (bot/models.py) for the queries on unfinished jobs to use it.

DROP INDEX jobs_unfinished;
CREATE INDEX jobs_unfinished ON jobs (state)
    WHERE state IN ('reserved', 'submitting', 'submitted', 'following');
