-- The owner's wallet (see 007_budget.sql).

CREATE TABLE budget_months (
    guild_id            BIGINT  NOT NULL,
    month               TEXT    NOT NULL CHECK (month ~ '^[0-9]{4}-[01][0-9]$'),
    spent               BIGINT  NOT NULL DEFAULT 0 CHECK (spent >= 0),
    alerted_nearly_used INTEGER NOT NULL DEFAULT 0 CHECK (alerted_nearly_used IN (0, 1)),
    alerted_used_up     INTEGER NOT NULL DEFAULT 0 CHECK (alerted_used_up IN (0, 1)),
    PRIMARY KEY (guild_id, month)
);

CREATE INDEX budget_months_by_spend ON budget_months (month, spent DESC);

CREATE TABLE server_budgets (
    guild_id BIGINT           PRIMARY KEY,
    amount   BIGINT           NOT NULL CHECK (amount BETWEEN 0 AND 1000000),
    set_by   BIGINT           NOT NULL,
    set_at   DOUBLE PRECISION NOT NULL
);

ALTER TABLE jobs ADD COLUMN budget_cost BIGINT NOT NULL DEFAULT 0 CHECK (budget_cost >= 0);
ALTER TABLE jobs ADD COLUMN budget_month TEXT;
