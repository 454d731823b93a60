-- How many jobs are in each state, kept by triggers on every insert, state change and delete, so
-- /metrics and /stembot status read a handful of rows instead of counting every job ever made.

CREATE TABLE job_state_counts (
    state TEXT    PRIMARY KEY,
    total INTEGER NOT NULL CHECK (total >= 0)
) WITHOUT ROWID;

INSERT INTO job_state_counts (state, total) SELECT state, COUNT(*) FROM jobs GROUP BY state;

CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_state_counts (state, total) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER jobs_counted_on_state_change AFTER UPDATE OF state ON jobs
WHEN OLD.state IS NOT NEW.state
BEGIN
    UPDATE job_state_counts SET total = total - 1 WHERE state = OLD.state;
    INSERT INTO job_state_counts (state, total) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET total = total + 1;
END;

CREATE TRIGGER jobs_counted_on_delete AFTER DELETE ON jobs
BEGIN
    UPDATE job_state_counts SET total = total - 1 WHERE state = OLD.state;
END;
