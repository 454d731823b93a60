"""Songs: the tracks of a music-generation task, as the API's "Get Music Generation Details"
describes them (see shared/provider-api.md), and what a job remembers of the one it split.

Titles and cover URLs come from the API and are untrusted: they are type-checked and capped when
read (`bot.api`), and escaped where a message is built (`bot.render.songs`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Track:
    """One track (take) of a generation. `audio_id` is what a split needs besides the task id."""

    audio_id: str
    title: str | None
    duration: float | None  # seconds
    cover_url: str | None  # http(s) only
    take: int  # 1 for the generation's first track, 2 for its second...


@dataclass(frozen=True, slots=True)
class TaskTracks:
    """A generation's tracks. Only a finished generation (`SUCCESS`) is known for good: it is kept
    in the database and never asked again."""

    task_id: str
    tracks: tuple[Track, ...]

    def track(self, audio_id: str) -> Track | None:
        return next((track for track in self.tracks if track.audio_id == audio_id), None)


@dataclass(frozen=True, slots=True)
class Song:
    """What a job shows of the track it split (all optional: an unknown track shows its ids)."""

    title: str | None = None
    duration: float | None = None
    cover_url: str | None = None
    take: int | None = None
    takes: int | None = None  # how many tracks its generation has

    @classmethod
    def of(cls, track: Track, tracks: TaskTracks) -> Song:
        return cls(track.title, track.duration, track.cover_url, track.take, len(tracks.tracks))
