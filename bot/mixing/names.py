"""A mix's file name, from the song's title (or "Job 12" where none is known) and what it holds."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.i18n import _, ngettext

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
    """The mix's file name, in the language being spoken (the server's: a posted file's name is
    public): "<title> - without Drums.mp3" (one or two stems left out), "<title> - Vocals +
    Bass.mp3" (one to three kept), else "<title> - mix of 9 stems.mp3". `stem_names` are the
    result's stems as it names them, `kept` the positions in the mix. File-system safe whatever
    the translation says."""
    # TRANSLATORS: a mix's file name where the song's title is not known.
    name = clean_title(title) or _("Job {job}", job=job_id)
    chosen = set(kept)
    left_out = [n for i, n in enumerate(stem_names) if i not in chosen]
    kept_names = [n for i, n in enumerate(stem_names) if i in chosen]
    if len(left_out) == 1:
        # TRANSLATORS: a mix's file name (without ".mp3"): the song without one stem.
        what = _("{title} - without {stem}", title=name, stem=left_out[0])
    elif len(left_out) == 2:
        # TRANSLATORS: a mix's file name (without ".mp3"): the song without two stems.
        what = _("{title} - without {first} and {second}", title=name, first=left_out[0], second=left_out[1])
    elif len(kept_names) <= 3:
        what = f"{name} - {' + '.join(kept_names)}"
    else:
        # TRANSLATORS: a mix's file name (without ".mp3").
        what = ngettext(
            "{title} - mix of {count} stem", "{title} - mix of {count} stems", len(kept_names), title=name
        )
    return f"{_safe(what)}.mp3"


def _safe(name: str) -> str:
    """A translated name kept fit for a file system (a translation may bring a slash or a colon)."""
    return _SPACES.sub(" ", _UNSAFE.sub(" ", name)).strip(" .")
