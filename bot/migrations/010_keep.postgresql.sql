-- Keeping stems in Discord (see 010_keep.sql).

ALTER TABLE jobs ADD COLUMN filesize_limit BIGINT;

ALTER TABLE economy_settings ADD COLUMN keep_stems TEXT NOT NULL DEFAULT 'button'
    CHECK (keep_stems IN ('button', 'always', 'off'));

CREATE TABLE keeps (
    job_id            BIGINT           PRIMARY KEY REFERENCES jobs (id),
    guild_id          BIGINT           NOT NULL,
    state             TEXT             NOT NULL CHECK (state IN ('pending', 'working', 'kept', 'failed')),
    requested_by      BIGINT,
    upload_limit      BIGINT           NOT NULL CHECK (upload_limit > 0),
    place             TEXT             CHECK (place IN ('thread', 'replies', 'dm')),
    channel_id        BIGINT,
    anchor_message_id BIGINT,
    linked_to         BIGINT           REFERENCES jobs (id),
    failure           TEXT,
    attempts          INTEGER          NOT NULL DEFAULT 0,
    retry_at          DOUBLE PRECISION,
    marked            INTEGER          NOT NULL DEFAULT 0 CHECK (marked IN (0, 1)),
    created_at        DOUBLE PRECISION NOT NULL,
    finished_at       DOUBLE PRECISION
);

CREATE INDEX keeps_to_do ON keeps (created_at) WHERE state IN ('pending', 'working') OR marked = 0;

CREATE TABLE kept_stems (
    job_id      BIGINT  NOT NULL REFERENCES keeps (job_id),
    position    INTEGER NOT NULL CHECK (position >= 0),
    filename    TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'posting', 'posted', 'skipped')),
    size        BIGINT,
    skipped_why TEXT,
    message_id  BIGINT,
    PRIMARY KEY (job_id, position)
);
