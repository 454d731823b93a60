"""Untrusted text in messages: whatever others typed or sent (ids, names, moderators' reasons,
the API's words) is shown as the words it is, never as Markdown. In a public message a bracket
pair makes a link that hides where it goes, `<@&id>` a mention, a leading `#` a headline. Every
such piece goes through `plain` (or `code`) where a message is built; the rest of a message is
our own words.

Pure: no Discord library, so the errors and services below the cogs can use it too (discord.py's
`escape_markdown` also misses link schemes and line starts).
"""

from __future__ import annotations

import re

from bot.i18n import _, number

_MARKDOWN = re.compile(r"([\\`*_~|\[\]<>])")
"""Characters that start Markdown, a link, a mention or a custom emoji anywhere in a line."""

_LINE_START = re.compile(r"^([#>-])")
"""A headline, a quote or a list item (or Discord's `-#` small text) when they open a line."""

_MASS_MENTION = re.compile(r"@(everyone|here)\b")

_ZERO_WIDTH_SPACE = "\u200b"


def plain(text: str, limit: int | None = None) -> str:
    """Untrusted text as one line that Discord shows as written, for Markdown (message content,
    embed descriptions and field values): every Markdown character escaped with a backslash
    (which Discord drops), `://` broken so no bare link is made, `@everyone`/`@here` defused.
    `limit`: the result has at most this many characters (escapes included, so size budgets
    hold), cut short with "…" between characters, never inside an escape."""
    text = " ".join(text.split())
    shown = _escaped(text)
    if limit is None or len(shown) <= limit:
        return shown
    low, high = 0, len(text)  # the longest prefix whose escaped form leaves room for "…"
    while low < high:
        middle = (low + high + 1) // 2
        if len(_escaped(text[:middle].rstrip())) < limit:
            low = middle
        else:
            high = middle - 1
    return _escaped(text[:low].rstrip()) + "…"


def _escaped(text: str) -> str:
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\\\1", text)
    text = text.replace("://", ":\\/\\/")
    return _defused(text)


def _defused(text: str) -> str:
    return _MASS_MENTION.sub(lambda m: f"@{_ZERO_WIDTH_SPACE}{m[1]}", text)


_MENTION_START = re.compile(r"<([@#:]|a:|t:)")
"""What opens a mention, a channel link, a custom emoji or a timestamp."""


def as_written(text: str, limit: int) -> str:
    """Untrusted text where Discord shows it as written, not as Markdown (embed titles and
    footers, thread names, menu labels, autocomplete choices): one line, mass mentions and mention
    syntax defused with an invisible space, at most `limit` characters (cut with "…")."""
    text = _defused(" ".join(text.split()))
    text = _MENTION_START.sub(lambda m: f"<{_ZERO_WIDTH_SPACE}{m[1]}", text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def code(text: str, limit: int | None = None) -> str:
    """Untrusted text in a code span: nothing inside one is Markdown, but a backtick would end it
    (a code span cannot escape one), so backticks become U+02CB, a look-alike that ends nothing.
    `limit`: at most this many characters of the text (then "…")."""
    text = " ".join(text.split()).replace("`", "\u02cb")
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return f"`{_defused(text) or ' '}`"


def format_size(size: int) -> str:
    """Bytes as Discord writes upload limits: MB of 1024 * 1024 bytes, one decimal at most, the
    number and the unit written the language's way ("12.3 MB", "12,3 Mo")."""
    megabytes = round(size / (1024 * 1024), 1)
    # TRANSLATORS: a file size in megabytes (of 1024 * 1024 bytes), as Discord writes upload
    # limits: "25 MB"; {size} is the number.
    return _("{size} MB", size=number(int(megabytes) if megabytes.is_integer() else megabytes))
