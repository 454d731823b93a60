-- The owner's wallet: what each server's paid jobs cost the bot's API account per calendar month
-- (UTC), and the budgets the bot's owner set for single servers (the rest use
-- SERVER_MONTHLY_BUDGET). A job records what it counted, and in which month, so a refund gives
-- back exactly that. Jobs from before this migration counted nothing.

CREATE TABLE budget_months (
    guild_id            INTEGER NOT NULL,
    month               TEXT    NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
    spent               INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
    alerted_nearly_used INTEGER NOT NULL DEFAULT 0 CHECK (alerted_nearly_used IN (0, 1)),
    alerted_used_up     INTEGER NOT NULL DEFAULT 0 CHECK (alerted_used_up IN (0, 1)),
    PRIMARY KEY (guild_id, month)
) WITHOUT ROWID;

CREATE INDEX budget_months_by_spend ON budget_months (month, spent DESC);

CREATE TABLE server_budgets (
    guild_id INTEGER PRIMARY KEY,
    amount   INTEGER NOT NULL CHECK (amount BETWEEN 0 AND 1000000),
    set_by   INTEGER NOT NULL,
    set_at   REAL    NOT NULL
);

ALTER TABLE jobs ADD COLUMN budget_cost INTEGER NOT NULL DEFAULT 0 CHECK (budget_cost >= 0);
ALTER TABLE jobs ADD COLUMN budget_month TEXT;
