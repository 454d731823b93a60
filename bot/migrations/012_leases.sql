-- Several processes on one database (PostgreSQL): a job or a keep is worked on by the process that
-- claimed it. `claimed_by` names that process (an id it makes at start); `lease_until` is when the
-- claim lapses unless renewed, in seconds since the epoch by the database's clock. A process renews
-- its claims while it runs and clears them when the work is done or it stops cleanly; another one
-- takes over a claim that lapsed (its process died). NULL: nobody holds it.

ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL;
ALTER TABLE keeps ADD COLUMN claimed_by TEXT;
ALTER TABLE keeps ADD COLUMN lease_until REAL;

-- A process renews and releases its own claims by `claimed_by`; claims are cleared when the work
-- is done, so these indexes hold only the work in progress.
CREATE INDEX jobs_claimed ON jobs (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX keeps_claimed ON keeps (claimed_by) WHERE claimed_by IS NOT NULL;
