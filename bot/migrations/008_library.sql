-- A member's library: cancelled jobs, the messages each result was delivered in, expiry
-- reminders, and what the bot may do in the channel of each /split.

-- The bot's permissions in the /split's channel as Discord reported them with the interaction
-- (NULL for jobs from before): whether a result posted there can use embeds.
ALTER TABLE jobs ADD COLUMN app_permissions INTEGER;

-- When the member was reminded that the links expire (NULL: not yet, or never due).
ALTER TABLE jobs ADD COLUMN reminded_at REAL;

-- Every message a result was shown in, part by part, per way of delivery. A retry after a failed
-- part sends only the parts not recorded here; later features reply to or open threads on them.
CREATE TABLE delivered_messages (
    job_id     INTEGER NOT NULL REFERENCES jobs (id),
    via        TEXT    NOT NULL,
    part       INTEGER NOT NULL CHECK (part >= 0),
    channel_id INTEGER,
    message_id INTEGER NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (job_id, via, part)
) WITHOUT ROWID;

-- A member's own choices, across servers.
CREATE TABLE member_preferences (
    user_id   INTEGER PRIMARY KEY,
    reminders INTEGER NOT NULL DEFAULT 1 CHECK (reminders IN (0, 1))
);

-- The library and its autocomplete: a member's jobs, and a server's, newest first.
CREATE INDEX jobs_member_newest ON jobs (guild_id, user_id, id);
CREATE INDEX jobs_guild_newest ON jobs (guild_id, id);

-- Results whose reminder is still to come, by when their links expire.
CREATE INDEX jobs_to_remind ON jobs (links_expire_at) WHERE state = 'succeeded' AND reminded_at IS NULL;
