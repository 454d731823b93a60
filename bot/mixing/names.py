"""A mix's file name, from the song's title (or "Job 12" where none is known) and what it holds."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_TITLE_CHARS = 80
"""A title longer than this is cut (Discord keeps names far longer; players show far less)."""
_UNSAFE = re.compile(r'[/\\:*?"<>|]+')
_SPACES = re.compile(r"\s+")


def clean_title(title: str | None) -> str | None:
    """A title fit for a file name: no control or format characters, no path separators or
    characters file systems refuse, spaces collapsed, cut to `MAX_TITLE_CHARS`; None if nothing
    is left."""
    if not title:
        return None
    kept = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in title)
    text = _SPACES.sub(" ", _UNSAFE.sub(" ", kept)).strip(" .")
    if len(text) > MAX_TITLE_CHARS:
        text = text[:MAX_TITLE_CHARS].rstrip(" .")
    return text or None


def mix_filename(title: str | None, job_id: int, stem_names: Sequence[str], kept: Sequence[int]) -> str:
    """The mix's file name: "<title> - without Drums.mp3" (one or two stems left out),
    "<title> - Vocals + Bass.mp3" (one to three kept), else "<title> - mix of 9 stems.mp3".
    `stem_names` are the result's stems as it names them, `kept` the positions in the mix."""
    name = clean_title(title) or f"Job {job_id}"
    chosen = set(kept)
    left_out = [n for i, n in enumerate(stem_names) if i not in chosen]
    kept_names = [n for i, n in enumerate(stem_names) if i in chosen]
    if 1 <= len(left_out) <= 2:
        what = "without " + " and ".join(left_out)
    elif len(kept_names) <= 3:
        what = " + ".join(kept_names)
    else:
        what = f"mix of {len(kept_names)} stems"
    return f"{name} - {what}.mp3"
