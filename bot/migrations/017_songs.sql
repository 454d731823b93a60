-- Songs, not ids (issue 19): the tracks of a music-generation task by title, and the song each job
-- split. A finished generation's tracks never change, so the first final answer of "Get Music
-- Generation Details" is kept here and no process asks the API about that task again.
-- `song_tasks`: one row per task known for good (it may have no tracks at all); `sandbox` keeps the
-- sandbox's made-up songs apart from real ones, like jobs' own `sandbox`.
CREATE TABLE song_tasks (
    task_id    TEXT    NOT NULL,
    sandbox    INTEGER NOT NULL DEFAULT 0 CHECK (sandbox IN (0, 1)),
    fetched_at REAL    NOT NULL,
    PRIMARY KEY (task_id, sandbox)
);

-- Its tracks in the API's order (`take` from 1). Title and cover are the API's words, capped when
-- read and escaped wherever they are shown.
CREATE TABLE song_tracks (
    task_id   TEXT    NOT NULL,
    sandbox   INTEGER NOT NULL DEFAULT 0,
    take      INTEGER NOT NULL CHECK (take >= 1),
    audio_id  TEXT    NOT NULL,
    title     TEXT,
    duration  REAL,
    cover_url TEXT,
    PRIMARY KEY (task_id, sandbox, take),
    FOREIGN KEY (task_id, sandbox) REFERENCES song_tasks (task_id, sandbox)
);

-- A chosen take is found again by its audio id (the select menu carries only that).
CREATE INDEX song_tracks_audio ON song_tracks (audio_id);

-- What each job shows of the song it split, kept with the job: the title, duration and cover it
-- was split with, and which take of how many (to tell twins apart). NULL: not known (ids shown).
ALTER TABLE jobs ADD COLUMN song_title TEXT;
ALTER TABLE jobs ADD COLUMN song_duration REAL;
ALTER TABLE jobs ADD COLUMN song_cover_url TEXT;
ALTER TABLE jobs ADD COLUMN song_take INTEGER;
ALTER TABLE jobs ADD COLUMN song_takes INTEGER;
