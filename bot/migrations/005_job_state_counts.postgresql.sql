-- How many jobs are in each state (see 005_job_state_counts.sql), kept by one plpgsql trigger
-- function on every insert, state change and delete.

CREATE TABLE job_state_counts (
    state TEXT   PRIMARY KEY,
    total BIGINT NOT NULL CHECK (total >= 0)
);

INSERT INTO job_state_counts (state, total) SELECT state, COUNT(*) FROM jobs GROUP BY state;

CREATE FUNCTION jobs_count_states() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE job_state_counts SET total = total - 1 WHERE state = OLD.state;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO job_state_counts AS c (state, total) VALUES (NEW.state, 1)
            ON CONFLICT (state) DO UPDATE SET total = c.total + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_counted_on_insert AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_count_states();

CREATE TRIGGER jobs_counted_on_state_change AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION jobs_count_states();

CREATE TRIGGER jobs_counted_on_delete AFTER DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_count_states();
