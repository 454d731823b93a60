-- The moderated credit economy: allowances that refill, bonus credits, role tiers, blocks and
-- per-server settings. Existing balances become allowance left over a one-off (`never`) allowance,
-- which is exactly how they behaved before: nothing a member had changes. `accounts.balance`
-- stays, computed from its two parts, so the balance still reads as it always did.

CREATE TABLE economy_settings (
    guild_id          INTEGER PRIMARY KEY,
    period            TEXT    NOT NULL DEFAULT 'never'
                      CHECK (period IN ('never', 'daily', 'weekly', 'monthly')),
    refill_minute     INTEGER NOT NULL DEFAULT 0 CHECK (refill_minute BETWEEN 0 AND 1439),
    timezone          TEXT    NOT NULL DEFAULT 'UTC',
    schedule_from     REAL    NOT NULL DEFAULT 0,
    carried_refill_at REAL,
    jobs_per_member   INTEGER CHECK (jobs_per_member BETWEEN 1 AND 100),
    cooldown_seconds  INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds BETWEEN 0 AND 86400),
    moderator_role_id INTEGER,
    audit_channel_id  INTEGER,
    updated_by        INTEGER,
    updated_at        REAL
);

-- Append-only: every allowance decision, so a refill due before a change still uses the old amount.
-- role_id 0 is the server-wide allowance.
CREATE TABLE allowance_rules (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id       INTEGER NOT NULL,
    role_id        INTEGER NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount BETWEEN 0 AND 1000000),
    effective_from REAL    NOT NULL,
    refills        INTEGER NOT NULL DEFAULT 0 CHECK (refills IN (0, 1)),
    actor_id       INTEGER NOT NULL,
    created_at     REAL    NOT NULL
);

CREATE INDEX allowance_rules_guild ON allowance_rules (guild_id, role_id, effective_from);

CREATE TABLE accounts_v2 (
    guild_id         INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    allowance_left   INTEGER NOT NULL CHECK (allowance_left >= 0),
    bonus            INTEGER NOT NULL CHECK (bonus >= 0),
    period_allowance INTEGER NOT NULL CHECK (period_allowance >= allowance_left),
    balance          INTEGER GENERATED ALWAYS AS (allowance_left + bonus) VIRTUAL,
    period_start     REAL    NOT NULL,
    blocked_at       REAL,
    blocked_by       INTEGER,
    blocked_reason   TEXT,
    created_at       REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

INSERT INTO accounts_v2 (guild_id, user_id, allowance_left, bonus, period_allowance, period_start,
                         created_at)
SELECT a.guild_id, a.user_id, a.balance, 0,
       MAX(a.balance, COALESCE((SELECT l.amount FROM ledger l
                                WHERE l.guild_id = a.guild_id AND l.user_id = a.user_id
                                  AND l.kind = 'allowance'
                                ORDER BY l.id LIMIT 1), 0)),
       a.created_at, a.created_at
FROM accounts a;

DROP TABLE accounts;

ALTER TABLE accounts_v2 RENAME TO accounts;

-- Each ledger row says which part of the balance it moved. Every old row moved the allowance.
CREATE TABLE ledger_v2 (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id         INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    amount           INTEGER NOT NULL,
    allowance_change INTEGER NOT NULL,
    bonus_change     INTEGER NOT NULL,
    balance_after    INTEGER NOT NULL CHECK (balance_after >= 0),
    job_id           INTEGER REFERENCES jobs (id),
    actor_id         INTEGER,
    reason           TEXT,
    created_at       REAL    NOT NULL,
    CHECK (amount = allowance_change + bonus_change)
);

INSERT INTO ledger_v2 (id, guild_id, user_id, kind, amount, allowance_change, bonus_change,
                       balance_after, job_id, actor_id, reason, created_at)
SELECT id, guild_id, user_id, kind, amount, amount, 0, balance_after, job_id, actor_id, reason,
       created_at
FROM ledger;

DROP TABLE ledger;

ALTER TABLE ledger_v2 RENAME TO ledger;

CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (job_id) WHERE kind IN ('charge', 'refund');
CREATE INDEX ledger_member ON ledger (guild_id, user_id, id);
CREATE INDEX jobs_member_started ON jobs (guild_id, user_id, created_at);
