-- Never paying twice for the same stems (see 003_sharing.sql); job ids are BIGINT here.

ALTER TABLE jobs ADD COLUMN share TEXT CHECK (share IN ('reused', 'coalesced'));
ALTER TABLE jobs ADD COLUMN source_job_id BIGINT REFERENCES jobs (id);

CREATE INDEX jobs_track ON jobs (source_task_id, audio_id, mode, state);
CREATE INDEX jobs_followers ON jobs (source_job_id) WHERE source_job_id IS NOT NULL;

ALTER TABLE economy_settings ADD COLUMN reuse_charge TEXT NOT NULL DEFAULT 'free'
    CHECK (reuse_charge IN ('free', 'full'));
