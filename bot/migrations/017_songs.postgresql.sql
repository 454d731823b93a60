-- Songs, not ids (see 017_songs.sql).
CREATE TABLE song_tasks (
    task_id    TEXT             NOT NULL,
    sandbox    INTEGER          NOT NULL DEFAULT 0 CHECK (sandbox IN (0, 1)),
    fetched_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (task_id, sandbox)
);

CREATE TABLE song_tracks (
    task_id   TEXT             NOT NULL,
    sandbox   INTEGER          NOT NULL DEFAULT 0,
    take      INTEGER          NOT NULL CHECK (take >= 1),
    audio_id  TEXT             NOT NULL,
    title     TEXT,
    duration  DOUBLE PRECISION,
    cover_url TEXT,
    PRIMARY KEY (task_id, sandbox, take),
    FOREIGN KEY (task_id, sandbox) REFERENCES song_tasks (task_id, sandbox)
);

CREATE INDEX song_tracks_audio ON song_tracks (audio_id);

ALTER TABLE jobs ADD COLUMN song_title TEXT;
ALTER TABLE jobs ADD COLUMN song_duration DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN song_cover_url TEXT;
ALTER TABLE jobs ADD COLUMN song_take INTEGER;
ALTER TABLE jobs ADD COLUMN song_takes INTEGER;
