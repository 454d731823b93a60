"""Reading "Get Music Generation Details" (`GET /api/v1/generate/record-info`, see
shared/provider-api.md): a generation task's tracks, by title.

Everything in the answer is untrusted and may have any JSON type: a field of the wrong type counts
as absent, text is capped here, and a track without a usable audio id is left out (it could not
be split anyway). Escaping for Discord is the renderer's (`bot.render.songs`)."""

from __future__ import annotations

import math
import re
from typing import Any

from bot.models import TaskTracks, Track

FINAL_STATUS = "SUCCESS"
"""Only this answer is final: before it, tracks may be missing or incomplete."""
MAX_TRACKS = 20
"""A generation makes two tracks; more than this is not an answer to believe in full."""
MAX_TITLE = 300
"""Characters of a title kept (Discord shows at most 256 in an embed title, 100 in a menu)."""
MAX_COVER_URL = 2048
MAX_DURATION = 24 * 3600.0

_AUDIO_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
"""What `/split` accepts as an audio id (`bot.jobs.clean_track_id`)."""
_COVER_URL = re.compile(r"https?://[^\s<>\"'`\\]+", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


class MalformedGeneration(ValueError):
    """A `SUCCESS` answer whose tracks cannot be read: not final (a finished task's tracks are kept
    for good, so a glitch read as "no tracks" would hide the song for good)."""


def parse_generation(task_id: str, data: dict[str, Any]) -> TaskTracks | None:
    """The tracks of a finished generation; None when the answer is not final (another status).
    Raises MalformedGeneration when a `SUCCESS` has no `sunoData` list, or a non-empty one without
    a single usable track."""
    if data.get("status") != FINAL_STATUS:
        return None
    response = data.get("response")
    items = response.get("sunoData") if isinstance(response, dict) else None
    if not isinstance(items, list):
        raise MalformedGeneration("a finished generation without a list of tracks")
    tracks: list[Track] = []
    seen: set[str] = set()
    for item in items:
        if len(tracks) >= MAX_TRACKS:
            break
        if not isinstance(item, dict):
            continue
        audio_id = item.get("id")
        if not isinstance(audio_id, str) or not _AUDIO_ID.fullmatch(audio_id) or audio_id in seen:
            continue
        seen.add(audio_id)
        tracks.append(
            Track(
                audio_id=audio_id,
                title=clean_title(item.get("title")),
                duration=clean_duration(item.get("duration")),
                cover_url=clean_cover_url(item.get("imageUrl")),
                take=len(tracks) + 1,
            )
        )
    if items and not tracks:
        raise MalformedGeneration("a finished generation's tracks were all unreadable")
    return TaskTracks(task_id, tuple(tracks))


def clean_title(value: Any) -> str | None:
    """A title as one line of at most `MAX_TITLE` characters, without control or invisible
    direction characters; None when nothing is left."""
    if not isinstance(value, str):
        return None
    text = " ".join(_CONTROL.sub(" ", value[: MAX_TITLE * 4]).split())[:MAX_TITLE].strip()
    return text or None


def clean_duration(value: Any) -> float | None:
    """Seconds, a number (never a string or a boolean), positive, finite and under a day."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and 0 < seconds < MAX_DURATION else None


def clean_cover_url(value: Any) -> str | None:
    """A cover URL only if it is plain http(s), one piece, of a sane length."""
    if not isinstance(value, str) or len(value) > MAX_COVER_URL:
        return None
    return value if _COVER_URL.fullmatch(value) else None
