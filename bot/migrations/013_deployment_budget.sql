-- The bot's monthly budget (MONTHLY_BUDGET): what all servers' paid jobs together cost the bot's API
-- account per calendar month (UTC), and the alerts the bot's owner was already sent this month.
-- Every job that counts against its server's month counts here too (jobs.budget_cost in
-- jobs.budget_month), in the same transaction, and a refund gives the same back to both; so each
-- month's spend here is the sum of its servers' spends (months before this migration start from it).

CREATE TABLE deployment_months (
    month               TEXT    PRIMARY KEY CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
    spent               INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
    alerted_nearly_used INTEGER NOT NULL DEFAULT 0 CHECK (alerted_nearly_used IN (0, 1)),
    alerted_used_up     INTEGER NOT NULL DEFAULT 0 CHECK (alerted_used_up IN (0, 1))
) WITHOUT ROWID;

INSERT INTO deployment_months (month, spent) SELECT month, SUM(spent) FROM budget_months GROUP BY month;
