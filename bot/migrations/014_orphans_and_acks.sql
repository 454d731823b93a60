-- Two records the operator and the restart need (see README, "Several processes").
--
-- `orphaned_tasks`: paid API tasks no job holds. A process that lost its claim on a job (it
-- stalled past its lease and another process settled the job meanwhile) may still get the API's
-- answer to its submit: the task exists and was paid for, but the job is already finished, so the
-- task id is kept here for the operator instead of being dropped (`/stembot status` shows them).
--
-- `acknowledged_splits`: a /split (or the upgrade button) the bot acknowledged ("thinking…") whose
-- job is not stored yet. Written alongside the acknowledgement, removed in the transaction that
-- stores the job (or once the member was told why not); one left behind by a process that died
-- in between is answered on start-up or takeover while its interaction token lives (15 minutes):
-- the split did not start, nothing was charged. `claimed_by` / `lease_until` as on jobs (012).

CREATE TABLE orphaned_tasks (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL,
    api_task_id TEXT    NOT NULL,
    holder      TEXT,
    created_at  REAL    NOT NULL
);

CREATE TABLE acknowledged_splits (
    interaction_id  INTEGER PRIMARY KEY,
    application_id  INTEGER NOT NULL,
    token           TEXT    NOT NULL,
    guild_id        INTEGER NOT NULL,
    channel_id      INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    options         TEXT    NOT NULL,
    acknowledged_at REAL    NOT NULL,
    expires_at      REAL    NOT NULL,
    claimed_by      TEXT,
    lease_until     REAL
);
