-- Usage reports (/quota report, /quota export, /stembot report): the display names the bot sees
-- with interactions (it has no members intent, so it cannot look them up), and indexes for the
-- grouped queries over a period of a server's ledger and jobs.
-- `name` is already cut and cleaned by the bot; `seen_at` is when it was last seen that way.

CREATE TABLE member_names (
    guild_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    seen_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE server_names (
    guild_id INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL,
    seen_at  REAL    NOT NULL
);

-- The reports' grouped queries over a period read only these indexes (covering: no table lookups),
-- so a year of a busy server's ledger is summed from the index alone. The ledger's also pages the
-- export in its order (moment, then id: a page starts where the last ended); the jobs' give the modes and the failure rate; the budget ones give the API
-- credits counted per day (by when the job was asked for) and given back (by when it finished).
CREATE INDEX ledger_guild_report ON ledger (guild_id, created_at, id, kind, amount, user_id);
CREATE INDEX jobs_guild_report ON jobs (guild_id, created_at, state, mode, cost);
CREATE INDEX jobs_budget_counted ON jobs (created_at, guild_id, budget_month, budget_cost) WHERE budget_cost > 0;
CREATE INDEX jobs_budget_released ON jobs (finished_at, state, guild_id, budget_month, budget_cost)
    WHERE budget_cost > 0;
