-- At most one job in flight makes the API call for a track and mode (of one kind, sandbox or
-- real): a second request follows it. The reservation reads before it writes, so two requests at
-- the same moment in separate transactions (PostgreSQL, several processes) could both find no
-- leader; this index lets exactly one of them insert, and the other tries again and follows.
-- The states are `sharing.LEADER_STATES`.

CREATE UNIQUE INDEX jobs_one_leader ON jobs (source_task_id, audio_id, mode, sandbox)
    WHERE state IN ('reserved', 'submitting', 'submitted');
