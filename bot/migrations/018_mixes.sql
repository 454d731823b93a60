-- Mixes of a result's stems (issue 20): a member picks some stems of a full split and the bot
-- posts their sum as one audio file next to the result (in the thread keeping uses).

-- Whether results offer the Mix stems button ('on' / 'off'), and what a mix costs the member.
ALTER TABLE economy_settings ADD COLUMN mix_stems TEXT NOT NULL DEFAULT 'on'
    CHECK (mix_stems IN ('on', 'off'));
ALTER TABLE economy_settings ADD COLUMN mix_price INTEGER NOT NULL DEFAULT 0 CHECK (mix_price >= 0);

-- One row per mix asked for. `stems` is a bit mask of the result's stem positions kept in it.
-- 'pending' (stored, and paid, before any work), 'working' (downloading and mixing), 'posting'
-- (written before the upload: after a crash the place is read before it is sent again), then
-- 'posted' or 'failed' (with why; its price refunded once). The same stems of the same job are
-- one mix while it is not failed, however many ask; a failed one is asked again as a new row.
-- `told`: the member was told where it is (the ephemeral answer edited while its token lives).
CREATE TABLE mixes (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id               INTEGER NOT NULL REFERENCES jobs (id),
    guild_id             INTEGER NOT NULL,
    stems                INTEGER NOT NULL CHECK (stems > 0),
    state                TEXT    NOT NULL
                         CHECK (state IN ('pending', 'working', 'posting', 'posted', 'failed')),
    requested_by         INTEGER NOT NULL,
    price                INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0),
    upload_limit         INTEGER NOT NULL CHECK (upload_limit > 0),
    filename             TEXT    NOT NULL,
    place                TEXT    CHECK (place IN ('thread', 'replies', 'dm')),
    channel_id           INTEGER,
    anchor_message_id    INTEGER,
    message_id           INTEGER,
    failure              TEXT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    retry_at             REAL,
    claimed_by           TEXT,
    lease_until          REAL,
    reply_application_id INTEGER,
    reply_token          TEXT,
    reply_until          REAL,
    told                 INTEGER NOT NULL DEFAULT 0 CHECK (told IN (0, 1)),
    created_at           REAL    NOT NULL,
    finished_at          REAL
);

CREATE UNIQUE INDEX mixes_one_per_stems ON mixes (job_id, stems) WHERE state <> 'failed';
CREATE INDEX mixes_to_do ON mixes (created_at)
    WHERE state IN ('pending', 'working', 'posting') OR (state = 'posted' AND told = 0);
CREATE INDEX mixes_claimed ON mixes (claimed_by) WHERE claimed_by IS NOT NULL;

-- A mix's credits move under its own key, never the job's (whose reserve and settlement are
-- unique per job): one 'mix_charge' and at most one 'mix_refund' per mix.
ALTER TABLE ledger ADD COLUMN mix_id INTEGER REFERENCES mixes (id);
CREATE UNIQUE INDEX ledger_one_mix_charge ON ledger (mix_id) WHERE kind = 'mix_charge';
CREATE UNIQUE INDEX ledger_one_mix_refund ON ledger (mix_id) WHERE kind = 'mix_refund';
