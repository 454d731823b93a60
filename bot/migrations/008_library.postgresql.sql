-- A member's library (see 008_library.sql).

ALTER TABLE jobs ADD COLUMN app_permissions BIGINT;
ALTER TABLE jobs ADD COLUMN reminded_at DOUBLE PRECISION;

CREATE TABLE delivered_messages (
    job_id     BIGINT           NOT NULL REFERENCES jobs (id),
    via        TEXT             NOT NULL,
    part       INTEGER          NOT NULL CHECK (part >= 0),
    channel_id BIGINT,
    message_id BIGINT           NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, via, part)
);

CREATE TABLE member_preferences (
    user_id   BIGINT  PRIMARY KEY,
    reminders INTEGER NOT NULL DEFAULT 1 CHECK (reminders IN (0, 1))
);

CREATE INDEX jobs_member_newest ON jobs (guild_id, user_id, id);
CREATE INDEX jobs_guild_newest ON jobs (guild_id, id);

CREATE INDEX jobs_to_remind ON jobs (links_expire_at) WHERE state = 'succeeded' AND reminded_at IS NULL;
