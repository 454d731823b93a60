-- The bot's monthly budget (see 013_deployment_budget.sql).

CREATE TABLE deployment_months (
    month               TEXT    PRIMARY KEY CHECK (month ~ '^[0-9]{4}-[01][0-9]$'),
    spent               BIGINT  NOT NULL DEFAULT 0 CHECK (spent >= 0),
    alerted_nearly_used INTEGER NOT NULL DEFAULT 0 CHECK (alerted_nearly_used IN (0, 1)),
    alerted_used_up     INTEGER NOT NULL DEFAULT 0 CHECK (alerted_used_up IN (0, 1))
);

INSERT INTO deployment_months (month, spent) SELECT month, SUM(spent) FROM budget_months GROUP BY month;
