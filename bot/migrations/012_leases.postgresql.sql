-- Claims and leases on jobs and keeps (see 012_leases.sql).

ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION;
ALTER TABLE keeps ADD COLUMN claimed_by TEXT;
ALTER TABLE keeps ADD COLUMN lease_until DOUBLE PRECISION;

-- A process renews and releases its own claims by `claimed_by`; claims are cleared when the work
-- is done, so these indexes hold only the work in progress.
CREATE INDEX jobs_claimed ON jobs (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX keeps_claimed ON keeps (claimed_by) WHERE claimed_by IS NOT NULL;
