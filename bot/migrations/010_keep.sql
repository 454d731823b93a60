-- Keeping stems in Discord: a result's files posted as attachments (in a thread on the result
-- message), so they outlive the API's 14-day links.

-- The upload limit Discord reported with the /split interaction, in bytes (NULL for jobs from
-- before): how many stems fit in one message of the thread.
ALTER TABLE jobs ADD COLUMN filesize_limit INTEGER;

-- Whether members keep their stems in Discord: 'button' (they choose), 'always', or 'off'.
ALTER TABLE economy_settings ADD COLUMN keep_stems TEXT NOT NULL DEFAULT 'button'
    CHECK (keep_stems IN ('button', 'always', 'off'));

-- One row per result being kept or kept. 'pending' until the worker starts, 'working' while stems
-- are posted, then 'kept' (every stem posted or noted as a link) or 'failed' (with why; asking
-- again starts over). `marked`: the result message shows that it is kept.
CREATE TABLE keeps (
    job_id            INTEGER PRIMARY KEY REFERENCES jobs (id),
    guild_id          INTEGER NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'working', 'kept', 'failed')),
    requested_by      INTEGER,           -- NULL: kept automatically (keep_stems = 'always')
    upload_limit      INTEGER NOT NULL CHECK (upload_limit > 0),
    place             TEXT    CHECK (place IN ('thread', 'replies', 'dm')),
    channel_id        INTEGER,           -- the thread, or the channel or DM the files are posted in
    anchor_message_id INTEGER,           -- the result message the thread is on, or replies answer
    linked_to         INTEGER REFERENCES jobs (id),  -- the same stems were already kept with that job
    failure           TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    retry_at          REAL,
    marked            INTEGER NOT NULL DEFAULT 0 CHECK (marked IN (0, 1)),
    created_at        REAL    NOT NULL,
    finished_at       REAL
);

-- The keeps with work left: the worker's one query at start-up and after every wake.
CREATE INDEX keeps_to_do ON keeps (created_at) WHERE state IN ('pending', 'working') OR (state = 'kept' AND marked = 0);

-- Each stem of a kept result. 'posting' is written before the upload (or, for a skipped stem,
-- before the note that says so), so after a restart the thread's messages are read before
-- anything is sent again: no stem is ever posted twice.
CREATE TABLE kept_stems (
    job_id      INTEGER NOT NULL REFERENCES keeps (job_id),
    position    INTEGER NOT NULL CHECK (position >= 0),  -- the stem's place in the job's result
    filename    TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'posting', 'posted', 'skipped')),
    size        INTEGER,
    skipped_why TEXT,
    message_id  INTEGER,  -- the message with the file, or (skipped) the note in the thread
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID;
