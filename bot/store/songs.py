"""Songs: the tracks of the music-generation tasks the API described for good, and the song each
job split (see `bot.songs`)."""

from __future__ import annotations

from bot.models import Song, TaskTracks, Track
from bot.store.database import Database, Row


class Songs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def tracks(self, task_id: str, *, sandbox: bool) -> TaskTracks | None:
        """A task's tracks as kept, in the API's order; None: not known for good yet."""
        async with self._db.reading() as tx:
            known = await tx.scalar(
                "SELECT 1 FROM song_tasks WHERE task_id = ? AND sandbox = ?", (task_id, int(sandbox))
            )
            if not known:
                return None
            rows = await tx.fetchall(
                "SELECT * FROM song_tracks WHERE task_id = ? AND sandbox = ? ORDER BY take",
                (task_id, int(sandbox)),
            )
        return TaskTracks(task_id, tuple(_track(row) for row in rows))

    async def keep(self, tracks: TaskTracks, *, sandbox: bool) -> None:
        """Keep a finished task's tracks. Another process may have kept them first: they are the
        same tracks, so the first copy stays."""
        async with self._db.transaction() as tx:
            added = await tx.execute(
                "INSERT INTO song_tasks (task_id, sandbox, fetched_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (tracks.task_id, int(sandbox), self._db.now()),
            )
            if not added:
                return
            for track in tracks.tracks:
                await tx.execute(
                    "INSERT INTO song_tracks (task_id, sandbox, take, audio_id, title, duration, cover_url) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        tracks.task_id,
                        int(sandbox),
                        track.take,
                        track.audio_id,
                        track.title,
                        track.duration,
                        track.cover_url,
                    ),
                )

    async def task_of(self, audio_id: str, *, sandbox: bool) -> str | None:
        """The task a kept track belongs to (the first one kept, should two share an audio id)."""
        async with self._db.reading() as tx:
            found = await tx.scalar(
                "SELECT task_id FROM song_tracks WHERE audio_id = ? AND sandbox = ? ORDER BY task_id LIMIT 1",
                (audio_id, int(sandbox)),
            )
        return found if isinstance(found, str) else None

    async def name_job(self, job_id: int, song: Song) -> bool:
        """Give a job the song it splits, once: a job keeps the song it was first named with."""
        return bool(
            await self._db.write(
                "UPDATE jobs SET song_title = ?, song_duration = ?, song_cover_url = ?, song_take = ?, "
                "song_takes = ? WHERE id = ? AND song_title IS NULL AND song_duration IS NULL",
                (song.title, song.duration, song.cover_url, song.take, song.takes, job_id),
            )
        )


def _track(row: Row) -> Track:
    return Track(
        audio_id=row["audio_id"],
        title=row["title"],
        duration=row["duration"],
        cover_url=row["cover_url"],
        take=row["take"],
    )


def song_from_row(row: Row) -> Song | None:
    """A job row's song; None when nothing of it is known."""
    if row["song_title"] is None and row["song_duration"] is None:
        return None
    return Song(
        title=row["song_title"],
        duration=row["song_duration"],
        cover_url=row["song_cover_url"],
        take=row["song_take"],
        takes=row["song_takes"],
    )
