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

-- A server's ledger over a period (the report's days, the export's rows) and its jobs over one
-- (failure rate, API credits); refunds of the API credits count on the day the job finished.
CREATE INDEX ledger_guild_time ON ledger (guild_id, created_at);
CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
CREATE INDEX jobs_budget_finished ON jobs (finished_at) WHERE budget_cost > 0;
CREATE INDEX jobs_budget_created ON jobs (created_at) WHERE budget_cost > 0;
