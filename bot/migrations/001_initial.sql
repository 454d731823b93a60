-- Members' credit accounts, the ledger of every credit movement, and separation jobs.

CREATE TABLE accounts (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    balance    INTEGER NOT NULL CHECK (balance >= 0),
    created_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE jobs (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id               INTEGER NOT NULL,
    channel_id             INTEGER NOT NULL,
    user_id                INTEGER NOT NULL,
    mode                   TEXT    NOT NULL,
    source_task_id         TEXT    NOT NULL,
    audio_id               TEXT    NOT NULL,
    cost                   INTEGER NOT NULL CHECK (cost >= 0),
    state                  TEXT    NOT NULL,
    api_task_id            TEXT    UNIQUE,
    callback_token         TEXT    NOT NULL UNIQUE,
    application_id         INTEGER,
    interaction_token      TEXT,
    interaction_expires_at REAL,
    stems                  TEXT,     -- JSON list of [stem key, url]
    links_expire_at        REAL,
    failure                TEXT,
    failure_detail         TEXT,
    delivery               TEXT    NOT NULL DEFAULT 'none',
    delivery_attempts      INTEGER NOT NULL DEFAULT 0,
    delivered_via          TEXT,
    created_at             REAL    NOT NULL,
    submitted_at           REAL,
    finished_at            REAL,
    delivered_at           REAL
);

CREATE INDEX jobs_unfinished ON jobs (state) WHERE state IN ('reserved', 'submitting', 'submitted');
CREATE INDEX jobs_undelivered ON jobs (delivery) WHERE delivery = 'pending';
CREATE INDEX jobs_member ON jobs (guild_id, user_id, state);

CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id      INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    job_id        INTEGER REFERENCES jobs (id),
    actor_id      INTEGER,
    reason        TEXT,
    created_at    REAL    NOT NULL
);

-- A job is reserved once and settled (charged or refunded) at most once.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (job_id) WHERE kind IN ('charge', 'refund');
CREATE INDEX ledger_member ON ledger (guild_id, user_id, id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
